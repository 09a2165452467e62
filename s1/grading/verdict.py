"""The `Verdict`: what a grader decided, what it extracted, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One grading decision.

    `extracted` is the answer the grader read from the model's text (None when it found none), and
    `reason` says in a few words why the verdict is what it is: "equivalent to gold 25", "no answer
    found", "timed out after 5s", "extracted 'C', gold 'A'". A grader that could not decide (a timeout,
    an API error) gives `correct=False` with the cause in `reason`, never a silent pass.
    """

    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def short(text: str | None, limit: int = 60) -> str:
    """`text` quoted for a reason string, cut to `limit` characters."""
    if text is None:
        return "None"
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)
