"""Reading a task's raw rows: from a local file or directory, or from the Hugging Face Hub.

Rows are plain dicts in source order, with the source's own column names; `s1.tasks.loaders` maps them
to `TaskItem`s. Formats: JSONL, JSON (a list of objects, or an object keyed by id such as
`mathvista_testmini.json`; the key is kept as `ROW_KEY` when the row has no id of its own), Parquet
(pyarrow) and CSV (the standard library; every value is a string). Binary image columns (MathVista's
`decoded_image`) are never read: images are recorded by path only.

Finding a task's file in a directory (`find_data_file`), first match wins:

1. `<stem>.<ext>` for each of the task's file stems in order (e.g. `aime24`, `aime24_nofigures`;
   `gsm8k_test`, `gsm8k`), each tried with the extensions `.jsonl`, `.json`, `.parquet`, `.csv`.
   These are the names in the shared data folder and the Hub's own file names
   (`gpqa_diamond.csv`, MATH-500's `test.jsonl` comes in step 2).
2. Hub split exports, in `DIR`, then `DIR/<hub config>` (e.g. `main/` for GSM8K), then `DIR/data`:
   `<split>.<ext>` with the same extensions, then the shards `<split>-*.parquet` (sorted, concatenated).

A directory holding several benchmarks should therefore use the task-named files: a bare `test.jsonl`
is taken by whichever task with split `test` looks first.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s1.tasks.base import HubUnavailableError, TaskDataError

if TYPE_CHECKING:
    from s1.tasks.base import Task

Row = dict[str, Any]

EXTENSIONS: tuple[str, ...] = (".jsonl", ".json", ".parquet", ".csv")
ROW_KEY = "__key__"
"""Column holding the key of a row read from a JSON object keyed by id."""


def task_label(task: Task | str) -> str:
    return f"task {task if isinstance(task, str) else task.name!r}"


# ---------------------------------------------------------------------------------------------- entry


def load_rows(task: Task, path: Path | None) -> tuple[list[Row], str]:
    """All raw rows of `task` and a label of where they came from (a file path or `hf://<id>`)."""
    if path is None:
        return load_hub_rows(task), f"hf://{task.hub_id}"
    file = find_data_file(task, path)
    return read_rows(file, task.name), str(file)


def find_data_file(task: Task, path: Path) -> Path:
    """`path` itself when it is a file; else the task's file in the directory (search order: module doc)."""
    label = task_label(task)
    if not path.exists():
        raise FileNotFoundError(f"{label}: data path {path} does not exist (pass a data file or a directory)")
    if path.is_file():
        return path
    if not path.is_dir():
        raise TaskDataError(f"{label}: data path {path} is neither a file nor a directory")
    tried: list[str] = []
    for stem in task.file_names:
        for ext in EXTENSIONS:
            tried.append(stem + ext)
            if (path / (stem + ext)).is_file():
                return path / (stem + ext)
    bases = [path] + [path / sub for sub in (task.hub_config, "data") if sub]
    for base in bases:
        prefix = "" if base == path else f"{base.relative_to(path)}/"
        for ext in EXTENSIONS:
            tried.append(prefix + task.hub_split + ext)
            if (base / (task.hub_split + ext)).is_file():
                return base / (task.hub_split + ext)
        tried.append(f"{prefix}{task.hub_split}-*.parquet")
        shards = sorted(base.glob(f"{task.hub_split}-*.parquet")) if base.is_dir() else []
        if shards:
            return shards[0] if len(shards) == 1 else base / f"{task.hub_split}-*.parquet"
    present = sorted(p.name for p in path.iterdir())
    shown = ", ".join(present[:20]) + (f", ... ({len(present)} entries)" if len(present) > 20 else "")
    raise FileNotFoundError(
        f"{label}: no data file for it in {path}; looked for {', '.join(tried)}; "
        f"the directory holds: {shown or 'nothing'}")


# ---------------------------------------------------------------------------------------------- files


def read_rows(path: Path, task_name: str) -> list[Row]:
    """Rows of a JSONL / JSON / Parquet / CSV file (or a `<split>-*.parquet` shard pattern), in file order."""
    label = task_label(task_name)
    if "*" in path.name:
        shards = sorted(path.parent.glob(path.name))
        rows = [row for shard in shards for row in read_rows(shard, task_name)]
        return rows
    suffix = path.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet,
               ".csv": _read_csv}
    if suffix not in readers:
        raise TaskDataError(f"{label}: cannot read {path}: unsupported file type {suffix or '(none)'!r}; "
                            f"use one of {', '.join(EXTENSIONS)}")
    try:
        rows = readers[suffix](path, label)
    except TaskDataError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{label}: cannot read {path}: {exc}") from exc
    if not rows:
        raise TaskDataError(f"{label}: {path} holds no rows")
    return rows


