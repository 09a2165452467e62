"""What a benchmark is: a `Task` (where its data lives, which grader scores it) and its `TaskItem`s.

A task turns raw rows (a local file or the Hugging Face Hub, see `s1.tasks.sources`) into items whose
`question` is exactly what s1 prompts with and whose `gold` is what the task's grader compares against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRADERS: tuple[str, ...] = ("math", "choice", "mathvista", "synthetic")
"""Which grader scores an item: math equivalence, a multiple-choice letter, MathVista's normalisation,
or the synthetic families' exact verifiers."""


class TaskDataError(ValueError):
    """A task's data is unusable: a bad path or format, missing columns, a row without a gold answer."""


class HubUnavailableError(RuntimeError):
    """The Hugging Face Hub could not serve a task's dataset (offline, gated, not installed)."""


@dataclass(frozen=True)
class TaskItem:
    """One benchmark question, ready to prompt and grade.

    `id` is stable within the task (the dataset's own id where it has one, else the row index);
    `question` is the text s1 prompts with (GPQA: the question and its shuffled "A) ..." choices);
    `gold` is the gold answer string in the form the item's `grader` expects.
    """

    id: str
    question: str
    gold: str
    grader: str
    metadata: dict[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.grader not in GRADERS:
            raise ValueError(f"TaskItem.grader must be one of {list(GRADERS)}, got {self.grader!r}")
        for name in ("id", "question", "gold"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"TaskItem.{name} must be a str, got {getattr(self, name)!r}")
        if not isinstance(self.images, tuple):
            object.__setattr__(self, "images", tuple(self.images))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (images as a list)."""
        return {"id": self.id, "question": self.question, "gold": self.gold, "grader": self.grader,
                "metadata": dict(self.metadata), "images": list(self.images)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskItem:
        """Inverse of `to_dict`."""
        missing = [k for k in ("id", "question", "gold", "grader") if k not in data]
        if missing:
            raise ValueError(f"TaskItem is missing field(s) {missing}")
        return cls(id=data["id"], question=data["question"], gold=data["gold"], grader=data["grader"],
                   metadata=dict(data.get("metadata") or {}), images=tuple(data.get("images") or ()))


Loader = Callable[["Task", "Path | None", "int | None", int], list[TaskItem]]
"""How a task makes its items: (task, data path or None for the Hub, limit, seed) -> items."""


@dataclass(frozen=True)
class Task:
    """A benchmark: its Hub source, the local file names it answers to, its grader and its loader.

    `file_names` are the file stems (no extension) searched for in a data directory, most specific
    first (see `s1.tasks.sources.find_data_file`).
    """

    name: str
    hub_id: str | None
    hub_config: str | None
    hub_split: str
    grader: str
    description: str
    loader: Loader = field(repr=False, compare=False)
    file_names: tuple[str, ...] = ()
    gated: bool = False

    def __post_init__(self) -> None:
        if self.grader not in GRADERS:
            raise ValueError(f"Task.grader must be one of {list(GRADERS)}, got {self.grader!r}")

    def load(self, data_dir: str | Path | None = None, limit: int | None = None, seed: int = 0) -> list[TaskItem]:
        """The task's items in dataset order.

        `data_dir` is a data FILE or a DIRECTORY holding one (None: the Hugging Face Hub);
        `limit` keeps the first N items; `seed` fixes choice shuffling (GPQA) and nothing else.
        """
        check_limit(limit)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        path = None if data_dir is None else Path(data_dir).expanduser()
        return self.loader(self, path, limit, seed)


def check_limit(limit: int | None) -> None:
    """`limit` is None (everything) or an integer >= 1."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1 or None (all items), got {limit!r}")
