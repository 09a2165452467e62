"""Column arithmetic families: ``addition`` and ``multiplication``.

Both are worked right to left one column per line with an explicit carry, e.g.
``1+8+3=12, write 2 carry 1``. The typical slip is a dropped carry (or, when there is
no carry to drop, a fact that is off by one), which always changes the result.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from s1.synthetic.answers import canonical_int
from s1.synthetic.base import Attempt, Family, Problem

Slip = tuple[str, int]
"""(kind, column): kind ``drop`` ignores the carry into ``column``; ``plus1`` adds one there."""


@dataclass(frozen=True)
class ColumnWork:
    """Result of a column-by-column pass: step lines, the value written, carries into each column."""

    lines: list[str]
    value: int
    carries_in: list[int]


def _column_line(terms: list[str], total: int) -> str:
    return f"{'+'.join(terms)}={total}, write {total % 10} carry {total // 10}"


def add_columns(operands: list[int], slip: Slip | None = None) -> ColumnWork:
    """Add non-negative integers right to left; the carry-in is written first when non-zero."""
    digits = [str(x)[::-1] for x in operands]
    width = max(len(d) for d in digits)
    lines: list[str] = []
    carries: list[int] = []
    value = carry = 0
    for col in range(width):
        carries.append(carry)
        carry_in = 0 if slip == ("drop", col) else carry
        column = [int(d[col]) for d in digits if col < len(d)]
        total = carry_in + sum(column) + (1 if slip == ("plus1", col) else 0)
        terms = ([str(carry_in)] if carry_in else []) + [str(x) for x in column]
        lines.append(_column_line(terms, total))
        value += (total % 10) * 10**col
        carry = total // 10
    if carry:
        lines.append(f"write carry {carry}")
        value += carry * 10**width
    return ColumnWork(lines, value, carries)


def multiply_row(a: int, d: int, slip: Slip | None = None) -> ColumnWork:
    """Multiply ``a`` by one digit ``d`` right to left: ``7*8+1=57, write 7 carry 5``."""
    digits = str(a)[::-1]
    lines: list[str] = []
    carries: list[int] = []
    value = carry = 0
    for col, ch in enumerate(digits):
        carries.append(carry)
        carry_in = 0 if slip == ("drop", col) else carry
        total = d * int(ch) + carry_in + (1 if slip == ("plus1", col) else 0)
        expr = f"{d}*{ch}" + (f"+{carry_in}" if carry_in else "")
        lines.append(f"{expr}={total}, write {total % 10} carry {total // 10}")
        value += (total % 10) * 10**col
        carry = total // 10
    if carry:
        lines.append(f"write carry {carry}")
        value += carry * 10 ** len(digits)
    return ColumnWork(lines, value, carries)


def _number(rng: random.Random, digits: int) -> int:
    """Uniform integer with exactly ``digits`` digits (no leading zero)."""
    low = 10 ** (digits - 1) if digits > 1 else 0
    return rng.randint(low, 10**digits - 1)


def _carry_slips(carries: list[int]) -> list[int]:
    return [col for col, c in enumerate(carries) if c > 0]


class AdditionFamily(Family):
    """Multi-digit addition of a few operands."""

    name = "addition"
    description = "multi-digit addition worked column by column with carries"
    # difficulty -> (number of operands, digits of the longest operand)
    SHAPES: dict[int, tuple[int, int]] = {1: (2, 2), 2: (2, 3), 3: (3, 3), 4: (3, 4), 5: (4, 5)}

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        count, digits = self.SHAPES[difficulty]
        operands = [_number(rng, digits)]
        operands += [_number(rng, rng.randint(max(1, digits - 1), digits)) for _ in range(count - 1)]
        expr = " + ".join(str(x) for x in operands)
        return Problem(
            question=f"What is {expr}?",
            answer=str(sum(operands)),
            header=(f"Add {expr} column by column from the right.",),
            data=tuple(operands),
        )

    def _attempt(self, problem: Problem, slip: Slip | None) -> Attempt:
        work = add_columns(list(problem.data), slip)
        return Attempt(tuple(work.lines), str(work.value))

    def solve(self, problem: Problem) -> Attempt:
        return self._attempt(problem, None)

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        operands = list(problem.data)
        drops = _carry_slips(add_columns(operands).carries_in)
        if drops:
            slip: Slip = ("drop", rng.choice(drops))
        else:
            slip = ("plus1", rng.randrange(len(str(max(operands)))))
        return self._attempt(problem, slip)

    def canonical(self, answer: str) -> int | None:
        return canonical_int(answer)


_PLACES = ("ones", "tens")
MulSlip = tuple[int, Slip]
"""(stage, slip): stage 0/1 is the row for the ones/tens digit, stage -1 the final sum of rows."""


class MultiplicationFamily(Family):
    """A multi-digit number times a one- or two-digit number, via partial products."""

    name = "multiplication"
    description = "multi-digit times 1-2 digit multiplication with partial products and carries"
    # difficulty -> (digits of the multiplicand, digits of the multiplier)
    SHAPES: dict[int, tuple[int, int]] = {1: (2, 1), 2: (3, 1), 3: (3, 2), 4: (4, 2), 5: (5, 2)}

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        a_digits, b_digits = self.SHAPES[difficulty]
        a = _number(rng, a_digits)
        b = rng.randint(2, 9) if b_digits == 1 else rng.randint(1, 9) * 10 + rng.randint(1, 9)
        return Problem(
            question=f"What is {a} * {b}?",
            answer=str(a * b),
            header=(f"Multiply {a} by {b} one digit at a time from the right.",),
            data=(a, b),
        )

    def _attempt(self, problem: Problem, slip: MulSlip | None) -> tuple[Attempt, list[tuple[int, list[int]]]]:
        """Work the product; also return each stage's carries (used to choose slips)."""
        a, b = problem.data
        stage_slip = dict([slip]) if slip is not None else {}
        lines: list[str] = []
        carries: list[tuple[int, list[int]]] = []
        partials: list[int] = []
        for stage, ch in enumerate(reversed(str(b))):
            d = int(ch)
            row = multiply_row(a, d, stage_slip.get(stage))
            carries.append((stage, row.carries_in))
            shifted = row.value * 10**stage
            lines += [f"{a}*{d} ({_PLACES[stage]}):", *row.lines]
            lines.append(f"{a}*{d}={row.value}" + (f", shifted: {shifted}" if stage else ""))
            partials.append(shifted)
        total = partials[0]
        if len(partials) > 1:
            work = add_columns(partials, stage_slip.get(-1))
            carries.append((-1, work.carries_in))
            lines += [f"Add {' + '.join(str(p) for p in partials)}:", *work.lines]
            total = work.value
        return Attempt(tuple(lines), str(total)), carries

    def solve(self, problem: Problem) -> Attempt:
        return self._attempt(problem, None)[0]

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        _, carries = self._attempt(problem, None)
        options: list[MulSlip] = [(stage, ("drop", col)) for stage, cs in carries for col in _carry_slips(cs)]
        if not options:
            options = [(0, ("plus1", col)) for col in range(len(str(problem.data[0])))]
        return self._attempt(problem, rng.choice(options))[0]

    def canonical(self, answer: str) -> int | None:
        return canonical_int(answer)
