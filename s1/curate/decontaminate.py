"""Stage 2, decontaminate: s1's `collect_data.py` loop over the sources, after collection.

For each source group in config order (a group is one dataset to s1; most sources are their own):

1. drop items that share a word 8-gram with an evaluation set or, with `cross_source` (s1), with any
   item kept from an earlier group: s1 adds every kept source's questions to its test questions;
2. shuffle the rest as s1 does and, for a capped source, take s1's sample (`s1.curate.subsample`);
3. add what is kept to the index, so later groups are checked against it.

Then the groups marked `decontaminate = false` are appended as they are (s1 adds AIME after this loop,
`add_aime.py`), and exact duplicates go: a question equal to an earlier kept one, character for
character (s1's final `is_unique` filter). Every removal is written to `removed.jsonl` with its reason.

The index (`s1.curate.ngrams`) holds n-gram hashes in sorted arrays, so the whole stage is linear in
the text of the pool and evaluation sets: a 60K-item pool is never compared pairwise.

Evaluation sets: `s1.tasks` benchmarks (`eval_tasks`, from a data directory or the Hub) and
`eval_sets` (a Hub dataset or a local file, and the column holding its questions). Naming none gives
s1's four: AIME 2022-2024 (`AI-MO/aimo-validation-aime`), GPQA Diamond, MATH's test split
(`simplescaling/openaimath`) and LiveCodeBench up to release_v4.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s1.curate.io import CurateError, Row, read_jsonl, write_json, write_jsonl
from s1.curate.ngrams import NgramIndex, describe
from s1.curate.sources import QuestionList, SourceSpec, load_hub, read_local
from s1.curate.subsample import Sample, subsample
from s1.curate.table import Table

CLEAN = "clean.jsonl"
REMOVED = "removed.jsonl"
REPORT = "decontaminate.json"


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set the pool must not overlap: a Hub dataset (`hub_id`, `config`, `split`,
    `load_kwargs`) or a local file (`path`), and the column holding its questions (`field` in config)."""

    name: str
    column: str = "question"
    hub_id: str | None = None
    config: str | None = None
    split: str = "train"
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def from_table(cls, t: Table) -> EvalSet:
        kwargs = t.raw("load_kwargs", {})
        if not isinstance(kwargs, dict):
            raise CurateError(f"{t.path('load_kwargs')} must be a table, got {kwargs!r}")
        out = cls(name=t.str("name"), column=t.str("field", "question"), hub_id=t.str("hub_id", None),
                  config=t.str("config", None), split=t.str("split", "train"), load_kwargs=dict(kwargs),
                  path=t.str("path", None))
        if (out.hub_id is None) == (out.path is None):
            raise CurateError(f"{t.where} ({out.name}): give exactly one of hub_id or path")
        t.done()
        return out

    def load(self) -> list[tuple[str, str]]:
        """(item id, question) of every row."""
        label = f"eval set {self.name!r}"
        rows = (read_local(self.path, label) if self.path is not None
                else load_hub(self.hub_id or "", self.config, self.split, self.load_kwargs, label))
        out = []
        for i, row in enumerate(rows):
            text = row.get(self.column)
            if not isinstance(text, str) or not text.strip():
                raise CurateError(f"{label}: row {i} has no {self.column!r} text")
            out.append((str(row.get("id", i)), text))
        return out

    @property
    def origin(self) -> str:
        return str(self.path) if self.path is not None else f"hf://{self.hub_id}"


# s1's test sets (collect_data.py, `test_datasets`)
S1_EVAL_SETS: tuple[EvalSet, ...] = (
    EvalSet("aimo-validation-aime", "problem", hub_id="AI-MO/aimo-validation-aime", split="train"),
    EvalSet("gpqa_diamond", "Question", hub_id="Idavidrein/gpqa", config="gpqa_diamond", split="train"),
    EvalSet("openaimath-test", "problem", hub_id="simplescaling/openaimath", split="test"),
    EvalSet("livecodebench-v4", "question_content", hub_id="livecodebench/code_generation_lite", split="test",
            load_kwargs={"version_tag": "release_v4"}),
)


