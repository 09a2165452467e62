"""What every verifier shares: the candidate it scores, its scores, the protocol, step aggregation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from s1.methods.steps import split_steps

AGGREGATIONS: tuple[str, ...] = ("last", "min", "prod", "mean")
VERIFIER_KINDS: tuple[str, ...] = ("confidence", "orm", "prm", "judge")


@dataclass(frozen=True)
class Candidate:
    """One solution to score: the question, the thinking (split at `separator` into steps) and the
    answer text after the thinking ("" for a partial solution in tree search)."""

    question: str
    thinking: str
    answer: str = ""
    separator: str = "\n"

    @property
    def steps(self) -> list[str]:
        return split_steps(self.thinking, self.separator)

    def solution(self) -> str:
        """The solution as one text: steps on their own lines, then the answer."""
        body = "\n".join(self.steps)
        return f"{body}\n{self.answer.strip()}" if self.answer.strip() else body


@dataclass(frozen=True)
class Scored:
    """A verifier's scores for one candidate (per step, or one), or the error that prevented them."""

    scores: tuple[float, ...]
    error: str | None = None


class Verifier(Protocol):
    """Anything that scores candidates; `name` labels its scores in records and reports."""

    name: str

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]: ...


def aggregate(scores: Sequence[float], how: str) -> float | None:
    """One score from step scores: `last`, `min`, `prod` or `mean`; None when there are none."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    if not scores:
        return None
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "prod":
        return float(math.prod(scores))
    return float(sum(scores) / len(scores))
