"""The benchmarks s1 evaluates on, keyed by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from s1.tasks.base import Task, TaskItem
from s1.tasks.loaders import (
    load_aime,
    load_gpqa,
    load_gsm8k,
    load_math500,
    load_mathvista,
    load_synthetic,
)

_TASKS: tuple[Task, ...] = (
    Task("aime24", "simplescaling/aime24_nofigures", None, "train", "math",
         "AIME 2024 I+II, 30 problems, figures described in text (s1's aime24_nofigures); integer answers 0-999",
         load_aime, file_names=("aime24", "aime24_nofigures")),
    Task("aime24_figures", "simplescaling/aime24_figures", None, "train", "math",
         "AIME 2024 I+II, 30 problems with their figures as Asymptote code (s1's aime24_figures)",
         load_aime, file_names=("aime24_figures",)),
    Task("aime25", "simplescaling/aime25_nofigures", None, "train", "math",
         "AIME 2025 I+II, 30 problems (s1's aime25_nofigures); integer answers 0-999",
         load_aime, file_names=("aime25", "aime25_nofigures", "aime_2025")),
    Task("math500", "HuggingFaceH4/MATH-500", None, "test", "math",
         "MATH-500: 500 competition problems from the MATH test set (s1's openai_math)",
         load_math500, file_names=("math500", "MATH-500", "math_500")),
    Task("gpqa_diamond", "Idavidrein/gpqa", "gpqa_diamond", "train", "choice",
         "GPQA Diamond: 198 graduate-level science multiple-choice questions, choices shuffled per item (gated)",
         load_gpqa, file_names=("gpqa_diamond", "gpqa"), gated=True),
    Task("gsm8k", "openai/gsm8k", "main", "test", "math",
         "GSM8K test: 1319 grade-school word problems; gold is the number after ####",
         load_gsm8k, file_names=("gsm8k_test", "gsm8k")),
    Task("mathvista", "AI4Math/MathVista", None, "testmini", "mathvista",
         "MathVista testmini: 1000 visual math questions (text and image paths; images are not loaded here)",
         load_mathvista, file_names=("mathvista_testmini", "mathvista", "MathVista")),
    Task("synthetic", None, None, "heldout", "synthetic",
         "The synthetic reasoning benchmark (s1.synthetic held-out items, exact verifiers); no download",
         load_synthetic, file_names=("synthetic",)),
)

TASKS: dict[str, Task] = {task.name: task for task in _TASKS}


def task_names() -> list[str]:
    """Known task names, in registry order."""
    return list(TASKS)


def get_task(name: str) -> Task:
    """The task called `name`; ValueError naming it and listing the known ones otherwise."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def load_task(name: str, data_dir: str | Path | None = None, limit: int | None = None,
              seed: int = 0) -> list[TaskItem]:
    """`get_task(name).load(data_dir, limit, seed)`."""
    return get_task(name).load(data_dir, limit=limit, seed=seed)


def check_scope(tasks: Sequence[str], limit: int | None) -> None:
    """Known task names (the error lists them) and a positive item limit."""
    if not tasks:
        raise ValueError("tasks: give at least one task")
    for name in tasks:
        get_task(name)  # unknown names fail here, listing the known ones
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
