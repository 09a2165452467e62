"""The ``sort`` family: sort a short list of small integers ascending.

The trace is selection sort spoken aloud (``min of 5 3 9 is 3``); the slip is picking
the second-smallest value at one step, which always puts the output out of order.
"""

from __future__ import annotations

import random

from s1.synthetic.answers import canonical_int_list
from s1.synthetic.base import Attempt, Family, Problem


def _join(values: list[int], sep: str = " ") -> str:
    return sep.join(str(v) for v in values)


def select_sort(values: list[int], slip_step: int | None = None) -> tuple[list[str], list[int]]:
    """Repeatedly take the minimum of what remains; at ``slip_step`` take the next value up."""
    remaining = list(values)
    lines: list[str] = []
    out: list[int] = []
    for step in range(len(values)):
        pick = min(remaining)
        if step == slip_step:
            pick = min(v for v in remaining if v > pick)
        lines.append(f"min of {_join(remaining)} is {pick}")
        remaining.remove(pick)
        out.append(pick)
    lines.append(f"Sorted: {_join(out)}")
    return lines, out


class SortFamily(Family):
    """Sort a list of small non-negative integers."""

    name = "sort"
    description = "sort small integers by repeatedly selecting the minimum"
    # difficulty -> (how many numbers, values drawn from range(limit))
    SHAPES: dict[int, tuple[int, int]] = {1: (3, 20), 2: (4, 50), 3: (6, 100), 4: (8, 100), 5: (10, 100)}

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        count, limit = self.SHAPES[difficulty]
        values = [rng.randrange(limit) for _ in range(count)]
        while len(set(values)) < 2:  # an all-equal list has no possible slip
            values = [rng.randrange(limit) for _ in range(count)]
        return Problem(
            question=f"Sort these numbers from smallest to largest: {_join(values, ', ')}.",
            answer=_join(sorted(values), ", "),
            header=("Pick the smallest remaining number each time.",),
            data=tuple(values),
        )

    def solve(self, problem: Problem) -> Attempt:
        lines, out = select_sort(list(problem.data))
        return Attempt(tuple(lines), _join(out, ", "))

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        ordered = sorted(problem.data)
        # A slip is possible at step k when at least two distinct values remain.
        steps = [k for k in range(len(ordered)) if ordered[k] != ordered[-1]]
        lines, out = select_sort(list(problem.data), rng.choice(steps))
        return Attempt(tuple(lines), _join(out, ", "))

    def canonical(self, answer: str) -> tuple[int, ...] | None:
        return canonical_int_list(answer)
