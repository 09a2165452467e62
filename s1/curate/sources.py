"""Declarative sources: where a dataset lives and how its rows become pool items.

A source names a Hugging Face Hub dataset (`hub_id`, `config`, `split`) or a local file (`path`:
JSONL, JSON, Parquet or CSV), says which columns hold the question and solution (a column name, or a
template such as ``"{passage}\\n\\n{question}"``; ``{solution[0]}`` indexes a list), filters rows,
cleans text, and tags each item with `cot_type` and `source_type`. Every row becomes one item of the
one pool schema::

    {"id", "question", "solution", "cot_type", "source_type", "metadata", "source", "group"}

`id` is s1's question hash; `metadata` keeps the row's other columns (and the gold `answer`, when a
column holds it); `source` is the source's name and `group` the dataset it is decontaminated and capped
with (`s1.curate.decontaminate`, which also applies `limit`, after decontamination as s1 does). A row
that a filter drops, that lacks a question, or that `include` / `exclude` rule out is counted by
reason, never dropped silently. GPQA-style rows (one correct and three incorrect choices) get their
choices shuffled by a seed fixed per question, as `s1.tasks` does for evaluation.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s1.curate.io import CurateError, Row, question_hash
from s1.curate.subsample import Sample
from s1.curate.table import Table

POOL_FIELDS: tuple[str, ...] = ("id", "question", "solution", "cot_type", "source_type", "metadata", "source",
                                 "group")
FILTER_OPS: tuple[str, ...] = ("equals", "not_equals", "in", "not_in", "null", "min", "max", "matches")
TRANSFORM_OPS: tuple[str, ...] = ("after", "after_last", "before", "replace", "prefix", "suffix", "strip")
TEXT_FIELDS: tuple[str, ...] = ("question", "solution", "answer")
CHOICE_LETTERS = "ABCD"


# ---------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class RowFilter:
    """Keep a row only if `field` passes `op` against `value` (`null`: value true keeps null rows)."""

    field: str
    op: str
    value: Any

    @classmethod
    def from_table(cls, t: Table) -> RowFilter:
        column = t.str("field")
        ops = [op for op in FILTER_OPS if t.has(op)]
        if len(ops) != 1:
            raise CurateError(f"{t.where}: give exactly one of {', '.join(FILTER_OPS)}")
        op = ops[0]
        value = t.raw(op)
        if op in ("in", "not_in") and not isinstance(value, list):
            raise CurateError(f"{t.path(op)} must be a list, got {value!r}")
        if op in ("min", "max") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CurateError(f"{t.path(op)} must be a number, got {value!r}")
        if op == "null" and not isinstance(value, bool):
            raise CurateError(f"{t.path(op)} must be true or false, got {value!r}")
        if op == "matches":
            try:
                value = re.compile(value)
            except (re.error, TypeError) as exc:
                raise CurateError(f"{t.path(op)} is not a valid regular expression: {exc}") from None
        t.done()
        return cls(column, op, value)

    def keep(self, row: Row) -> bool:
        v = row.get(self.field)
        if self.op == "null":
            return (v is None) == self.value
        if self.op == "equals":
            return v == self.value
        if self.op == "not_equals":
            return v != self.value
        if self.op == "in":
            return v in self.value
        if self.op == "not_in":
            return v not in self.value
        if self.op == "matches":
            return v is not None and self.value.search(str(v)) is not None
        number = _number(v)
        if number is None:
            return False
        return number >= self.value if self.op == "min" else number <= self.value


@dataclass(frozen=True)
class Transform:
    """A text clean-up on one built field: keep what follows / precedes a marker, replace, add text."""

    field: str
    op: str
    value: Any

    @classmethod
    def from_table(cls, t: Table) -> Transform:
        name = t.str("field", choices=TEXT_FIELDS)
        ops = [op for op in TRANSFORM_OPS if t.has(op)]
        if len(ops) != 1:
            raise CurateError(f"{t.where}: give exactly one of {', '.join(TRANSFORM_OPS)}")
        op = ops[0]
        value = t.raw(op)
        if op == "replace":
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise CurateError(f"{t.path(op)} must be [old, new] (two strings), got {value!r}")
        elif op == "strip":
            if not isinstance(value, bool):
                raise CurateError(f"{t.path(op)} must be true or false, got {value!r}")
        elif not isinstance(value, str) or not value:
            raise CurateError(f"{t.path(op)} must be a non-empty string, got {value!r}")
        t.done()
        return cls(name, op, value)

    def apply(self, text: str) -> str:
        op, v = self.op, self.value
        if op == "after":
            return text.split(v, 1)[1] if v in text else text
        if op == "after_last":
            return text.rsplit(v, 1)[1] if v in text else text
        if op == "before":
            return text.split(v, 1)[0]
        if op == "replace":
            return text.replace(v[0], v[1])
        if op == "prefix":
            return v + text
        if op == "suffix":
            return text + v
        return text.strip() if v else text


@dataclass(frozen=True)
class Choices:
    """GPQA-style choices: the correct answer's column and the incorrect ones'; shuffled per question."""

    correct: str
    incorrect: tuple[str, ...]

    @classmethod
    def from_table(cls, t: Table) -> Choices:
        correct = t.str("correct")
        incorrect = t.strs("incorrect")
        if len(incorrect) != 3:
            raise CurateError(f"{t.path('incorrect')} must name 3 columns, got {len(incorrect)}")
        t.done()
        return cls(correct, incorrect)


@dataclass(frozen=True)
class QuestionList:
    """The questions of another dataset (a column of a Hub dataset or local file), or a JSON list of
    question strings (`questions`: a path, or a shipped protocol file such as `s1_keep_questions.json`).
    Sources `exclude` rows whose question is in one (GPQA extended minus diamond) or `include` only rows
    whose question is in one (s1's NuminaMath subset); the match is exact, as s1's `in` tests are."""

    field: str | None = None
    hub_id: str | None = None
    config: str | None = None
    split: str = "train"
    path: str | None = None
    questions: str | None = None

    @classmethod
    def from_table(cls, t: Table) -> QuestionList:
        out = cls(field=t.str("field", None), hub_id=t.str("hub_id", None), config=t.str("config", None),
                  split=t.str("split", "train"), path=t.str("path", None), questions=t.str("questions", None))
        if sum(x is not None for x in (out.hub_id, out.path, out.questions)) != 1:
            raise CurateError(f"{t.where}: give exactly one of hub_id, path (with field) or questions")
        if out.questions is None and out.field is None:
            raise CurateError(f"{t.where}: field (the question column) is required with hub_id or path")
        t.done()
        return out

    def load(self, label: str) -> set[str]:
        if self.questions is not None:
            import json

            from s1.curate.protocol import path_of

            try:
                values = json.loads(path_of(self.questions).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CurateError(f"{label}: cannot read the question list {self.questions!r} ({exc})") from None
            return {v for v in values if isinstance(v, str)}
        rows = read_local(self.path, label) if self.path else load_hub(self.hub_id or "", self.config, self.split, {},
                                                                        label)
        return {str(row[self.field]) for row in rows if row.get(self.field) is not None}


CONCAT_ORDERS = ("config", "split")


@dataclass(frozen=True)
class SourceSpec:
    """One dataset of the pool, declared in config (see the module docstring)."""

    name: str
    question: str
    hub_id: str | None = None
    path: str | None = None
    configs: tuple[str | None, ...] = (None,)
    splits: tuple[str, ...] = ("train",)
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    solution: str | None = None
    answer: str | None = None
    cot_type: str = "math"
    cot_type_from: str | None = None
    cot_type_map: dict[str, str] = field(default_factory=dict)
    source_type: str | None = None
    filters: tuple[RowFilter, ...] = ()
    transforms: tuple[Transform, ...] = ()
    choices: Choices | None = None
    exclude: tuple[QuestionList, ...] = ()
    include: tuple[QuestionList, ...] = ()
    limit: int | None = None
    sample: Sample = field(default_factory=Sample)
    group: str | None = None
    decontaminate: bool = True
    concat: str = "config"
    metadata: tuple[str, ...] | None = None

    @classmethod
    def from_table(cls, t: Table) -> SourceSpec:
        name = t.str("name")
        hub_id, path = t.str("hub_id", None), t.str("path", None)
        if (hub_id is None) == (path is None):
            raise CurateError(f"{t.where} ({name}): give exactly one of hub_id (a Hub dataset) or path (a local file)")
        configs = t.strs("config", (None,))
        load_kwargs = t.raw("load_kwargs", {})
        if not isinstance(load_kwargs, dict):
            raise CurateError(f"{t.path('load_kwargs')} must be a table, got {load_kwargs!r}")
        cot_map = t.raw("cot_type_map", {})
        if not isinstance(cot_map, dict) or not all(isinstance(v, str) for v in cot_map.values()):
            raise CurateError(f"{t.path('cot_type_map')} must be a table of strings, got {cot_map!r}")
        choices = Choices.from_table(t.table("choices")) if t.has("choices") else t.raw("choices", None)
        spec = cls(
            name=name, question=t.str("question"), hub_id=hub_id, path=path, configs=configs,
            splits=t.strs("split", ("train",)), load_kwargs=dict(load_kwargs), solution=t.str("solution", None),
            answer=t.str("answer", None), cot_type=t.str("cot_type", "math"),
            cot_type_from=t.str("cot_type_from", None),
            cot_type_map=dict(cot_map), source_type=t.str("source_type", None),
            filters=tuple(RowFilter.from_table(f) for f in t.tables("filters")),
            transforms=tuple(Transform.from_table(f) for f in t.tables("transforms")),
            choices=choices, exclude=tuple(QuestionList.from_table(f) for f in t.tables("exclude")),
            include=tuple(QuestionList.from_table(f) for f in t.tables("include")),
            limit=t.int("limit", None, minimum=1),
            sample=Sample.from_table(t.table("sample")) if t.has("sample") else Sample(),
            group=t.str("group", None), decontaminate=t.bool("decontaminate", True),
            concat=t.str("concat", "config", choices=CONCAT_ORDERS), metadata=t.strs("metadata", None),
        )
        if spec.sample.method != "first" and spec.limit is None:
            raise CurateError(f"{t.path('sample')}: a sampling method needs a limit")
        for key in ("question", "solution", "answer", "source_type"):
            _check_template(getattr(spec, key), t.path(key))
        t.done()
        return spec

    @property
    def label(self) -> str:
        return f"source {self.name!r}"

    @property
    def group_name(self) -> str:
        """Sources of one group are decontaminated, shuffled and capped as one dataset (s1 concatenates
        e.g. AGIEval's configs, or NuminaMath's subset and its aops_forum rows, before doing so)."""
        return self.group or self.name

    @property
    def origin(self) -> str:
        return f"hf://{self.hub_id}" if self.hub_id else str(self.path)


# ---------------------------------------------------------------------------------------------- templates


class _Joined(list):
    """A list cell inside a template: `{options}` joins the items by newlines; `{options[0]}` indexes."""

    def __format__(self, spec: str) -> str:
        return "\n".join(str(v) for v in self)


def _check_template(template: str | None, where: str) -> None:
    if template is None or "{" not in template:
        return
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        raise CurateError(f"{where}: not a valid template ({exc}); write {{column}} for a column's text") from None


def template_columns(template: str) -> list[str]:
    """The columns a field reads: the name itself, or every `{column...}` in a template."""
    if "{" not in template:
        return [template]
    out = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            out.append(re.split(r"[.\[]", name, maxsplit=1)[0])
    return out


def render(template: str, row: Row) -> str | None:
    """A field's text for one row: a column's value (lists joined by newlines) or a filled template.
    None when the column (or every column of the template) is null or blank."""
    if "{" not in template:
        return _text(row.get(template))
    values = {k: _Joined(v) if isinstance(v, list | tuple) else ("" if _blank(v) else v)
              for k, v in row.items()}
    if all(_blank(row.get(c)) for c in template_columns(template)):
        return None
    try:
        text = template.format_map(values)
    except IndexError:  # `{solution[0]}` of an empty list: no text
        return None
    except (KeyError, AttributeError, TypeError) as exc:
        raise CurateError(f"template {template!r} failed on a row ({type(exc).__name__}: {exc})") from None
    return text.strip() or None


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str | None:
    if _blank(v):
        return None
    if isinstance(v, list | tuple):
        parts = [str(x) for x in v if not _blank(x)]
        return "\n".join(parts).strip() or None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip() or None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- rows


def load_source_rows(spec: SourceSpec) -> list[Row]:
    """The raw rows of a source: every (config, split) from the Hub, or the local file."""
    if spec.path is not None:
        return read_local(spec.path, spec.label)
    pairs = [(c, s) for c in spec.configs for s in spec.splits]
    if spec.concat == "split":  # every config's first split, then every config's second (s1's OlympicArena)
        pairs = [(c, s) for s in spec.splits for c in spec.configs]
    rows: list[Row] = []
    for config, split in pairs:
        rows += load_hub(spec.hub_id or "", config, split, spec.load_kwargs, spec.label)
    return rows


def read_local(path: str, label: str) -> list[Row]:
    """Rows of a local JSONL / JSON / Parquet / CSV file (or `<stem>-*.parquet` shards)."""
    from s1.tasks.base import TaskDataError
    from s1.tasks.sources import read_rows

    p = Path(path).expanduser()
    if "*" not in p.name and not p.is_file():
        raise CurateError(f"{label}: path {p} is not a file")
    try:
        return read_rows(p, label)
    except TaskDataError as exc:
        raise CurateError(str(exc)) from None


def load_hub(hub_id: str, config: str | None, split: str, kwargs: dict[str, Any], label: str) -> list[Row]:
    """One split of a Hub dataset through `datasets.load_dataset` (image columns dropped). Each row gets
    `_config` and `_split`, so templates, filters and `cot_type_from` can tell configs apart."""
    where = f"{hub_id}" + (f" (config {config!r})" if config else "") + f", split {split!r}"
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, config, split=split, **kwargs)
        images = [n for n, f in ds.features.items() if isinstance(f, datasets.Image)]
        rows = (ds.remove_columns(images) if images else ds).to_list()
    except Exception as exc:  # offline, gated, renamed: one message with the way out
        raise CurateError(
            f"{label}: could not load {where} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            f"If the Hub cannot be reached, download the data and give the source a local `path`.") from exc
    return [{**row, "_config": config, "_split": split} for row in rows]


# ---------------------------------------------------------------------------------------------- items


@dataclass
class SourceResult:
    """What one source gave: its items and how many rows each reason dropped."""

    name: str
    origin: str
    rows: int = 0
    items: list[Row] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        return {"origin": self.origin, "rows": self.rows, "items": len(self.items), "dropped": dict(self.dropped)}


def build_items(spec: SourceSpec, rows: list[Row], seed: int) -> SourceResult:
    """Turn a source's raw rows into pool items (filters, inclusion, exclusion, transforms, choices).
    A source's `limit` is applied later, after decontamination, as s1 does (`s1.curate.subsample`)."""
    result = SourceResult(spec.name, spec.origin, rows=len(rows))
    _check_columns(spec, rows)
    excluded = _question_set(spec.exclude, spec.label)
    included = _question_set(spec.include, spec.label) if spec.include else None
    kept: list[Row] = []
    for row in rows:
        failed = next((f for f in spec.filters if not f.keep(row)), None)
        if failed is not None:
            result.dropped[f"filter {failed.field} {failed.op}"] += 1
            continue
        raw = _raw_question(spec, row)
        if included is not None and raw not in included:
            result.dropped["not included"] += 1
            continue
        if raw in excluded:
            result.dropped["excluded"] += 1
            continue
        built = _item(spec, row, seed)
        if built is None:
            result.dropped["no question"] += 1
        else:
            kept.append({**built[0], "source": spec.name, "group": spec.group_name})
    result.items = kept
    return result


def _raw_question(spec: SourceSpec, row: Row) -> str | None:
    """The question as the dataset holds it (what s1's `in` tests compare): the column's value, or the
    filled template."""
    if "{" not in spec.question:
        value = row.get(spec.question)
        return None if value is None else str(value)
    return render(spec.question, row)


def _check_columns(spec: SourceSpec, rows: list[Row]) -> None:
    """Every column the spec reads must exist in the data: a typo is an error, not an empty pool."""
    present: dict[str, None] = {}
    for row in rows[:1000]:
        present.update(dict.fromkeys(row))
    wanted: dict[str, str] = {}
    for key in ("question", "solution", "answer", "source_type"):
        template = getattr(spec, key)
        if template is not None and (key != "source_type" or "{" in template):
            for col in template_columns(template):
                wanted.setdefault(col, key)
    for f in spec.filters:
        wanted.setdefault(f.field, "filters")
    if spec.cot_type_from:
        wanted.setdefault(spec.cot_type_from, "cot_type_from")
    if spec.choices:
        for col in (spec.choices.correct, *spec.choices.incorrect):
            wanted.setdefault(col, "choices")
    missing = [f"{col!r} (for {key})" for col, key in wanted.items() if col not in present]
    if rows and missing:
        shown = ", ".join(repr(c) for c in list(present)[:30])
        raise CurateError(f"{spec.label}: {spec.origin} has no column {', '.join(missing)}; its columns: {shown}")


def _item(spec: SourceSpec, row: Row, seed: int) -> tuple[Row, str] | None:
    """The pool item of one row and its question before choices were added; None without a question."""
    texts: dict[str, str | None] = {}
    for key in TEXT_FIELDS:
        template = getattr(spec, key)
        texts[key] = render(template, row) if template is not None else None
    for t in spec.transforms:
        if texts[t.field] is not None:
            texts[t.field] = t.apply(texts[t.field] or "").strip() or None
    question, solution, answer = texts["question"], texts["solution"], texts["answer"]
    if question is None:
        return None
    used = set(template_columns(spec.question))
    for key in ("solution", "answer"):
        if getattr(spec, key) is not None:
            used.update(template_columns(getattr(spec, key)))
    keep = spec.metadata if spec.metadata is not None else [k for k in row if k not in used]
    metadata = {k: _json_safe(row.get(k)) for k in keep}
    raw_question = question
    if spec.choices is not None:
        question, solution, answer = _shuffle_choices(spec.choices, row, question, solution, seed)
        metadata["correct_letter"] = answer
    if answer is not None:
        metadata["answer"] = answer
    cot_type = spec.cot_type
    if spec.cot_type_from is not None:
        cot_type = spec.cot_type_map.get(str(row.get(spec.cot_type_from)), spec.cot_type)
    source_type = spec.hub_id or spec.name
    if spec.source_type is not None:  # a literal, or a template over the row
        source_type = render(spec.source_type, row) if "{" in spec.source_type else spec.source_type
    item = {"id": question_hash(question), "question": question, "solution": solution, "cot_type": cot_type,
            "source_type": source_type or spec.name, "metadata": metadata}
    return item, raw_question


def _shuffle_choices(choices: Choices, row: Row, question: str, solution: str | None,
                     seed: int) -> tuple[str, str, str]:
    """s1's GPQA layout: the question, then `Answer Choices:` (A)-(D) in an order fixed by (seed,
    question); the solution ends with `Answer: <letter>`."""
    from s1.tasks.loaders import choice_order

    options = [(_text(row.get(c)) or "") for c in (choices.correct, *choices.incorrect)]
    order = choice_order(seed, question_hash(question), len(options))
    letter = CHOICE_LETTERS[order.index(0)]
    lines = [f"({CHOICE_LETTERS[k]}) {options[i]}" for k, i in enumerate(order)]
    formatted = question + "\nAnswer Choices:\n" + "\n".join(lines)
    answer_line = f"Answer: {letter}"
    return formatted, (f"{solution}\n\n{answer_line}" if solution else answer_line), letter


def _question_set(lists: tuple[QuestionList, ...], label: str) -> set[str]:
    out: set[str] = set()
    for q in lists:
        out |= q.load(label)
    return out


def _json_safe(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    return str(v)
