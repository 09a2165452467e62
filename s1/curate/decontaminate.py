"""Stage 2, decontaminate: drop pool items that share a word n-gram with an evaluation set, then
exact duplicates; report every removal and why.

Texts are compared lower-cased with whitespace collapsed (`s1.curate.io.normalize`), split on
whitespace into words. Every n-gram (default 8, as s1) of every evaluation question is hashed into
one dict, so checking the pool costs one hash lookup per pool n-gram: linear in the text, not
pool x eval. An item whose normalised text equals an evaluation question is contaminated too (that
catches questions shorter than n words). Exact dedup then keeps the first of items whose normalised
questions are equal.

Evaluation sets are `s1.tasks` benchmarks (aime24, aime25, math500, gpqa_diamond, ... from a data
directory or the Hub) and any local files the user names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1.curate.io import CurateError, Row, normalize, read_jsonl, write_json, write_jsonl
from s1.curate.sources import read_local
from s1.curate.table import Table

CLEAN = "clean.jsonl"
REMOVED = "removed.jsonl"
REPORT = "decontaminate.json"
DEFAULT_EVAL_TASKS: tuple[str, ...] = ("aime24", "aime25", "math500", "gpqa_diamond")


@dataclass(frozen=True)
class EvalFile:
    """A user-named evaluation set: a local file and the column holding its questions."""

    name: str
    path: str
    field: str = "question"

    @classmethod
    def from_table(cls, t: Table) -> EvalFile:
        out = cls(name=t.str("name"), path=t.str("path"), field=t.str("field", "question"))
        t.done()
        return out


@dataclass(frozen=True)
class DecontamConfig:
    ngram: int = 8
    eval_tasks: tuple[str, ...] = DEFAULT_EVAL_TASKS
    eval_data_dir: str | None = None
    eval_files: tuple[EvalFile, ...] = ()
    skip_unavailable: bool = False
    dedup: bool = True

    @classmethod
    def from_table(cls, t: Table) -> DecontamConfig:
        out = cls(ngram=t.int("ngram", 8, minimum=1), eval_tasks=t.strs("eval_tasks", DEFAULT_EVAL_TASKS),
                  eval_data_dir=t.str("eval_data_dir", None),
                  eval_files=tuple(EvalFile.from_table(f) for f in t.tables("eval_files")),
                  skip_unavailable=t.bool("skip_unavailable", False), dedup=t.bool("dedup", True))
        t.done()
        return out


# ---------------------------------------------------------------------------------------------- index


def ngrams(text: str, n: int) -> Iterator[tuple[int, str]]:
    """(hash, n-gram text) of every word n-gram of the normalised text."""
    words = normalize(text).split(" ")
    for i in range(len(words) - n + 1):
        gram = " ".join(words[i : i + n])
        yield hash(gram), gram


@dataclass(frozen=True)
class Hit:
    eval_set: str
    eval_id: str
    ngram: str


class NgramIndex:
    """Every n-gram of the evaluation questions, hashed, with the first (set, item) it came from."""

    def __init__(self, n: int = 8):
        self.n = n
        self._grams: dict[int, tuple[str, str]] = {}
        self._texts: dict[str, tuple[str, str]] = {}
        self.items: Counter = Counter()

    def add(self, eval_set: str, item_id: str, text: str) -> None:
        self.items[eval_set] += 1
        self._texts.setdefault(normalize(text), (eval_set, item_id))
        for h, _ in ngrams(text, self.n):
            self._grams.setdefault(h, (eval_set, item_id))

    def __len__(self) -> int:
        return len(self._grams)

    def find(self, text: str) -> Hit | None:
        """The first n-gram of `text` found in the index (or an identical question), else None."""
        same = self._texts.get(normalize(text))
        if same is not None:
            return Hit(same[0], same[1], "(identical question)")
        for h, gram in ngrams(text, self.n):
            owner = self._grams.get(h)
            if owner is not None:
                return Hit(owner[0], owner[1], gram)
        return None


def build_index(cfg: DecontamConfig) -> tuple[NgramIndex, dict[str, Any]]:
    """The index over every evaluation set; a set that cannot be loaded is an error, or (with
    `skip_unavailable`) a recorded skip."""
    from s1.tasks import HubUnavailableError, TaskDataError, get_task

    index = NgramIndex(cfg.ngram)
    sets: dict[str, Any] = {}
    for name in cfg.eval_tasks:
        try:
            task = get_task(name)
        except ValueError as exc:
            raise CurateError(f"decontaminate.eval_tasks: {exc}") from None
        try:
            items = task.load(cfg.eval_data_dir)
        except (FileNotFoundError, TaskDataError, HubUnavailableError) as exc:
            if not cfg.skip_unavailable:
                raise CurateError(
                    f"decontaminate: evaluation set {name!r} could not be loaded ({exc}). Put its file in "
                    f"eval_data_dir, drop it from eval_tasks, or set skip_unavailable = true (it is then "
                    f"reported as skipped).") from None
            sets[name] = {"skipped": str(exc)}
            continue
        for item in items:
            index.add(name, item.id, item.question)
        sets[name] = {"items": len(items), "source": task.hub_id if cfg.eval_data_dir is None else cfg.eval_data_dir}
    for ef in cfg.eval_files:
        rows = read_local(ef.path, f"eval file {ef.name!r}")
        n = 0
        for i, row in enumerate(rows):
            text = row.get(ef.field)
            if not isinstance(text, str) or not text.strip():
                raise CurateError(f"eval file {ef.name!r}: row {i} of {ef.path} has no {ef.field!r} text")
            index.add(ef.name, str(row.get("id", i)), text)
            n += 1
        sets[ef.name] = {"items": n, "source": ef.path}
    return index, sets


# ---------------------------------------------------------------------------------------------- stage


def decontaminate(pool: list[Row], index: NgramIndex, dedup: bool = True) -> tuple[list[Row], list[Row]]:
    """(kept items, removed records with `reason`); order kept."""
    kept: list[Row] = []
    removed: list[Row] = []
    for item in pool:
        hit = index.find(item["question"])
        if hit is None:
            kept.append(item)
        else:
            removed.append({"id": item["id"], "source_type": item["source_type"], "reason": "contaminated",
                            "eval_set": hit.eval_set, "eval_id": hit.eval_id, "ngram": hit.ngram,
                            "question": item["question"]})
    if not dedup:
        return kept, removed
    first: dict[str, Row] = {}
    unique: list[Row] = []
    for item in kept:
        key = normalize(item["question"])
        if key in first:
            removed.append({"id": item["id"], "source_type": item["source_type"], "reason": "duplicate",
                            "duplicate_of": first[key]["id"], "duplicate_source": first[key]["source_type"],
                            "question": item["question"]})
        else:
            first[key] = item
            unique.append(item)
    return unique, removed


def run_decontaminate(cfg: DecontamConfig, out_dir: str | Path) -> dict[str, Any]:
    """Read `pool.jsonl`, write `clean.jsonl`, `removed.jsonl` and `decontaminate.json`."""
    out = Path(out_dir)
    pool = read_jsonl(out / "pool.jsonl")
    index, sets = build_index(cfg)
    kept, removed = decontaminate(pool, index, cfg.dedup)
    write_jsonl(out / CLEAN, kept)
    write_jsonl(out / REMOVED, removed)
    reasons = Counter(r["reason"] for r in removed)
    report = {"stage": "decontaminate", "ngram": cfg.ngram, "input": len(pool), "kept": len(kept),
              "contaminated": reasons["contaminated"], "duplicates": reasons["duplicate"],
              "by_eval_set": dict(Counter(r["eval_set"] for r in removed if r["reason"] == "contaminated")),
              "eval_sets": sets, "eval_ngrams": len(index)}
    write_json(out / REPORT, report)
    return report
