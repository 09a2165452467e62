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


COLUMNS_METHOD = "Column by column from the right:"


def _carrying_operands(rng: random.Random, count: int, digits: int) -> tuple[int, ...]:
    """`count` numbers of exactly `digits` digits whose sum has one digit more (redrawn until it does)."""
    while True:
        operands = tuple(_number(rng, digits) for _ in range(count))
        if sum(operands) >= 10**digits:
            return operands


def column_lines(operands: list[int], slip: Slip | None = None) -> ColumnWork:
    """Equal-width addition, one fixed-width line per column: ``7+8+0=15`` (digits, carry-in, 2-digit sum).

    Every line has the same length and every operand the same width, so each digit sits a fixed
    distance from where it is used: copying and carrying are positional, which a tiny transformer
    learns in a few hundred steps (variable offsets need content-based look-ups it does not form).
    """
    digits = [str(x)[::-1] for x in operands]
    lines: list[str] = []
    carries: list[int] = []
    value = carry = 0
    for col in range(len(digits[0])):
        carries.append(carry)
        carry_in = 0 if slip == ("drop", col) else carry
        column = [int(d[col]) for d in digits]
        total = carry_in + sum(column) + (1 if slip == ("plus1", col) else 0)
        lines.append(f"{'+'.join(str(x) for x in column)}+{carry_in}={total:02d}")
        value += (total % 10) * 10**col
        carry = total // 10
    value += carry * 10 ** len(digits[0])
    return ColumnWork(lines, value, carries)


class AdditionFamily(Family):
    """Addition of equal-width numbers: mental arithmetic when it is safe, column by column otherwise.

    Operands have the same width and their sum always carries into one more digit, so every trace of
    a difficulty has the same layout (a tiny model copies digits by position). The first attempt is a
    one-line mental sum when no column carries into the next (the shortcut a person takes), else the
    columns. The slip worth learning from is taking the shortcut anyway and dropping a carry; a
    ``Wait`` re-check always works the columns, which is slower and reliable. One carry is easy to
    forget: from a column that barely reaches ten (10 or 11), into a column that carries anyway
    (`tempts_haste`); a hasty solver does those sums in its head and drops it.
    """

    name = "addition"
    description = "equal-width addition: mental sum when no column carries, else (and on re-check) columns"
    # difficulty -> (number of operands, digits of every operand)
    SHAPES: dict[int, tuple[int, int]] = {1: (2, 2), 2: (2, 3), 3: (3, 3), 4: (2, 4), 5: (3, 4)}

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        count, digits = self.SHAPES[difficulty]
        operands = _carrying_operands(rng, count, digits)
        return Problem(
            question=f"What is {' + '.join(str(x) for x in operands)}?",
            answer=str(sum(operands)),
            header=(),
            data=operands,
        )

    @staticmethod
    def mental_is_safe(operands: tuple[int, ...]) -> bool:
        """No column carries into the next one (only the last into the new leading digit)."""
        return not any(column_lines(list(operands)).carries_in)

    def _mental(self, operands: tuple[int, ...], value: int) -> Attempt:
        return Attempt((f"Mental math: {' + '.join(str(x) for x in operands)} = {value}.",), str(value))

    def _columns(self, operands: tuple[int, ...], slip: Slip | None) -> Attempt:
        work = column_lines(list(operands), slip)
        return Attempt(tuple(work.lines), str(work.value), method=(COLUMNS_METHOD,))

    def solve(self, problem: Problem) -> Attempt:
        operands = problem.data
        if self.mental_is_safe(operands):
            return self._mental(operands, sum(operands))
        return self._columns(operands, None)

    def check(self, problem: Problem) -> Attempt:
        return self._columns(problem.data, None)

    def tempts_haste(self, problem: Problem) -> bool:
        """Exactly one column carries into the next, its digits make 10 or 11, and the next column
        carries anyway (so dropping the carry keeps the answer's width)."""
        digits = [str(x)[::-1] for x in problem.data]
        sums = [sum(int(d[col]) for d in digits) for col in range(len(digits[0]))]
        carries = column_lines(list(problem.data)).carries_in
        into = [col for col, c in enumerate(carries) if c]
        return len(into) == 1 and sums[into[0] - 1] in (10, 11) and sums[into[0]] >= 10

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        """The mental shortcut taken with a dropped carry (or, with no carry to drop, a digit off by one);
        the answer keeps its width."""
        operands = problem.data
        drops = _carry_slips(column_lines(list(operands)).carries_in)
        slip: Slip = ("drop", rng.choice(drops)) if drops else ("plus1", rng.randrange(len(str(operands[0]))))
        wrong = column_lines(list(operands), slip).value
        if len(str(wrong)) != len(problem.answer):  # the slip lost the leading digit: off by one instead
            wrong = column_lines(list(operands), ("plus1", 0)).value
        return self._mental(operands, wrong)

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
