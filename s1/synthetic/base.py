"""Shared pieces of the synthetic task families: problem/attempt records and trace layout.

Every family produces traces with the same skeleton so a tiny model can learn the
shape once and reuse it::

    <header line(s)>
    <first attempt: its method line(s), then one step per line>
    So the answer is X.
    Wait, let me check that again.          (only for re-check traces)
    <careful attempt: its method line(s), then its steps>
    The first attempt was wrong.            (or: This matches the first attempt.)
    Wrong: <first differing step of the first attempt>   (only when both attempts used one method)
    Right: <the same step done correctly>
    So the answer is Y.

A family may answer easy problems with a quick method (e.g. mental arithmetic) and re-check with
a careful one (``Family.check``); the re-check after ``Wait`` always uses the careful method.

The answer line always has the same wording, so the tentative answer before ``Wait``
and the final answer are both found by the same extractor.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

DIFFICULTIES: range = range(1, 6)
"""Difficulty levels shared by all families (1 = easiest, 5 = hardest)."""

WAIT_LINE = "Wait, let me check that again."
FIX_LINE = "The first attempt was wrong."
CONFIRM_LINE = "This matches the first attempt."
ANSWER_LINE = "So the answer is {}."
RESPONSE_LINE = "Answer: {}"

TraceMode = Literal["direct", "confirm", "fix", "hasty"]


@dataclass(frozen=True)
class Problem:
    """A sampled question with its gold answer and the family-specific data needed to solve it."""

    question: str
    answer: str
    header: tuple[str, ...]
    data: Any


@dataclass(frozen=True)
class Attempt:
    """One pass of step-by-step work: the step lines and the answer they lead to."""

    lines: tuple[str, ...]
    answer: str
    method: tuple[str, ...] = ()
    """Line(s) naming the method, written before the steps (e.g. ``Column by column from the right:``)."""


class Family(ABC):
    """A task family: samples problems, solves them step by step, and makes plausible slips."""

    name: ClassVar[str]
    description: ClassVar[str]
    difficulties: ClassVar[range] = DIFFICULTIES

    @abstractmethod
    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        """Draw one problem at ``difficulty`` using only ``rng``."""

    @abstractmethod
    def solve(self, problem: Problem) -> Attempt:
        """Work the problem correctly, one step per line."""

    @abstractmethod
    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        """Work the problem with one plausible mistake; the answer must differ from the gold one."""

    def check(self, problem: Problem) -> Attempt:
        """The careful method a ``Wait`` re-check uses; the same as ``solve`` unless a family answers
        easy problems with a quicker method."""
        return self.solve(problem)

    def tempts_haste(self, problem: Problem) -> bool:
        """Whether a hasty solver would take a shortcut here that fails (see ``hasty_prob`` in
        `generation.generate`); no problem does unless a family says so."""
        return False

    @abstractmethod
    def canonical(self, answer: str) -> Hashable | None:
        """Canonical form of an answer string, or None when it cannot be parsed."""


def answer_line(answer: str) -> str:
    """The fixed wording every attempt ends with (also what the extractor looks for)."""
    return ANSWER_LINE.format(answer)


def first_difference(wrong: Sequence[str], right: Sequence[str]) -> tuple[str, str]:
    """First step where two attempts disagree; this is the slip the re-check points out."""
    for a, b in zip(wrong, right, strict=False):
        if a != b:
            return a, b
    if len(wrong) != len(right):
        n = min(len(wrong), len(right))
        return (wrong[n] if n < len(wrong) else "(nothing)"), (right[n] if n < len(right) else "(nothing)")
    return "(same steps)", "(same steps)"


def compose_thinking(header: Sequence[str], first: Attempt, second: Attempt | None,
                     again: Attempt | None = None) -> str:
    """Lay out the thinking trace: first attempt, then optionally ``Wait`` and a careful re-check, and
    optionally a second ``Wait`` and re-check (`again`, which confirms the first re-check)."""
    lines = [*header, *first.method, *first.lines, answer_line(first.answer)]
    if second is not None:
        lines += [WAIT_LINE, *second.method, *second.lines]
        if second.answer == first.answer:
            lines.append(CONFIRM_LINE)
        else:
            lines.append(FIX_LINE)
            if first.method == second.method:
                wrong, right = first_difference(first.lines, second.lines)
                lines += [f"Wrong: {wrong}", f"Right: {right}"]
        lines.append(answer_line(second.answer))
        if again is not None:
            lines += [WAIT_LINE, *again.method, *again.lines, CONFIRM_LINE, answer_line(again.answer)]
    return "\n".join(lines)


def recheck_kind(thinking: str) -> TraceMode:
    """Classify a trace: no re-check (``direct``), a confirming one, or one that fixes a slip."""
    lines = thinking.splitlines()
    if WAIT_LINE not in lines:
        return "direct"
    return "fix" if FIX_LINE in lines else "confirm"
