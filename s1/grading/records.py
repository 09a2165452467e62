"""Grading one item's generations into the records a run stores."""

from __future__ import annotations

from collections.abc import Sequence

from s1.grading import grade_many
from s1.records import Generation, SampleRecord
from s1.tasks.base import TaskItem


def grade_records(task: str, item: TaskItem, gens: Sequence[Generation], timeout: float) -> list[SampleRecord]:
    """Grade one item's generations; a failed generation is stored ungraded with its error."""
    ok = [g for g in gens if g.error is None]
    verdicts = iter(grade_many(item.grader, [(g.answer, item.gold, item.metadata) for g in ok], timeout))
    out = []
    for g in gens:
        if g.error is not None:
            out.append(SampleRecord(task, g, correct=False, extracted=None, reason=f"generation failed: {g.error}",
                                    gold=item.gold))
            continue
        v = next(verdicts)
        out.append(SampleRecord(task, g, correct=v.correct, extracted=v.extracted, reason=v.reason, gold=item.gold))
    return out