@dataclass(frozen=True)
class DecontamConfig:
    ngram: int = 8
    eval_tasks: tuple[str, ...] = ()
    eval_data_dir: str | None = None
    eval_sets: tuple[EvalSet, ...] = S1_EVAL_SETS
    skip_unavailable: bool = False
    cross_source: bool = True
    identical: bool = False
    shuffle_seed: int | None = 42
    keep_questions: QuestionList | None = QuestionList(questions="s1_keep_questions.json")
    dedup: bool = True

    @classmethod
    def from_table(cls, t: Table) -> DecontamConfig:
        tasks = t.strs("eval_tasks", ())
        sets = tuple(EvalSet.from_table(f) for f in [*t.tables("eval_sets"), *t.tables("eval_files")])
        named = t.has("eval_tasks") or t.has("eval_sets") or t.has("eval_files")
        keep = t.raw("keep_questions", "s1_keep_questions.json")
        if keep is not False and not isinstance(keep, str):
            raise CurateError(f"{t.path('keep_questions')} must be a file (JSON list of questions) or false")
        out = cls(ngram=t.int("ngram", 8, minimum=1), eval_tasks=tasks, eval_data_dir=t.str("eval_data_dir", None),
                  eval_sets=sets if named else S1_EVAL_SETS, skip_unavailable=t.bool("skip_unavailable", False),
                  cross_source=t.bool("cross_source", True), identical=t.bool("identical", False),
                  shuffle_seed=t.int("shuffle_seed", 42, minimum=0) if t.raw("shuffle_seed", 42) is not False
                  else None, keep_questions=QuestionList(questions=keep) if keep else None,
                  dedup=t.bool("dedup", True))
        t.done()
        return out


@dataclass(frozen=True)
class GroupPlan:
    """What decontamination does with one source group (from its first source's settings)."""

    limit: int | None = None
    sample: Sample = field(default_factory=Sample)
    decontaminate: bool = True


def group_plans(sources: tuple[SourceSpec, ...] | list[SourceSpec]) -> dict[str, GroupPlan]:
    plans: dict[str, GroupPlan] = {}
    for spec in sources:
        plans.setdefault(spec.group_name, GroupPlan(spec.limit, spec.sample, spec.decontaminate))
    return plans


# ---------------------------------------------------------------------------------------------- index


def build_index(cfg: DecontamConfig) -> tuple[NgramIndex, dict[str, Any]]:
    """The index over every evaluation set; a set that cannot be loaded is an error, or (with
    `skip_unavailable`) a recorded skip."""
    from s1.tasks import HubUnavailableError, TaskDataError, get_task

    index = NgramIndex(cfg.ngram, identical=cfg.identical)
    sets: dict[str, Any] = {}
    for name in cfg.eval_tasks:
        try:
            task = get_task(name)
        except ValueError as exc:
            raise CurateError(f"decontaminate.eval_tasks: {exc}") from None
        try:
            items = task.load(cfg.eval_data_dir)
        except (FileNotFoundError, TaskDataError, HubUnavailableError) as exc:
            _unavailable(cfg, name, exc, sets)
            continue
        index.add_many(name, [(item.id, item.question) for item in items])
        sets[name] = {"items": len(items), "source": task.hub_id if cfg.eval_data_dir is None else cfg.eval_data_dir}
    for es in cfg.eval_sets:
        try:
            items = es.load()
        except CurateError as exc:
            if es.path is not None:  # a local file the user named: always an error
                raise
            _unavailable(cfg, es.name, exc, sets)
            continue
        index.add_many(es.name, items)
        sets[es.name] = {"items": len(items), "source": es.origin}
    return index, sets


def _unavailable(cfg: DecontamConfig, name: str, exc: Exception, sets: dict[str, Any]) -> None:
    if not cfg.skip_unavailable:
        raise CurateError(
            f"decontaminate: evaluation set {name!r} could not be loaded ({exc}). Give a local copy (eval_data_dir "
            f"for a task, path for an eval set), drop it, or set skip_unavailable = true (it is then reported as "
            f"skipped).") from None
    sets[name] = {"skipped": str(exc)}


# ---------------------------------------------------------------------------------------------- stage


def _removal(item: Row, reason: str, **extra: Any) -> Row:
    return {"id": item["id"], "source_type": item.get("source_type"), "source": item.get("source"),
            "reason": reason, **extra, "question": item["question"]}


