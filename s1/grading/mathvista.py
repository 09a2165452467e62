"""MathVista grading with the rules of its evaluation code, minus the edit-distance guess.

MathVista (github.com/lupantech/MathVista, ``evaluation/calculate_score.py``,
``normalize_extracted_answer``) normalises an extracted answer by the problem's types and then
compares it with the gold string:

- ``multi_choice``: a letter in ``(A)`` is taken; a letter among the options (A, B, ...) becomes that
  option's text; otherwise MathVista picks the option with the smallest Levenshtein distance. That
  last step credits an empty or unrelated answer with whatever option happens to be nearest, so here
  an answer that is neither a letter nor an option's text is WRONG. (Also, an answer that is exactly
  an option's text is that option before any letter reading: some options are letters themselves.)
- ``integer``: ``str(int(float(x)))`` (so 2.7 becomes 2, as in MathVista).
- ``float``: ``round(float(x), precision)``; compared numerically with the gold rounded the same way
  (MathVista compares the strings, which is the same for well-formed golds).
- ``list``: MathVista compares ``str(x)``; here both sides are parsed as lists of numbers and compared
  element by element, in order.

MathVista extracts the answer with GPT-4 first; here extraction is by rules (`find_answer`:
``Final answer:`` text, ``\\boxed{}``, ``Answer:``, or a short bare answer), then a choice letter
(`extract_choice`), then the option text or the single number in the extracted text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from s1.grading.choice import choice_letters
from s1.grading.extract import _letter_of, _unwrap, extract_choice, find_answer
from s1.grading.verdict import Verdict, short

__all__ = ["QUESTION_TYPES", "ANSWER_TYPES", "grade_mathvista", "normalize_mathvista", "parse_number"]

QUESTION_TYPES = ("multi_choice", "free_form")
ANSWER_TYPES = ("text", "integer", "float", "list")

_NUMBER_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
_FRAC_RE = re.compile(r"^([-+]?)\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}$")


def _clean(text: str, unit: str | None = None) -> str:
    s = _unwrap(text).replace("\u2212", "-")
    s = s.replace("\\%", "%").replace("\\!", "").replace("\\,", "").replace("^\\circ", "°").replace("^{\\circ}", "°")
    if unit:
        s = s.replace(str(unit), " ")
    return s.strip()


def parse_number(text: str | None, unit: str | None = None) -> float | None:
    """`text` as a number: ``12``, ``-1.5``, ``1,234``, ``3/4``, ``\\frac{3}{4}``, ``$12$``, ``45%``,
    ``12 cm``; a text with several different numbers in it is ambiguous and gives None."""
    if text is None:
        return None
    s = _clean(text, unit)
    try:
        value = float(s.replace(",", ""))
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    m = _FRAC_RE.match(s) or re.match(r"^([-+]?)\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$", s)
    if m:
        try:
            value = float(m.group(2)) / float(m.group(3))
        except (ValueError, ZeroDivisionError):
            return None
        return -value if m.group(1) == "-" else value
    numbers = {float(n.replace(",", "")) for n in _NUMBER_RE.findall(s)}
    if len(numbers) == 1:
        return numbers.pop()
    return None


_PLAIN_NUMBER_RE = re.compile(r"[-+]?\d+(?:\.\d+)?|[-+]?\.\d+")


def _parse_list(text: str | None) -> list[float] | None:
    """``[2014, 2016]``, ``2014, 2016``, ``(1, 2)``, ``2007 and 2008`` -> numbers in order; None otherwise."""
    if text is None:
        return None
    s = _clean(text)
    brackets = re.findall(r"\[([^\[\]]*)\]", s)
    if len(brackets) == 1:
        s = brackets[0]
    numbers = _PLAIN_NUMBER_RE.findall(s)
    if not numbers or re.sub(r"[\s,;()]|\band\b", "", _PLAIN_NUMBER_RE.sub("", s)):
        return None  # no numbers, or words around them: not a list we can read safely
    return [float(n) for n in numbers]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", _clean(text)).rstrip(".")


def _fold(text: str) -> str:
    return _squash(text).casefold()


def _choice_for(text: str, choices: Sequence[str]) -> str | None:
    """The option `text` names: by its exact text, else by letter (MathVista's rule), else by its text
    in any case. Exact text comes first because some options are letters themselves: with options
    ``['(c)', '(a)', '(e)', '(d)', '(b)']`` MathVista reads ``(b)`` as letter B, i.e. the option ``(a)``.
    """
    def unique(hits: list[str]) -> str | None:
        return hits[0] if len(hits) == 1 else None

    exact = unique([c for c in choices if _squash(str(c)) == _squash(text)])
    if exact is not None:
        return exact
    letters = choice_letters(choices)
    letter = re.findall(r"\(([a-zA-Z])\)", text)
    if letter and letter[0].upper() in letters:
        return choices[letters.index(letter[0].upper())]
    bare = _letter_of(text, letters)
    if bare is not None:
        return choices[letters.index(bare)]
    return unique([c for c in choices if _fold(str(c)) == _fold(text)])


def normalize_mathvista(
    extraction: str | None,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    precision: int | float | None = None,
    unit: str | None = None,
) -> str | float | list[float] | None:
    """MathVista's `normalize_extracted_answer` without the edit-distance fallback; None = no answer."""
    if extraction is None or not extraction.strip():
        return None
    if question_type == "multi_choice":
        return _choice_for(extraction, choices or [])
    if answer_type == "integer":
        value = parse_number(extraction, unit)
        return None if value is None else str(int(value))
    if answer_type == "float":
        value = parse_number(extraction, unit)
        return None if value is None else round(value, int(precision) if precision is not None else 15)
    if answer_type == "list":
        return _parse_list(extraction)
    return _clean(extraction)


def _check_types(question_type: str, answer_type: str, choices: Sequence[str] | None) -> None:
    if question_type not in QUESTION_TYPES:
        raise ValueError(f"question_type: expected one of {', '.join(QUESTION_TYPES)}, got {question_type!r}")
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type: expected one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    if question_type == "multi_choice" and not choices:
        raise ValueError("choices: a multi_choice question needs its list of options")


def grade_mathvista(
    answer_text: str | None,
    gold: str,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    precision: int | float | None = None,
    unit: str | None = None,
) -> Verdict:
    """Grade a MathVista answer text against the gold answer string (for multi_choice: the option text)."""
    _check_types(question_type, answer_type, choices)
    found = find_answer(answer_text, bare=True)
    extracted = found.text if found else None
    g = short(str(gold), 40)

    if question_type == "multi_choice":
        assert choices is not None
        letters = choice_letters(choices)
        prediction = normalize_mathvista(extracted, question_type, answer_type, choices) if extracted else None
        if prediction is None:
            letter = extract_choice(answer_text, letters)
            if letter is not None:
                extracted, prediction = extracted or letter, choices[letters.index(letter)]
        if prediction is None:
            if extracted is None:
                return Verdict(False, None, "no answer found (no nearest-option guess)")
            return Verdict(False, extracted, f"extracted {short(extracted, 40)} names no option")
        if _fold(str(prediction)) == _fold(str(gold)):
            return Verdict(True, extracted, f"option {short(str(prediction), 40)} is the gold")
        return Verdict(False, extracted, f"extracted option {short(str(prediction), 40)}, gold {g}")

    if extracted is None:
        return Verdict(False, None, "no answer found")
    prediction = normalize_mathvista(extracted, question_type, answer_type, choices, precision, unit)
    if prediction is None:
        return Verdict(False, extracted, f"no {answer_type} in extracted {short(extracted, 40)}")

    if answer_type == "integer":
        gold_value = parse_number(str(gold))
        ok = gold_value is not None and str(int(gold_value)) == prediction
        shown = prediction
    elif answer_type == "float":
        digits = int(precision) if precision is not None else 15
        gold_value = parse_number(str(gold))
        ok = gold_value is not None and round(gold_value, digits) == prediction
        shown = f"{prediction:.{digits}f}" if precision is not None else repr(prediction)
    elif answer_type == "list":
        gold_list = _parse_list(str(gold))
        ok = gold_list is not None and gold_list == prediction
        shown = "[" + ", ".join(f"{v:g}" for v in prediction) + "]"  # type: ignore[union-attr]
    else:
        ok = _fold(str(prediction)) == _fold(str(gold))
        shown = str(prediction)
    if ok:
        return Verdict(True, extracted, f"{shown} matches gold {g}")
    return Verdict(False, extracted, f"{shown} differs from gold {g}")
