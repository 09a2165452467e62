"""The ``arith_chain`` family: short multi-step arithmetic word problems.

"Ann has 7 apples. She buys 3 bags of 4 apples. She gives away 5 apples. How many
apples does Ann have now?" The trace keeps a running total, one sentence per line
(``Give away 5: 19-5=14``); the slip is one step's result off by a little, carried on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from s1.synthetic.answers import canonical_int
from s1.synthetic.base import Attempt, Family, Problem

_SHE = ["Ann", "Cara", "Eva", "Gia", "Ivy", "Kim", "Mia", "Ola"]
_HE = ["Ben", "Dan", "Finn", "Hal", "Jay", "Leo", "Ned", "Sam"]
PEOPLE: tuple[tuple[str, str, str], ...] = tuple([(n, "She", "her") for n in _SHE] + [(n, "He", "his") for n in _HE])
THINGS: tuple[str, ...] = (
    *("apples", "pencils", "stickers", "marbles", "cookies", "coins"),
    *("cards", "books", "shells", "stamps", "eggs", "buttons"),
)
SLIP_DELTAS: tuple[int, ...] = (1, -1, 2, -2, 10, -10)


@dataclass(frozen=True)
class Step:
    """One event of the story: ``op`` in get/buy/give/lose/double with its numbers."""

    op: str
    a: int = 0
    b: int = 0

    def sentence(self, subject: str, possessive: str, things: str) -> str:
        return {
            "get": f"{subject} gets {self.a} more {things}.",
            "buy": f"{subject} buys {self.a} bags of {self.b} {things}.",
            "give": f"{subject} gives away {self.a} {things}.",
            "lose": f"{subject} loses {self.a} {things}.",
            "double": f"{subject} doubles {possessive} {things}.",
        }[self.op]

    def apply(self, x: int) -> int:
        return {
            "get": x + self.a,
            "buy": x + self.a * self.b,
            "give": x - self.a,
            "lose": x - self.a,
            "double": x * 2,
        }[self.op]

    def line(self, x: int, y: int) -> str:
        """The trace line for going from ``x`` to ``y`` (``y`` may be a slip)."""
        return {
            "get": f"Get {self.a}: {x}+{self.a}={y}",
            "buy": f"Buy {self.a} bags of {self.b}: {self.a}*{self.b}={self.a * self.b}, {x}+{self.a * self.b}={y}",
            "give": f"Give away {self.a}: {x}-{self.a}={y}",
            "lose": f"Lose {self.a}: {x}-{self.a}={y}",
            "double": f"Double: {x}*2={y}",
        }[self.op]


def _draw_step(rng: random.Random, x: int) -> Step:
    """A random event that keeps the count non-negative and the numbers small."""
    ops = ["get", "buy"] + (["give", "lose", "give"] if x > 0 else []) + (["double"] if x <= 40 else [])
    op = rng.choice(ops)
    if op == "get":
        return Step(op, rng.randint(1, 20))
    if op == "buy":
        return Step(op, rng.randint(2, 5), rng.randint(2, 9))
    if op in ("give", "lose"):
        return Step(op, rng.randint(1, min(x, 20)))
    return Step(op)


def run_chain(start: int, steps: tuple[Step, ...], slip: tuple[int, int] | None = None) -> tuple[list[str], list[int]]:
    """Running total through the story; ``slip`` = (step index, amount the result is off by)."""
    lines = [f"Start: {start}"]
    values = [start]
    x = start
    for i, step in enumerate(steps):
        y = step.apply(x) + (slip[1] if slip is not None and slip[0] == i else 0)
        lines.append(step.line(x, y))
        values.append(y)
        x = y
    return lines, values


class ArithChainFamily(Family):
    """Multi-step arithmetic word problems with a running total."""

    name = "arith_chain"
    description = "multi-step arithmetic word problems tracked step by step"
    # difficulty -> (number of events, largest starting amount)
    SHAPES: dict[int, tuple[int, int]] = {1: (1, 20), 2: (2, 20), 3: (3, 30), 4: (5, 40), 5: (7, 50)}

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        count, top = self.SHAPES[difficulty]
        name, subject, possessive = rng.choice(PEOPLE)
        things = rng.choice(THINGS)
        start = rng.randint(2, top)
        steps: list[Step] = []
        x = start
        for _ in range(count):
            steps.append(_draw_step(rng, x))
            x = steps[-1].apply(x)
        story = " ".join(s.sentence(subject, possessive, things) for s in steps)
        return Problem(
            question=f"{name} has {start} {things}. {story} How many {things} does {name} have now?",
            answer=str(x),
            header=(f"Track the number of {things} step by step.",),
            data=(start, tuple(steps)),
        )

    def solve(self, problem: Problem) -> Attempt:
        lines, values = run_chain(*problem.data)
        return Attempt(tuple(lines), str(values[-1]))

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        start, steps = problem.data
        index = rng.randrange(len(steps))
        deltas = list(SLIP_DELTAS)
        rng.shuffle(deltas)
        # +1 last: it can never make a later count negative, so some delta always works.
        for delta in [*deltas, 1]:
            lines, values = run_chain(start, steps, (index, delta))
            if min(values) >= 0:
                return Attempt(tuple(lines), str(values[-1]))
        raise AssertionError("unreachable: a +1 slip keeps every count non-negative")

    def canonical(self, answer: str) -> int | None:
        return canonical_int(answer)