def decontaminate(pool: list[Row], index: NgramIndex, cfg: DecontamConfig | None = None,
                  plans: dict[str, GroupPlan] | None = None) -> tuple[list[Row], list[Row], dict[str, Any]]:
    """(kept items, removal records, per-group counts): the loop of the module docstring. `index` holds
    the evaluation sets; with `cross_source` it also receives every group's kept items."""
    cfg = cfg or DecontamConfig()
    plans = plans or {}
    eval_sets = set(index.items)
    keep = frozenset(cfg.keep_questions.load("decontaminate.keep_questions")) if cfg.keep_questions else frozenset()
    groups: dict[str, list[Row]] = {}
    for it in pool:
        groups.setdefault(it.get("group") or it.get("source") or "pool", []).append(it)
    kept: list[Row] = []
    later: list[Row] = []
    removed: list[Row] = []
    per_group: dict[str, Any] = {}
    for name, items in groups.items():
        plan = plans.get(name, GroupPlan())
        if not plan.decontaminate:
            later += items
            per_group[name] = {"input": len(items), "appended_after_decontamination": len(items)}
            continue
        clean: list[Row] = []
        counts: Counter = Counter()
        for it, hit in zip(items, index.find_many([it["question"] for it in items]), strict=True):
            if hit is None:
                clean.append(it)
                continue
            reason = "contaminated" if hit.source in eval_sets else "near-duplicate"
            counts[reason] += 1
            extra = ({"eval_set": hit.source, "eval_id": hit.item_id} if reason == "contaminated"
                     else {"duplicate_source": hit.source, "duplicate_of": hit.item_id})
            removed.append(_removal(it, reason, ngram=hit.ngram, **extra))
        chosen = list({id(it): it for it in subsample(clean, plan.limit, plan.sample, keep, cfg.shuffle_seed)}
                      .values())  # s1's sample can hold an item twice; its final dedup keeps one
        per_group[name] = {"input": len(items), **counts, "sampled_out": len(clean) - len(chosen), "kept": len(chosen)}
        if cfg.cross_source:
            index.add_many(name, [(it["id"], it["question"]) for it in chosen])
        kept += chosen
    kept += later
    if cfg.dedup:
        kept = _exact_dedup(kept, removed)
    return kept, removed, per_group


def _exact_dedup(items: list[Row], removed: list[Row]) -> list[Row]:
    """The first of items with the very same question (s1 compares the raw strings)."""
    first: dict[str, Row] = {}
    unique = []
    for it in items:
        earlier = first.setdefault(it["question"], it)
        if earlier is it:
            unique.append(it)
        else:
            removed.append(_removal(it, "duplicate", duplicate_of=earlier["id"],
                                    duplicate_source=earlier.get("source_type")))
    return unique


def run_decontaminate(cfg: DecontamConfig, out_dir: str | Path,
                      sources: tuple[SourceSpec, ...] | list[SourceSpec] = ()) -> dict[str, Any]:
    """Read `pool.jsonl`, write `clean.jsonl`, `removed.jsonl` and `decontaminate.json`. `sources` give
    each group's cap and sampling (the config's [[sources]])."""
    out = Path(out_dir)
    pool = read_jsonl(out / "pool.jsonl")
    index, sets = build_index(cfg)
    eval_ngrams = len(index)
    kept, removed, per_group = decontaminate(pool, index, cfg, group_plans(sources))
    write_jsonl(out / CLEAN, kept)
    write_jsonl(out / REMOVED, removed)
    reasons = Counter(r["reason"] for r in removed)
    report = {"stage": "decontaminate", "ngram": cfg.ngram, "cross_source": cfg.cross_source, "input": len(pool),
              "kept": len(kept), "contaminated": reasons["contaminated"], "near_duplicates": reasons["near-duplicate"],
              "duplicates": reasons["duplicate"],
              "sampled_out": sum(g.get("sampled_out", 0) for g in per_group.values()),
              "by_eval_set": dict(Counter(r["eval_set"] for r in removed if r["reason"] == "contaminated")),
              "by_group": per_group, "eval_sets": sets, "eval_ngrams": eval_ngrams, "index": describe(index)}
    write_json(out / REPORT, report)
    return report
