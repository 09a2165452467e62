"""Deterministic, split-safe generation of synthetic items.

Determinism: every item has its own ``random.Random`` seeded from a SHA-256 of
(family, split, seed, index), so output never depends on the global RNG or on
PYTHONHASHSEED, and ``generate(..., n=10)`` is a prefix of ``generate(..., n=100)``.

Split safety: a question's split is a pure function of its text (a SHA-256 bucket), and
the sampler redraws until the question lands in the requested split, so a held-out
question can never be produced for train, whatever the seeds.
"""

from __future__ import annotations

import hashlib
import random
from numbers import Real

from s1.synthetic.base import DIFFICULTIES, RESPONSE_LINE, Family, Problem, TraceMode, compose_thinking
from s1.synthetic.families import FAMILIES, FAMILY_NAMES
from s1.synthetic.item import SyntheticItem

SPLITS: tuple[str, ...] = ("train", "heldout")
HELDOUT_BUCKETS = 10
"""Questions hashing to bucket 0 of this many belong to ``heldout`` (about 10%); the rest to ``train``."""
MAX_DRAWS = 2000
"""Upper bound on samples per item (split rejection plus duplicate avoidance)."""
MAX_REPEATS = 20
"""After this many already-seen questions the space is treated as exhausted and repeats are allowed."""


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")


def split_of(family: str, question: str) -> str:
    """The split a question belongs to; fixed by its text alone, so splits can never overlap."""
    return "heldout" if _digest_int(f"{family}\n{question}") % HELDOUT_BUCKETS == 0 else "train"


def item_id(family: str, split: str, seed: int, index: int) -> str:
    """Stable id of the ``index``-th item of a (family, split, seed) stream."""
    return f"{family}/{split}/{seed}/{index}"


def _item_rng(family: str, split: str, seed: int, index: int) -> random.Random:
    return random.Random(_digest_int(f"s1.synthetic|{family}|{split}|{seed}|{index}"))


def _levels(difficulty: int | range | None, allowed: range) -> range | list[int]:
    """Validate the difficulty argument and turn it into the levels to draw from."""
    hint = f"an int in {allowed.start}..{allowed.stop - 1}, a non-empty range within it, or None"
    if difficulty is None:
        return allowed
    if isinstance(difficulty, int) and not isinstance(difficulty, bool) and difficulty in allowed:
        return [difficulty]
    if isinstance(difficulty, range) and len(difficulty) and all(d in allowed for d in difficulty):
        return difficulty
    raise ValueError(f"difficulty must be {hint}, got {difficulty!r}")


