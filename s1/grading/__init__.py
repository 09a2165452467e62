"""Graders that record what they extracted and why: every grade is a `Verdict`.

- ``math``: s1-style answer extraction, then math-verify equivalence in worker processes (timeouts
  work from any thread) -- `s1.grading.math`.
- ``choice``: multiple-choice letters (GPQA) -- `s1.grading.choice`.
- ``mathvista``: MathVista's normalisation rules, without its nearest-option guess --
  `s1.grading.mathvista`.
- an optional LLM judge over an OpenAI-compatible endpoint -- `s1.grading.judge.LLMJudge`.

- ``synthetic``: the synthetic families' exact verifiers -- `s1.grading.synthetic`.

`grade` dispatches on a grader name; other graders are added with `register_grader`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from s1.grading.choice import grade_choice
from s1.grading.extract import extract_answer, extract_choice, find_answer
from s1.grading.math import configure_pool, grade_math, grade_math_many, shutdown_pool
from s1.grading.mathvista import grade_mathvista
from s1.grading.synthetic import grade_synthetic
from s1.grading.verdict import Verdict

__all__ = [
    "GraderFn",
    "Verdict",
    "configure_pool",
    "extract_answer",
    "extract_choice",
    "find_answer",
    "grade",
    "grade_choice",
    "grade_many",
    "grade_math",
    "grade_math_many",
    "grade_mathvista",
    "grader_names",
    "register_grader",
    "shutdown_pool",
]

GraderFn = Callable[[str | None, str, Mapping[str, Any], float], Verdict]
"""A grader: ``fn(answer_text, gold, metadata, timeout) -> Verdict``."""


def _math(answer_text: str | None, gold: str, metadata: Mapping[str, Any], timeout: float) -> Verdict:
    return grade_math(answer_text, gold, timeout)


def _choice(answer_text: str | None, gold: str, metadata: Mapping[str, Any], timeout: float) -> Verdict:
    return grade_choice(answer_text, gold, choices=metadata.get("choices"), letters=metadata.get("letters"))


def _mathvista(answer_text: str | None, gold: str, metadata: Mapping[str, Any], timeout: float) -> Verdict:
    missing = [k for k in ("question_type", "answer_type") if not metadata.get(k)]
    if missing:
        raise ValueError(f"grader 'mathvista' needs metadata {', '.join(missing)} (from the MathVista row)")
    return grade_mathvista(
        answer_text,
        gold,
        question_type=metadata["question_type"],
        answer_type=metadata["answer_type"],
        choices=metadata.get("choices"),
        precision=metadata.get("precision"),
        unit=metadata.get("unit"),
    )


_GRADERS: dict[str, GraderFn] = {"math": _math, "choice": _choice, "mathvista": _mathvista,
                                  "synthetic": grade_synthetic}
_BUILTIN = frozenset(_GRADERS)


def register_grader(name: str, fn: GraderFn, *, replace: bool = False) -> None:
    """Add a grader under `name` (e.g. ``synthetic``); the built-in ones cannot be replaced."""
    if not name or not isinstance(name, str):
        raise ValueError("grader name must be a non-empty string")
    if name in _BUILTIN:
        raise ValueError(f"grader {name!r} is built in and cannot be replaced")
    if name in _GRADERS and not replace:
        raise ValueError(f"grader {name!r} is already registered (pass replace=True to replace it)")
    _GRADERS[name] = fn


def grader_names() -> list[str]:
    return sorted(_GRADERS)


def _lookup(grader: str) -> GraderFn:
    try:
        return _GRADERS[grader]
    except KeyError:
        raise ValueError(f"unknown grader {grader!r}; known graders: {', '.join(grader_names())}") from None


def grade(
    grader: str,
    answer_text: str | None,
    gold: str,
    metadata: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
) -> Verdict:
    """Grade `answer_text` (the model's text after the thinking delimiter) against `gold`.

    `grader` is ``math``, ``choice``, ``mathvista`` or a registered name. `metadata` carries what a
    grader needs beyond the gold: ``choices`` (choice, mathvista), ``question_type``, ``answer_type``,
    ``precision``, ``unit`` (mathvista). `timeout` bounds a math comparison in seconds.
    """
    return _lookup(grader)(answer_text, gold, metadata or {}, timeout)


def grade_many(
    grader: str,
    items: Iterable[tuple[str | None, str, Mapping[str, Any] | None]],
    timeout: float = 5.0,
) -> list[Verdict]:
    """Grade `(answer_text, gold, metadata)` items; ``math`` runs them in parallel on the worker pool."""
    fn = _lookup(grader)
    items = list(items)
    if grader == "math":
        return grade_math_many([(a, g) for a, g, _ in items], timeout)
    return [fn(a, g, m or {}, timeout) for a, g, m in items]