def _read_jsonl(path: Path, label: str) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskDataError(f"{label}: {path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise TaskDataError(f"{label}: {path}:{n}: each line must be a JSON object, "
                                    f"got {type(row).__name__}")
            rows.append(row)
    return rows


def _read_json(path: Path, label: str) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{label}: {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, list):
        bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None)
        if bad is not None:
            raise TaskDataError(f"{label}: {path}: element {bad} of the list is not an object")
        return data
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        return [{**row, ROW_KEY: key} if ROW_KEY not in row else row for key, row in data.items()]
    raise TaskDataError(f"{label}: {path}: expected a JSON list of objects or an object of objects keyed by id, "
                        f"got {type(data).__name__}")


def _read_parquet(path: Path, label: str) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with `datasets`
        raise TaskDataError(f"{label}: reading {path} needs pyarrow (pip install pyarrow)") from exc
    try:
        schema = pq.read_schema(path)
        columns = [f.name for f in schema if not _is_binary(f.type)]
        return pq.read_table(path, columns=columns).to_pylist()
    except OSError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid (a ValueError) and friends for a bad file
        raise TaskDataError(f"{label}: cannot read {path} as Parquet: {exc}") from exc


def _is_binary(dtype: Any) -> bool:
    """Image-like columns: raw bytes, or a struct with a `bytes` field (the `datasets` Image feature)."""
    import pyarrow as pa

    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return True
    return pa.types.is_struct(dtype) and any(dtype.field(i).name == "bytes" for i in range(dtype.num_fields))


def _read_csv(path: Path, label: str) -> list[Row]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        try:
            return [dict(row) for row in csv.DictReader(fh)]
        except csv.Error as exc:
            raise TaskDataError(f"{label}: {path}: not valid CSV ({exc})") from None


# ---------------------------------------------------------------------------------------------- hub


def load_hub_rows(task: Task) -> list[Row]:
    """All rows of the task's Hub dataset, through `datasets.load_dataset` (image columns dropped)."""
    label = task_label(task)
    where = f"{task.hub_id}" + (f" (config {task.hub_config!r})" if task.hub_config else "") + \
        f", split {task.hub_split!r}"
    hint = "download the data and pass --data-dir (a data file or a directory holding it)"
    if task.hub_id is None:
        raise HubUnavailableError(f"{label} has no Hugging Face Hub dataset; {hint}")
    try:
        import datasets
    except ImportError as exc:
        raise HubUnavailableError(f"{label}: loading {where} from the Hub needs the `datasets` package "
                                  f"(pip install datasets), or {hint}") from exc
    try:
        ds = datasets.load_dataset(task.hub_id, task.hub_config, split=task.hub_split)
        images = [name for name, feat in ds.features.items() if isinstance(feat, datasets.Image)]
        if images:
            ds = ds.remove_columns(images)
        rows = ds.to_list()
    except Exception as exc:
        gated = " It is gated: accept its terms on the Hub and log in (hf auth login)." if task.gated else ""
        raise HubUnavailableError(
            f"{label}: could not load {where} from the Hugging Face Hub ({type(exc).__name__}: {exc}).{gated} "
            f"If the Hub cannot be reached, {hint}.") from exc
    if not rows:
        raise TaskDataError(f"{label}: {where} on the Hub holds no rows")
    return rows


# ---------------------------------------------------------------------------------------------- columns


def norm_key(name: Any) -> str:
    """Column names compare case-insensitively, with spaces, hyphens and underscores alike."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


class Columns:
    """Finds a field's column among a table's columns by its aliases (see `norm_key`)."""

    def __init__(self, rows: list[Row]):
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        self.names = [n for n in seen if n != ROW_KEY]
        self._by_norm: dict[str, str] = {}
        for name in seen:
            self._by_norm.setdefault(norm_key(name), name)

    def find(self, aliases: tuple[str, ...]) -> str | None:
        for alias in aliases:
            found = self._by_norm.get(norm_key(alias))
            if found is not None:
                return found
        return None

    def require(self, fields: dict[str, tuple[str, ...]], label: str, source: str) -> dict[str, str]:
        """Map each required field to its column, or raise naming every missing one and the columns found."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for field, aliases in fields.items():
            col = self.find(aliases)
            if col is None:
                missing.append(" or ".join(repr(a) for a in aliases))
            else:
                found[field] = col
        if missing:
            raise TaskDataError(
                f"{label}: {source} lacks required column(s) {'; '.join(missing)}; "
                f"found columns: {', '.join(repr(n) for n in self.names) or 'none'}")
        return found
