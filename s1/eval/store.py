"""The run store: one JSON line per sample, a manifest of versions and parameters, resume after a crash.

A run directory holds

- `manifest.json`: what was run (model, backend, tasks, parameters, seeds, dataset hashes), with which
  software (s1, python, torch, transformers, vllm versions) and its status. Always replaced atomically
  (temporary file + `os.replace`), so a reader never sees half of one.
- `samples.jsonl`: one line per (task, prompt id, sample index, setting), the `RecordKey`. A line is
  a flat JSON object: every field of `Generation.to_dict()` plus `task` and the grading fields
  `correct`, `extracted`, `reason` and `gold` (`SampleRecord`). Dropping those five keys gives back
  the `Generation` dict, so `Generation.from_dict` round-trips, and `jq` sees one level of keys.
- `.lock`: held (flock) by the one process that may append, so two writers never share a run.

The manifest's `status` is "running" from `create` (or a resume) until `finish()`; a run that was
killed keeps "running", and `open_or_create(..., resume=True)` continues it, adding an entry (time and
software versions) to the manifest's `resumes`.

Nothing lost, nothing duplicated: `append` writes, flushes and fsyncs every batch before returning,
under a lock (threads may append concurrently; lines never interleave), and refuses a key that is
already stored. On opening for writing, a torn last line (a kill mid-write) is cut off with a warning
and its sample is simply pending again. Should a key still appear twice (it should not), the last
line wins, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from s1.records import GRADING_FIELDS, RecordKey, SampleRecord

__all__ = [
    "GRADING_FIELDS",
    "IDENTITY_KEYS",
    "ManifestMismatchError",
    "RecordKey",
    "RunExistsError",
    "RunStore",
    "RunStoreError",
    "SampleRecord",
    "file_sha256",
    "items_hash",
    "software_versions",
]

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
LOCK = ".lock"
FORMAT = "s1-run/1"

# Manifest keys that must match for --resume: together they decide what the samples are.
IDENTITY_KEYS: tuple[str, ...] = ("model", "backend", "tasks", "parameters", "seeds", "datasets")
# Keys the store writes itself; a caller's manifest may not set them.
MANAGED_KEYS: tuple[str, ...] = ("format", "created", "updated", "finished", "status", "s1_version", "versions",
                                 "resumes")


class RunStoreError(RuntimeError):
    """A run directory cannot be used as asked."""


class RunExistsError(RunStoreError):
    """The run directory already holds a run and resuming was not asked for."""


class ManifestMismatchError(RunStoreError):
    """--resume with a manifest whose identity differs from the stored one."""

    def __init__(self, run_dir: Path, differing: list[str]):
        self.differing = differing
        super().__init__(
            f"cannot resume {run_dir}: the stored run differs in {', '.join(differing)}; "
            "rerun with the same settings, or choose another --output"
        )


def _key_of(data: Mapping[str, Any]) -> RecordKey:
    task, prompt_id = data["task"], data["prompt_id"]
    sample_index, setting = data.get("sample_index", 0), data.get("setting", "")
    if not isinstance(task, str) or not isinstance(prompt_id, str) or not isinstance(setting, str):
        raise ValueError("task, prompt_id and setting must be strings")
    if isinstance(sample_index, bool) or not isinstance(sample_index, int):
        raise ValueError("sample_index must be an integer")
    return RecordKey(task, prompt_id, sample_index, setting)


# -- hashes and versions -------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def items_hash(items: Iterable[tuple[Any, Any, Any]]) -> str:
    """Hex SHA-256 of a benchmark's items, each (id, question, gold).

    Each item is encoded as canonical JSON (`[str(id), question, gold]`, sorted keys, non-JSON values
    through `str`); the encodings are sorted before hashing, so the hash names the set of items and not
    their order (samples are keyed by item id, so order does not change results).
    """
    lines = []
    for item in items:
        item_id, question, gold = item
        lines.append(json.dumps([str(item_id), question, gold], ensure_ascii=False, sort_keys=True,
                                separators=(",", ":"), default=str))
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def software_versions() -> dict[str, str | None]:
    """Python, torch and transformers versions (None when not installed), and vllm's when installed.

    Read from package metadata: nothing heavy is imported."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    out: dict[str, str | None] = {"python": platform.python_version(), "torch": version("torch"),
                                  "transformers": version("transformers")}
    if (vllm := version("vllm")) is not None:
        out["vllm"] = vllm
    return out


