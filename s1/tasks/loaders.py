"""Turning each benchmark's raw rows into `TaskItem`s: columns, gold answers, ids, metadata.

Every loader accepts both the shared data files' columns and the Hub dataset's own (column names match
case-insensitively, spaces and underscores alike). A row without a required value is an error that names
the row; nothing is skipped.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s1.tasks.base import TaskDataError, TaskItem
from s1.tasks.prompts import CHOICE_LETTERS, choice_question, mathvista_query
from s1.tasks.sources import ROW_KEY, Columns, Row, load_rows, task_label

if TYPE_CHECKING:
    from s1.tasks.base import Loader, Task

SYNTHETIC_DEFAULT_N = 400
"""Items in the `synthetic` task when no limit is given (`s1.synthetic.benchmark.heldout_items`' default)."""

_INT_RE = re.compile(r"[+-]?\d+")
_GSM8K_SEP = "####"


# ---------------------------------------------------------------------------------------------- rows


class RowView:
    """One raw row with its task's column mapping; errors name the task, the row and the source."""

    def __init__(self, row: Row, index: int, columns: dict[str, str], label: str, source: str, seed: int):
        self.row, self.index, self.columns = row, index, columns
        self.label, self.source, self.seed = label, source, seed

    def get(self, field: str) -> Any:
        """The field's value; None when the column is absent or the value is null, NaN or blank."""
        col = self.columns.get(field)
        value = None if col is None else self.row.get(col)
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    def text(self, field: str) -> str | None:
        value = self.get(field)
        return None if value is None else scalar_text(value)

    def required(self, field: str) -> Any:
        value = self.get(field)
        if value is None:
            raise TaskDataError(f"{self.label}: {self.where} has no {self.columns[field]!r} value")
        return value

    def required_text(self, field: str) -> str:
        """The value as stripped text (`scalar_text`)."""
        return scalar_text(self.required(field))

    def required_raw(self, field: str) -> str:
        """The value exactly as the source has it (question texts: s1 prompts with them verbatim)."""
        value = self.required(field)
        return value if isinstance(value, str) else scalar_text(value)

    def item_id(self, *fields: str) -> str:
        """The first present id field, else the JSON object key, else the row index."""
        for field in fields:
            value = self.text(field)
            if value is not None:
                return value
        key = self.row.get(ROW_KEY)
        return str(key) if key is not None else str(self.index)

    @property
    def where(self) -> str:
        return f"row {self.index} of {self.source}"

    def fail(self, problem: str) -> TaskDataError:
        return TaskDataError(f"{self.label}: {self.where}: {problem}")


def scalar_text(value: Any) -> str:
    """A cell as text: integral floats lose their `.0` (Parquet may widen ints), strings are stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else str(value)


def canonical_integer(value: Any) -> str:
    """`025` -> `25`; anything that is not an integer is kept as text (as s1 does: 023 -> 23 only if digits)."""
    text = scalar_text(value)
    return str(int(text)) if _INT_RE.fullmatch(text) else text


Convert = Callable[[RowView], TaskItem]


def table_loader(required: dict[str, tuple[str, ...]], optional: dict[str, tuple[str, ...]],
                 convert: Convert) -> Loader:
    """A loader that reads rows, checks the required columns, converts the first `limit` rows in order."""

    def load(task: Task, path: Path | None, limit: int | None, seed: int) -> list[TaskItem]:
        rows, source = load_rows(task, path)
        label = task_label(task)
        cols = Columns(rows)
        mapping = cols.require(required, label, source)
        for field, aliases in optional.items():
            col = cols.find(aliases)
            if col is not None:
                mapping[field] = col
        chosen = rows if limit is None else rows[:limit]
        items = [convert(RowView(row, i, mapping, label, source, seed)) for i, row in enumerate(chosen)]
        check_unique_ids(items, label, source)
        return items

    return load


def check_unique_ids(items: list[TaskItem], label: str, source: str) -> None:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in first:
            raise TaskDataError(f"{label}: {source}: rows {first[item.id]} and {i} share the id {item.id!r}; "
                                f"item ids must be unique")
        first[item.id] = i


# ---------------------------------------------------------------------------------------------- AIME / MATH / GSM8K


AIME_REQUIRED = {"problem": ("problem", "question"), "answer": ("answer",)}
AIME_OPTIONAL = {"id": ("id",), "url": ("url",)}


def aime_item(row: RowView) -> TaskItem:
    raw = row.required_text("answer")
    meta: dict[str, Any] = {"answer_raw": raw}
    if row.text("url") is not None:
        meta["url"] = row.text("url")
    return TaskItem(id=row.item_id("id", "url"), question=row.required_raw("problem"), gold=canonical_integer(raw),
                    grader="math", metadata=meta)


MATH_REQUIRED = {"problem": ("problem", "question"), "answer": ("answer",)}
MATH_OPTIONAL = {"subject": ("subject", "type"), "level": ("level",), "unique_id": ("unique_id", "id")}


def math500_item(row: RowView) -> TaskItem:
    meta = {k: row.get(k) for k in ("subject", "level", "unique_id") if row.get(k) is not None}
    return TaskItem(id=row.item_id("unique_id"), question=row.required_raw("problem"), gold=row.required_text("answer"),
                    grader="math", metadata=meta)


GSM8K_REQUIRED = {"question": ("question", "problem"), "answer": ("answer",)}
GSM8K_OPTIONAL = {"id": ("id",)}


def gsm8k_gold(answer: str) -> str:
    """The number after `####`, thousands commas removed (`#### 1,600` -> `1600`); ValueError if absent."""
    if _GSM8K_SEP not in answer:
        raise ValueError(f"answer has no {_GSM8K_SEP!r} line")
    gold = answer.rsplit(_GSM8K_SEP, 1)[1].strip().replace(",", "")
    if not gold:
        raise ValueError(f"nothing follows {_GSM8K_SEP!r} in the answer")
    return gold


def gsm8k_item(row: RowView) -> TaskItem:
    answer = row.required_text("answer")
    try:
        gold = gsm8k_gold(answer)
    except ValueError as exc:
        raise row.fail(f"{exc}: {answer[-80:]!r}") from None
    solution = answer.rsplit(_GSM8K_SEP, 1)[0].strip()
    return TaskItem(id=row.item_id("id"), question=row.required_raw("question"), gold=gold, grader="math",
                    metadata={"solution": solution})


# ---------------------------------------------------------------------------------------------- GPQA


GPQA_REQUIRED = {
    "question": ("Question",),
    "correct": ("Correct Answer",),
    "incorrect1": ("Incorrect Answer 1",),
    "incorrect2": ("Incorrect Answer 2",),
    "incorrect3": ("Incorrect Answer 3",),
}
GPQA_OPTIONAL = {"record_id": ("Record ID", "id"), "subdomain": ("Subdomain",),
                 "domain": ("High-level domain", "domain")}


def choice_order(seed: int, item_id: str, n: int = 4) -> list[int]:
    """A permutation of range(n) fixed by (seed, item id) alone: the same whatever the row order or process."""
    digest = hashlib.sha256(f"s1.tasks.choices|{seed}|{item_id}".encode()).digest()
    order = list(range(n))
    random.Random(int.from_bytes(digest[:16], "big")).shuffle(order)
    return order


def gpqa_item(row: RowView) -> TaskItem:
    item_id = row.item_id("record_id")
    # Index 0 is the correct answer. s1 lists [Incorrect 1, 2, 3, Correct] and shuffles with the global RNG;
    # here the shuffle is seeded per (seed, item id) so a run is reproducible whatever the row order.
    # Texts are stripped of surrounding whitespace (some GPQA cells end in a newline, which would break
    # the "A) ...\nB) ..." layout); s1 uses them as they are.
    options = [row.required_text(f) for f in ("correct", "incorrect1", "incorrect2", "incorrect3")]
    order = choice_order(row.seed, item_id)
    choices = [options[i] for i in order]
    letter = CHOICE_LETTERS[order.index(0)]
    question = row.required_text("question")
    meta: dict[str, Any] = {"choices": choices, "correct_letter": letter, "correct_answer": options[0],
                            "question_text": question, "shuffle_seed": row.seed}
    for key in ("record_id", "subdomain", "domain"):
        if row.text(key) is not None:
            meta[key] = row.text(key)
    return TaskItem(id=item_id, question=choice_question(question, choices), gold=letter, grader="choice",
                    metadata=meta)


# ---------------------------------------------------------------------------------------------- MathVista


MATHVISTA_REQUIRED = {"question": ("question",), "answer": ("answer",)}
MATHVISTA_OPTIONAL = {
    "pid": ("pid",), "query": ("query",), "choices": ("choices",), "unit": ("unit",),
    "precision": ("precision",), "question_type": ("question_type",), "answer_type": ("answer_type",),
    "metadata": ("metadata",), "image": ("image",),
}


def _as_list(row: RowView, field: str) -> list[str] | None:
    value = row.get(field)
    if value is None:
        return None
    if isinstance(value, str):  # a CSV export writes the list as text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise row.fail(f"{row.columns[field]!r} is not a list: {value[:80]!r}") from None
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise row.fail(f"{row.columns[field]!r} must be a list, got {type(value).__name__}")
    return [scalar_text(v) for v in value]


def _as_number(row: RowView, field: str) -> int | float | None:
    value = row.get(field)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise row.fail(f"{row.columns[field]!r} must be a number, got {value!r}") from None
    return int(number) if number.is_integer() else number


def mathvista_item(row: RowView) -> TaskItem:
    question = row.required_raw("question")
    gold = row.required_text("answer")
    choices = _as_list(row, "choices")
    unit, qtype, atype = row.text("unit"), row.text("question_type"), row.text("answer_type")
    precision = _as_number(row, "precision")
    query = row.get("query")
    if query is None:
        query = mathvista_query(question, question_type=qtype, answer_type=atype, choices=choices, unit=unit,
                                precision=precision)
    image = row.text("image")
    meta: dict[str, Any] = {"question_text": question, "choices": choices, "question_type": qtype,
                            "answer_type": atype, "precision": precision, "unit": unit}
    if choices and gold in choices:
        meta["gold_letter"] = CHOICE_LETTERS[choices.index(gold)]
    if row.get("metadata") is not None:
        meta["mathvista"] = row.get("metadata")
    if image is not None:
        meta["image"] = image
        if not row.source.startswith("hf://"):
            meta["image_root"] = str(Path(row.source).parent)
    return TaskItem(id=row.item_id("pid"), question=str(query), gold=gold, grader="mathvista", metadata=meta,
                    images=(image,) if image else ())


# ---------------------------------------------------------------------------------------------- synthetic


def load_synthetic(task: Task, path: Path | None, limit: int | None, seed: int) -> list[TaskItem]:
    """The fixed held-out synthetic benchmark (`limit` items, default 400), or a JSONL/JSON file of
    `SyntheticItem` dicts. `seed` does not change the items: every run scores the same set."""
    from s1.synthetic.benchmark import heldout_items
    from s1.synthetic.families import get_family
    from s1.synthetic.item import SyntheticItem

    label = task_label(task)
    if path is not None and path.is_dir() and not any(path.glob("synthetic*")):
        path = None  # a data directory for the other tasks of a run: the built-in benchmark is meant
    if path is None:
        items = heldout_items(n=limit or SYNTHETIC_DEFAULT_N)
        source = "s1.synthetic.benchmark.heldout_items"
    else:
        rows, source = load_rows(task, path)
        items = []
        for i, row in enumerate(rows if limit is None else rows[:limit]):
            try:
                item = SyntheticItem.from_dict({k: v for k, v in row.items() if k != ROW_KEY})
                get_family(item.family)
            except ValueError as exc:
                raise TaskDataError(f"{label}: row {i} of {source}: {exc}") from None
            items.append(item)
    out = [TaskItem(id=it.id, question=it.question, gold=it.answer, grader="synthetic",
                    metadata={"family": it.family, "difficulty": it.difficulty}) for it in items]
    check_unique_ids(out, label, source)
    return out


load_aime = table_loader(AIME_REQUIRED, AIME_OPTIONAL, aime_item)
load_math500 = table_loader(MATH_REQUIRED, MATH_OPTIONAL, math500_item)
load_gsm8k = table_loader(GSM8K_REQUIRED, GSM8K_OPTIONAL, gsm8k_item)
load_gpqa = table_loader(GPQA_REQUIRED, GPQA_OPTIONAL, gpqa_item)
load_mathvista = table_loader(MATHVISTA_REQUIRED, MATHVISTA_OPTIONAL, mathvista_item)
