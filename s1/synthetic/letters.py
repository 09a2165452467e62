"""The ``count_letter`` family: "How many r's are in the word raspberry?".

The trace spells the word one letter per line with a running count (``r yes 2``,
``a no 2``); the slip is an off-by-one count from a missed (or imagined) letter.
"""

from __future__ import annotations

import random
import string

from s1.synthetic.answers import canonical_int
from s1.synthetic.base import Attempt, Family, Problem
from s1.synthetic.words import WORDS


def _bucket(length: int) -> int:
    """Difficulty of a word by its length: longer words need more spelling steps."""
    for difficulty, top in ((1, 4), (2, 6), (3, 8), (4, 10)):
        if length <= top:
            return difficulty
    return 5


WORDS_BY_DIFFICULTY: dict[int, tuple[str, ...]] = {
    d: tuple(w for w in WORDS if len(w) >= 3 and _bucket(len(w)) == d) for d in range(1, 6)
}


def spell_count(word: str, letter: str, flip: int | None = None) -> tuple[list[str], int]:
    """Spell ``word`` with a running count of ``letter``; ``flip`` misjudges that one position."""
    lines: list[str] = []
    count = 0
    for pos, ch in enumerate(word):
        match = (ch == letter) != (pos == flip)
        count += match
        lines.append(f"{ch} {'yes' if match else 'no'} {count}")
    return lines, count


class CountLetterFamily(Family):
    """Count occurrences of a letter in a common English word."""

    name = "count_letter"
    description = "count a letter in a word by spelling it with a running count"

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        word = rng.choice(WORDS_BY_DIFFICULTY[difficulty])
        # Mostly ask about a letter of the word (weighted by frequency), sometimes any letter.
        letter = rng.choice(word) if rng.random() < 0.75 else rng.choice(string.ascii_lowercase)
        return Problem(
            question=f"How many {letter}'s are in the word {word}?",
            answer=str(word.count(letter)),
            header=(f"Spell {word} and count the letter {letter}.",),
            data=(word, letter),
        )

    def solve(self, problem: Problem) -> Attempt:
        lines, count = spell_count(*problem.data)
        return Attempt(tuple(lines), str(count))

    def slip(self, problem: Problem, rng: random.Random) -> Attempt:
        word, letter = problem.data
        hits = [pos for pos, ch in enumerate(word) if ch == letter]
        flip = rng.choice(hits) if hits else rng.randrange(len(word))
        lines, count = spell_count(word, letter, flip)
        return Attempt(tuple(lines), str(count))

    def canonical(self, answer: str) -> int | None:
        return canonical_int(answer)