def _s1_version() -> str:
    from s1 import __version__

    return __version__


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists, ...), for comparisons."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def differing_keys(stored: Mapping[str, Any], manifest: Mapping[str, Any],
                   identity_keys: Iterable[str] = IDENTITY_KEYS) -> list[str]:
    """Dotted paths of the identity keys where a stored manifest and a new one differ ([] : same run)."""
    new = _jsonable(dict(manifest))
    differing: list[str] = []
    for key in identity_keys:
        if (key in stored) != (key in new):
            differing.append(key)
        elif key in new:
            differing += _diff(stored[key], new[key], key)
    return differing


def stored_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of the run in `run_dir`, or None when there is no readable one."""
    try:
        return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _diff(stored: Any, new: Any, path: str) -> list[str]:
    """Dotted paths at which two JSON values differ (recursing into objects)."""
    if isinstance(stored, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(stored) | set(new), key=str):
            sub = f"{path}.{key}"
            if key not in stored or key not in new:
                out.append(sub)
            else:
                out += _diff(stored[key], new[key], sub)
        return out
    return [] if stored == new else [path]


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the store -----------------------------------------------------------------------------------------
@dataclass
class _Scan:
    last_line: dict[RecordKey, int] = field(default_factory=dict)  # key -> number of its last line
    failed: set[RecordKey] = field(default_factory=set)  # keys whose last line is a failed sample
    duplicates: int = 0  # keys stored again over a sample that had not failed (a retry is no duplicate)
    corrupt: list[int] = field(default_factory=list)  # 1-based numbers of unreadable lines kept in place
    torn_bytes: int = 0  # bytes of an unfinished tail
    good_size: int = 0  # file size without the torn tail


class RunStore:
    """A run directory. Make one with `create`, `open` or `open_or_create`; close it (or use `with`).

    Opened for writing (the default), the store holds an exclusive lock on the run (another process
    trying to write the same run gets a clear error) and cuts off a torn last line. `read_only=True`
    takes no lock and changes nothing, for reports over a run that may still be going.
    """

    def __init__(self, run_dir: Path, manifest: dict[str, Any], read_only: bool):
        self.run_dir = run_dir
        self.manifest = manifest
        self.read_only = read_only
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fh: Any = None
        self._done: set[RecordKey] = set()
        self._failed: set[RecordKey] = set()  # stored keys whose record failed: they may be stored again

    # -- opening -------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / MANIFEST

    @property
    def samples_path(self) -> Path:
        return self.run_dir / SAMPLES

    @staticmethod
    def exists(run_dir: str | os.PathLike[str]) -> bool:
        """Whether `run_dir` already holds a run (a manifest or samples)."""
        run_dir = Path(run_dir)
        return (run_dir / MANIFEST).exists() or (run_dir / SAMPLES).exists()

    @classmethod
    def create(cls, run_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> RunStore:
        """Start a new run in `run_dir` (made if missing). The caller's `manifest` holds the identity
        keys (`IDENTITY_KEYS`: model, backend, tasks, parameters, seeds, datasets) and anything else
        worth keeping; the store adds format, created/updated times, status, s1 and software versions."""
        run_dir = Path(run_dir)
        managed = sorted(set(manifest) & set(MANAGED_KEYS))
        if managed:
            raise ValueError(f"manifest keys {', '.join(managed)} are written by the run store; leave them out")
        if cls.exists(run_dir):
            raise RunExistsError(f"run dir {run_dir} exists; pass --resume or choose another --output")
        run_dir.mkdir(parents=True, exist_ok=True)
        now = _now()
        full = {"format": FORMAT, "created": now, "updated": now, "finished": None, "status": "running",
                "s1_version": _s1_version(), "versions": software_versions(), **_jsonable(dict(manifest))}
        store = cls(run_dir, full, read_only=False)
        store._acquire()
        try:
            if cls.exists(run_dir):  # another process created it between our check and our lock
                raise RunExistsError(f"run dir {run_dir} exists; pass --resume or choose another --output")
            _write_json_atomic(store.manifest_path, full)
            store._open_samples()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], read_only: bool = False) -> RunStore:
        """Open an existing run (to append to it, or `read_only` to read it)."""
        run_dir = Path(run_dir)
        path = run_dir / MANIFEST
        if not path.exists():
            what = "has samples but no manifest" if (run_dir / SAMPLES).exists() else "holds no run"
            raise RunStoreError(f"{run_dir} {what} ({MANIFEST} is missing)")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunStoreError(f"cannot read {path}: {exc}") from exc
        store = cls(run_dir, manifest, read_only=read_only)
        if not read_only:
            store._acquire()
            try:
                store._open_samples()
            except BaseException:
                store.close()
                raise
        return store

    @classmethod
    def open_or_create(
        cls,
        run_dir: str | os.PathLike[str],
        manifest: Mapping[str, Any],
        resume: bool,
        identity_keys: Iterable[str] = IDENTITY_KEYS,
    ) -> RunStore:
        """The `--resume` semantics. No run in `run_dir`: create one. A run there and `resume` False:
        `RunExistsError`. `resume` True: open it if every identity key of `manifest` matches the stored
        manifest (nested objects are compared key by key), else `ManifestMismatchError` naming the
        differing keys (e.g. `parameters.temperature`)."""
        run_dir = Path(run_dir)
        if not cls.exists(run_dir):
            return cls.create(run_dir, manifest)
        if not resume:
            raise RunExistsError(f"run dir {run_dir} exists; pass --resume or choose another --output")
        store = cls.open(run_dir)
        try:
            differing = differing_keys(store.manifest, manifest, identity_keys)
            if differing:
                raise ManifestMismatchError(run_dir, differing)
            versions = software_versions()
            changed = [k for k in sorted(set(versions) | set(store.manifest.get("versions", {})))
                       if versions.get(k) != store.manifest.get("versions", {}).get(k)]
            if changed:
                warnings.warn(f"resuming {run_dir} with different software versions ({', '.join(changed)}); "
                              "see the manifest's 'resumes'", stacklevel=2)
            resumes = [*store.manifest.get("resumes", []),
                       {"at": _now(), "s1_version": _s1_version(), "versions": versions}]
            store.update_manifest(status="running", finished=None, resumes=resumes)
        except BaseException:
            store.close()
            raise
        return store

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): single-writer is the caller's responsibility
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunStoreError(f"run dir {self.run_dir} is in use by another process (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _open_samples(self) -> None:
        scan = self._scan(repair=True)
        self._done, self._failed = set(scan.last_line), set(scan.failed)
        self._fh = open(self.samples_path, "ab")  # noqa: SIM115 (kept open for the store's lifetime)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- manifest ------------------------------------------------------------------------------------
    def update_manifest(self, **changes: Any) -> None:
        """Set manifest fields (and `updated`), replacing the file atomically."""
        self._writable()
        with self._lock:
            self.manifest.update(_jsonable(changes))
            self.manifest["updated"] = _now()
            _write_json_atomic(self.manifest_path, self.manifest)

    def finish(self, status: str = "finished") -> None:
        """Mark the run done (`status` "finished", or e.g. "failed" / "interrupted")."""
        self.update_manifest(status=status, finished=_now())

    # -- samples -------------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise RunStoreError(f"{self.run_dir} was opened read-only")
        if self._fh is None:
            raise RunStoreError(f"{self.run_dir}: the store is closed")

    def append(self, records: SampleRecord | Iterable[SampleRecord]) -> None:
        """Store records durably: one `write` of their lines, then flush and fsync, before returning.

        Thread-safe. A key already stored (or twice in `records`) raises ValueError and writes nothing
        of the batch."""
        self._writable()
        batch = [records] if isinstance(records, SampleRecord) else list(records)
        if not batch:
            return
        lines = []
        keys = []
        failed = set()
        for record in batch:
            if not isinstance(record, SampleRecord):
                raise TypeError(f"append takes SampleRecord objects, got {type(record).__name__}")
            keys.append(record.key)
            if record.generation.error is not None:
                failed.add(record.key)
            lines.append(record.to_json().encode("utf-8") + b"\n")
        data = b"".join(lines)
        with self._lock:
            if self._fh is None:
                raise RunStoreError(f"{self.run_dir}: the store is closed")
            seen: set[RecordKey] = set()
            for key in keys:
                if (key in self._done and key not in self._failed) or key in seen:
                    raise ValueError(f"sample {tuple(key)} is already stored in {self.samples_path}")
                seen.add(key)
            size = os.fstat(self._fh.fileno()).st_size
            try:
                self._fh.write(data)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except BaseException:
                # A failed or interrupted write (disk full, Ctrl-C) must not leave half a line for the
                # next append to run into: cut the file back to where this batch began.
                with contextlib.suppress(Exception):
                    self._fh.close()
                with open(self.samples_path, "r+b") as f:
                    f.truncate(size)
                    os.fsync(f.fileno())
                self._fh = open(self.samples_path, "ab")  # noqa: SIM115
                raise
            self._done.update(keys)
            self._failed = (self._failed - set(keys)) | failed

    def done_keys(self, include_failed: bool = True) -> set[RecordKey]:
        """Keys of the samples stored in `samples.jsonl` (read from the file); without `include_failed`,
        only those whose last record succeeded (a failed sample is then pending again: a retry)."""
        with self._lock:
            scan = self._scan(repair=False)
            if not self.read_only:
                self._done, self._failed = set(scan.last_line), set(scan.failed)
        return set(scan.last_line) if include_failed else set(scan.last_line) - scan.failed

    def pending(self, keys: Iterable[tuple[str, str, int, str]]) -> list[RecordKey]:
        """The given keys not stored yet, in their order (each once)."""
        done = self.done_keys()
        out: list[RecordKey] = []
        seen: set[RecordKey] = set()
        for key in keys:
            key = RecordKey(*key)
            if key not in done and key not in seen:
                out.append(key)
                seen.add(key)
        return out

    def records(self) -> Iterator[SampleRecord]:
        """Every stored record in file order; for a key stored twice, only its last line."""
        with self._lock:
            scan = self._scan(repair=False)
        keep = set(scan.last_line.values())
        if not keep:
            return
        with open(self.samples_path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if number in keep:
                    yield SampleRecord.from_dict(json.loads(line))

    def __len__(self) -> int:
        return len(self.done_keys())

    # -- scanning ------------------------------------------------------------------------------------
    def _scan(self, repair: bool) -> _Scan:
        """Read `samples.jsonl`: each key's last line, duplicates, unreadable lines and a torn tail.

        A torn tail is the bytes after the last newline, together with any unreadable lines right
        before them (a kill mid-write, or blocks a crash left unwritten). With `repair` it is cut off
        (the file truncated) with a warning; otherwise it is only skipped. Unreadable lines elsewhere
        are skipped with a warning (their samples are pending again) and left in place."""
        scan = _Scan()
        path = self.samples_path
        if not path.exists():
            return scan
        entries: list[tuple[int, int, RecordKey | None, bool]] = []  # (line number, end offset, key, failed)
        offset = 0
        with open(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                offset += len(line)
                if not line.endswith(b"\n"):
                    scan.torn_bytes = len(line)
                    break
                try:
                    data = json.loads(line)
                    key = _key_of(data) if isinstance(data, dict) else None
                except (ValueError, KeyError, UnicodeDecodeError):
                    key, data = None, None
                entries.append((number, offset, key, key is not None and data.get("error") is not None))
        # Unreadable complete lines at the very end belong to the torn tail too.
        while entries and entries[-1][2] is None:
            entries.pop()
        scan.good_size = entries[-1][1] if entries else 0
        for number, _, key, failed in entries:
            if key is None:
                scan.corrupt.append(number)
                continue
            if key in scan.last_line and key not in scan.failed:
                scan.duplicates += 1
            scan.last_line[key] = number
            if failed:
                scan.failed.add(key)
            else:
                scan.failed.discard(key)
        size = path.stat().st_size
        if size > scan.good_size:
            if repair:
                warnings.warn(f"{path}: cutting off {size - scan.good_size} bytes of an unfinished last "
                              "line (the run was killed mid-write); that sample will be redone", stacklevel=3)
                with open(path, "r+b") as f:
                    f.truncate(scan.good_size)
                    f.flush()
                    os.fsync(f.fileno())
            scan.torn_bytes = size - scan.good_size
        if scan.corrupt:
            warnings.warn(f"{path}: skipping {len(scan.corrupt)} unreadable line(s) (line "
                          f"{', '.join(map(str, scan.corrupt[:5]))}{', ...' if len(scan.corrupt) > 5 else ''}); "
                          "their samples will be redone", stacklevel=3)
        if scan.duplicates:
            warnings.warn(f"{path}: {scan.duplicates} sample key(s) stored more than once; keeping the last "
                          "line of each", stacklevel=3)
        return scan
