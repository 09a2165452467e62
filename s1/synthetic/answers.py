"""Answer extraction and canonical parsing, shared by the verifier and the families.

Kept free of family imports so families can use the parsers without import cycles.
"""

from __future__ import annotations

import re

_ANSWER_RE = re.compile(r"\banswer[ \t]*:[ \t]*([^\n]*)", re.IGNORECASE)
_SO_RE = re.compile(r"\bthe answer is\b[ \t]*:?[ \t]*([^\n]*)", re.IGNORECASE)
_BOXED = "\\boxed{"
_INT_RE = re.compile(r"[+-]?\d+")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_LIST_SPLIT_RE = re.compile(r"[,;\s]+")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every balanced ``\\boxed{...}``, in order (unbalanced ones are skipped)."""
    found: list[str] = []
    start = text.find(_BOXED)
    while start != -1:
        i = start + len(_BOXED)
        depth = 1
        j = i
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            found.append(text[i : j - 1])
        start = text.find(_BOXED, start + 1)
    return found


def _clean(candidate: str) -> str | None:
    """Strip markup around an answer (boxed, $, **, backticks, trailing period); None if empty."""
    s = candidate.strip()
    boxed = _boxed_contents(s)
    if boxed and s.startswith(_BOXED) and s.endswith("}"):
        s = boxed[0]
    s = s.strip().strip("$*`").strip()
    while s.endswith("."):
        s = s[:-1].rstrip()
    return s or None


def _last_clean(candidates: list[str]) -> str | None:
    for candidate in reversed(candidates):
        cleaned = _clean(candidate)
        if cleaned is not None:
            return cleaned
    return None


def extract_answer(text: str) -> str | None:
    """Final answer in model output.

    Priority mirrors how outputs are laid out: the response's ``Answer: ...`` wins, then
    the last ``\\boxed{...}``, then the thinking's last ``So the answer is ...``. Empty
    candidates are ignored; None means nothing usable was found.
    """
    if not text:
        return None
    for candidates in (_ANSWER_RE.findall(text), _boxed_contents(text), _SO_RE.findall(text)):
        found = _last_clean(candidates)
        if found is not None:
            return found
    return None


def canonical_int(answer: str) -> int | None:
    """Integer value of an answer, ignoring whitespace, leading zeros, a trailing period, and
    thousands separators; None for anything else (so junk never matches)."""
    s = answer.strip()
    while s.endswith("."):
        s = s[:-1].rstrip()
    if _INT_RE.fullmatch(s):
        return int(s)
    if _THOUSANDS_RE.fullmatch(s):
        return int(s.replace(",", ""))
    return None


def canonical_int_list(answer: str) -> tuple[int, ...] | None:
    """Integers of a list answer regardless of brackets, commas or spacing; None if any token
    is not an integer or the list is empty."""
    s = answer.strip()
    while s.endswith("."):
        s = s[:-1].rstrip()
    if len(s) >= 2 and s[0] + s[-1] in ("[]", "()", "{}"):
        s = s[1:-1]
    tokens = [t for t in _LIST_SPLIT_RE.split(s) if t]
    if not tokens or not all(_INT_RE.fullmatch(t) for t in tokens):
        return None
    return tuple(int(t) for t in tokens)