def _check_prob(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _validate(family: str | None, n: int, seed: int, split: str) -> None:
    if family is not None and (not isinstance(family, str) or family not in FAMILIES):
        raise ValueError(f"family must be one of {list(FAMILY_NAMES)} or None, got {family!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")


def _draw_problem(family: Family, rng: random.Random, difficulty: int, split: str, seen: set[str]) -> Problem:
    """Sample until the question is in ``split`` and, while the space allows, not seen before."""
    fallback: Problem | None = None
    repeats = 0
    for _ in range(MAX_DRAWS):
        problem = family.sample(rng, difficulty)
        if split_of(family.name, problem.question) != split:
            continue
        if problem.question not in seen:
            return problem
        fallback = fallback or problem
        repeats += 1
        if repeats >= MAX_REPEATS:
            break
    if fallback is None:
        raise RuntimeError(f"no {split} question found for {family.name} at difficulty {difficulty}")
    return fallback


def _draw_mode(rng: random.Random, recheck_prob: float, confirm_prob: float, double_prob: float = 0.0,
               hasty_prob: float = 0.0, tempting: bool = False) -> tuple[TraceMode, bool]:
    """All draws always happen so the RNG stream (and later choices) never depends on the probabilities."""
    fix, confirm, double = rng.random() < recheck_prob, rng.random() < confirm_prob, rng.random() < double_prob
    hasty = rng.random() < hasty_prob and tempting
    mode: TraceMode = "hasty" if hasty else "fix" if fix else "confirm" if confirm else "direct"
    return mode, double and mode in ("fix", "confirm")


def _thinking(family: Family, problem: Problem, mode: TraceMode, rng: random.Random,
              double: bool = False) -> tuple[str, str]:
    """The trace and the answer it concludes (the gold one, except after an uncaught hasty slip)."""
    solved = family.solve(problem)
    if family.canonical(solved.answer) != family.canonical(problem.answer):
        raise RuntimeError(f"{family.name} solver disagrees with gold on {problem.question!r}")
    if mode == "direct":
        return compose_thinking(problem.header, solved, None), problem.answer
    checked = family.check(problem)
    if family.canonical(checked.answer) != family.canonical(problem.answer):
        raise RuntimeError(f"{family.name} careful check disagrees with gold on {problem.question!r}")
    again = checked if double else None
    if mode == "confirm":
        return compose_thinking(problem.header, solved, checked, again), problem.answer
    wrong = family.slip(problem, rng)
    if family.canonical(wrong.answer) == family.canonical(problem.answer):
        raise RuntimeError(f"{family.name} slip did not change the answer of {problem.question!r}")
    if mode == "hasty":
        return compose_thinking(problem.header, wrong, None), wrong.answer
    return compose_thinking(problem.header, wrong, checked, again), problem.answer


def _generate_family(
    family: Family,
    n: int,
    seed: int,
    split: str,
    levels: range | list[int],
    recheck_prob: float,
    confirm_prob: float,
    double_prob: float = 0.0,
    hasty_prob: float = 0.0,
) -> list[SyntheticItem]:
    items: list[SyntheticItem] = []
    seen: set[str] = set()
    for index in range(n):
        rng = _item_rng(family.name, split, seed, index)
        difficulty = rng.choice(levels)
        problem = _draw_problem(family, rng, difficulty, split, seen)
        seen.add(problem.question)
        mode, double = _draw_mode(rng, recheck_prob, confirm_prob, double_prob, hasty_prob,
                                  family.tempts_haste(problem))
        thinking, concluded = _thinking(family, problem, mode, rng, double)
        items.append(
            SyntheticItem(
                id=item_id(family.name, split, seed, index),
                family=family.name,
                difficulty=difficulty,
                question=problem.question,
                answer=problem.answer,
                thinking=thinking,
                response=RESPONSE_LINE.format(concluded),
            )
        )
    return items


def generate(
    family: str | None,
    n: int,
    seed: int,
    split: str = "train",
    difficulty: int | range | None = None,
    recheck_prob: float = 0.3,
    *,
    confirm_prob: float = 0.1,
    double_prob: float = 0.0,
    hasty_prob: float = 0.0,
) -> list[SyntheticItem]:
    """Generate ``n`` items deterministically.

    ``family=None`` interleaves all families round-robin; item ``i`` is then exactly item
    ``i // k`` of that family's own stream (same id, same content). ``difficulty`` is one
    level, a range of levels (drawn uniformly per item), or None for all levels.
    ``recheck_prob`` is the chance a trace starts with a wrong attempt that a ``Wait``
    re-check fixes; of the remaining traces, ``confirm_prob`` get a re-check that confirms; a re-checked
    trace gets a second ``Wait`` re-check (which confirms) with ``double_prob``. On a problem where the
    family's shortcut fails (`Family.tempts_haste`), ``hasty_prob`` is the chance of a hasty trace: the
    shortcut slips and the solver stops there, so the trace (and its response) conclude a wrong
    answer; the item's ``answer`` stays the gold one. This is the habit budget forcing corrects: a
    model that learned it stops too early, and a forced ``Wait`` brings out the re-check it also learned.
    """
    _validate(family, n, seed, split)
    levels = _levels(difficulty, DIFFICULTIES)
    _check_prob("recheck_prob", recheck_prob)
    _check_prob("confirm_prob", confirm_prob)
    _check_prob("double_prob", double_prob)
    _check_prob("hasty_prob", hasty_prob)
    names = [family] if family is not None else list(FAMILY_NAMES)
    k = len(names)
    streams = [
        _generate_family(FAMILIES[name], (n - j + k - 1) // k, seed, split, levels, recheck_prob, confirm_prob,
                         double_prob, hasty_prob)
        for j, name in enumerate(names)
    ]
    return [streams[i % k][i // k] for i in range(n)]
