"""Files between stages: JSONL (the working format), Parquet and `datasets` (the outputs), question ids.

Every stage reads the previous stage's files and writes its own, so any stage can be rerun alone.
Whole files are written atomically (temporary file + `os.replace`): a reader never sees half of one.
Caches are append-only JSONL flushed and fsync'd per batch; a torn last line (a kill mid-write) is
skipped on reading, so the item it held is simply pending again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Row = dict[str, Any]

_WS = re.compile(r"\s+")


class CurateError(ValueError):
    """A curation input is unusable (config, source, stage file); the message names the field or file."""


def question_hash(question: str) -> str:
    """s1's item id: the first 16 hex digits of the SHA-256 of the question text."""
    return hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]


def normalize(text: str) -> str:
    """Lower-case, whitespace collapsed to single spaces: what n-grams and exact dedup compare."""
    return _WS.sub(" ", text.lower()).strip()


def read_jsonl(path: str | Path, *, torn_tail_ok: bool = False) -> list[Row]:
    """All objects of a JSONL file. With `torn_tail_ok`, an unparsable LAST line is skipped (warned)."""
    return list(iter_jsonl(path, torn_tail_ok=torn_tail_ok))


def iter_jsonl(path: str | Path, *, torn_tail_ok: bool = False) -> Iterator[Row]:
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"{path}: no such file (run the stage that writes it first)")
    with path.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn_tail_ok and n == len(lines):
                warnings.warn(f"{path}:{n}: torn last line skipped (an interrupted write)", stacklevel=2)
                return
            raise CurateError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CurateError(f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}")
        yield row


def write_jsonl(path: str | Path, rows: Iterable[Row]) -> int:
    """Replace `path` atomically with one JSON object per line; returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_json(path: str | Path, data: Any) -> None:
    """Replace `path` atomically with indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Appender:
    """An append-only JSONL cache: `add` writes a batch, flushes and fsyncs before returning."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fh = self.path.open("a", encoding="utf-8")

    def _repair_tail(self) -> None:
        """Cut a torn last line (no trailing newline) so new lines do not glue onto it."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        warnings.warn(f"{self.path}: torn last line cut off (an interrupted write)", stacklevel=3)
        with self.path.open("r+b") as fh:
            fh.truncate(cut)

    def add(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_cache(paths: Iterable[str | Path], key: str = "id") -> dict[str, Row]:
    """The last row per `key` across append-only cache files (a retried item's newer line wins)."""
    out: dict[str, Row] = {}
    for path in paths:
        if Path(path).is_file():
            for row in iter_jsonl(path, torn_tail_ok=True):
                out[str(row[key])] = row
    return out


def write_parquet(path: str | Path, rows: list[Row]) -> None:
    """Rows as a Parquet file (pyarrow infers the schema; nested values stay nested)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def write_dataset(path: str | Path, rows: list[Row]) -> None:
    """Rows as a `datasets` dataset saved to disk (`datasets.load_from_disk(path)` reads it)."""
    from datasets import Dataset

    Dataset.from_list(rows).save_to_disk(str(path))
