"""Multiple-choice grading (GPQA): the extracted letter must equal the gold letter."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from s1.grading.extract import _unwrap, extract_choice, find_answer
from s1.grading.verdict import Verdict

__all__ = ["choice_letters", "grade_choice", "normalize_gold_letter"]


def choice_letters(choices: Sequence[str] | None = None, default: str = "ABCD") -> str:
    """The option letters: one per choice (A, B, ...) when choices are given, else `default`."""
    if choices:
        if len(choices) > 26:
            raise ValueError(f"choices: at most 26 options, got {len(choices)}")
        return string.ascii_uppercase[: len(choices)]
    return default


def normalize_gold_letter(gold: str, letters: str) -> str:
    """``C``, ``(C)``, ``c``, ``\\text{(C)}`` -> ``C``; anything else is refused, naming the letters."""
    g = _unwrap(str(gold)).strip().strip("()").strip().upper()
    if len(g) != 1 or g not in letters:
        raise ValueError(f"gold: expected one choice letter of {', '.join(letters)}, got {gold!r}")
    return g


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", _unwrap(text)).strip().rstrip(".").casefold()


def grade_choice(
    answer_text: str | None, gold: str, choices: Sequence[str] | None = None, letters: str | None = None
) -> Verdict:
    """Grade a multiple-choice answer: the letter extracted by `extract_choice` against the gold letter.

    With `choices` (the option texts, in letter order), an answer that names an option's exact text
    instead of its letter ("Final Answer: Elephant") counts as that option. Nothing found is wrong.
    """
    letters = (letters or choice_letters(choices)).upper()
    gold_letter = normalize_gold_letter(gold, letters)
    letter = extract_choice(answer_text, letters)
    how = ""
    if letter is None and choices:
        found = find_answer(answer_text, bare=True)
        if found is not None:
            folded = _fold(found.text)
            hits = [i for i, c in enumerate(choices) if _fold(str(c)) == folded]
            if len(hits) == 1:
                letter = letters[hits[0]]
                how = f" (by its text {found.text!r})"
    if letter is None:
        return Verdict(False, None, "no choice letter found")
    if letter == gold_letter:
        return Verdict(True, letter, f"extracted {letter!r}{how}, the gold choice")
    return Verdict(False, letter, f"extracted {letter!r}{how}, gold {gold_letter!r}")
