"""Answer extraction from a model's answer text (the text after the thinking delimiter).

Precedence (`find_answer`), first hit wins:

1. ``Final Answer:`` / ``Final answer:`` (any case, ``**Final Answer:**`` too): the text after the LAST
   such delimiter. Inside it the last ``\\boxed{...}`` wins; without one, its first line (or first
   display-math block). This is the delimiter the budget-forcing cap writes (s1: ``Final Answer:``,
   S1-M: ``Final answer: ``), so when it is there it is the answer. An empty region (the text ends at
   the delimiter) falls through to 2.
2. The LAST ``\\boxed{...}`` or ``\\fbox{...}`` in the whole text, braces balanced (escaped ``\\{``
   ``\\}`` do not count); ``\\boxed 5`` (space form) runs to the next ``$``. An unbalanced last box (a
   truncated generation) counts as no box, as in s1.
3. The text after the LAST ``Answer:`` (any case), first line.
4. With ``bare=True`` only: the whole text, when it is one short line with no answer delimiter (a model
   that answered ``42``; a lone ``Final Answer:`` is no answer).

Nothing found gives None; graders count that as wrong, never as a match.

Where this comes from: s1's lm-evaluation-harness fork (github.com/simplescaling/lm-evaluation-harness,
``lm_eval/tasks/openai_math/utils.py`` and ``aime/utils.py`` of the s1 paper's time) keeps the text
after ``<|im_start|>answer\\n``, then takes ``remove_boxed(last_boxed_only_string(a))`` (last
``\\boxed``, else last ``\\fbox``), else ``re.findall(r"(?i)Answer\\s*:\\s*(.*)", a, re.DOTALL)[-1]``, else
the whole text (which it then compares exactly or hands to the gpt-4o-mini processor). Two deliberate
differences: the forced ``Final Answer:`` is looked at before any earlier box (s1 prefers any box,
so a box written while still "thinking aloud" in the answer could override the forced answer), and
the ``Answer:`` fallback takes the last occurrence's first line (s1's greedy DOTALL pattern in fact
returns everything after the FIRST ``Answer:``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "Extraction",
    "extract_answer",
    "extract_choice",
    "find_answer",
    "last_boxed",
]

# ``Final Answer:``, ``**Final Answer:**``, ``**Final Answer**:``, full-width colon too.
_FINAL_RE = re.compile(r"(?i)final\s+answer\s*\**\s*[:：]")
_ANSWER_RE = re.compile(r"(?i)\banswer\s*\**\s*[:：]")
_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^|<>]{1,40}\|>|</s>")
_WRAPPER_RE = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|textrm|mbox)\s*\{(.*)\}$", re.DOTALL)
_BARE_MAX_CHARS = 40


class Extraction(NamedTuple):
    """An extracted answer and how it was found: ``final_answer``, ``boxed``, ``answer`` or ``bare``."""

    text: str
    method: str


def _boxed_content(text: str, pos: int) -> str | None:
    """The argument of a box command whose name ends at `pos`; None when unbalanced or empty."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos >= n:
        return None
    if text[pos] != "{":
        # ``\boxed 5$``: s1's space form runs to the next ``$`` (we also stop at a newline)
        end = len(text)
        for stop in ("$", "\n"):
            k = text.find(stop, pos)
            if k >= 0:
                end = min(end, k)
        content = text[pos:end].strip()
        return content or None
    depth = 0
    i = pos
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                content = text[pos + 1 : i].strip()
                return content or None
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` / ``\\fbox{...}`` in `text`, or None."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    return _boxed_content(text, matches[-1].end())


def _strip_math(s: str) -> str:
    """Drop surrounding whitespace, markdown bold, math delimiters and a trailing full stop."""
    s = _SPECIAL_TOKEN_RE.sub("", s).strip()
    for _ in range(3):
        before = s
        s = s.strip().strip("*").strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                inner = s[len(left) : len(s) - len(right)]
                if left not in inner and right not in inner:  # one math span, not "$a$ and $b$"
                    s = inner.strip()
                break
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].rstrip()
        if s == before:
            break
    return s


def _first_chunk(region: str) -> str | None:
    """The first line of `region` (or its first display-math block), cleaned; None when empty."""
    region = _SPECIAL_TOKEN_RE.sub("", region).strip().lstrip("*").strip()
    if not region:
        return None
    for opener, closer in (("$$", "$$"), ("\\[", "\\]")):
        if region.startswith(opener):
            end = region.find(closer, len(opener))
            if end >= 0:
                return _strip_math(region[: end + len(closer)]) or None
    line = region.split("\n", 1)[0]
    return _strip_math(line) or None


def find_answer(text: str | None, *, bare: bool = False) -> Extraction | None:
    """Extract the answer from `text` with the precedence in the module docstring."""
    if not text:
        return None
    finals = list(_FINAL_RE.finditer(text))
    if finals:
        region = text[finals[-1].end() :]
        boxed = last_boxed(region)
        if boxed is not None:
            return Extraction(_strip_math(boxed), "boxed")
        chunk = _first_chunk(region)
        if chunk:
            return Extraction(chunk, "final_answer")
    boxed = last_boxed(text)
    if boxed is not None:
        return Extraction(_strip_math(boxed), "boxed")
    answers = list(_ANSWER_RE.finditer(text))
    if answers:
        chunk = _first_chunk(text[answers[-1].end() :])
        if chunk:
            return Extraction(chunk, "answer")
    # A box that gave nothing (empty, cut off) is no answer; nor is a delimiter with nothing after it (the
    # forced `Final Answer:` of a capped sample that then said nothing).
    if bare and not _BOX_RE.search(text) and not finals and not answers:
        whole = _strip_math(text)
        if whole and "\n" not in whole and len(whole) <= _BARE_MAX_CHARS:
            return Extraction(whole, "bare")
    return None


def extract_answer(text: str | None, *, bare: bool = False) -> str | None:
    """The extracted answer string (see `find_answer`), or None when there is none."""
    found = find_answer(text, bare=bare)
    return found.text if found else None


# ---------------------------------------------------------------------------------------------------
# Multiple choice letters (GPQA)


def _unwrap(s: str) -> str:
    s = _strip_math(s)
    for _ in range(3):
        m = _WRAPPER_RE.match(s)
        if not m:
            break
        s = _strip_math(m.group(1))
    return s


def _letter_of(s: str, letters: str) -> str | None:
    """`s` as a bare choice: ``C``, ``c``, ``(C)``, ``(C) 7``, ``C) 7``, ``C. Elephant``, ``C: ...``."""
    s = _unwrap(s)
    if len(s) == 1 and s.upper() in letters:
        return s.upper()
    m = re.match(r"^\(([A-Za-z])\)(?:\W.*)?$", s, re.DOTALL)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    m = re.match(r"^([A-Z])[).:](?:\s.*)?$", s, re.DOTALL)
    if m and m.group(1) in letters:
        return m.group(1)
    return None


def _phrase_letter(s: str, letters: str) -> str | None:
    """The letter of the last "answer is (C)" / "option C is correct"-style phrase in `s`."""
    cls = "[" + re.escape(letters) + "]"
    patterns = (
        rf"(?i:answer|option|choice)(?:\s+(?i:is|would\s+be|should\s+be|must\s+be))\s*[:\s]*\**\s*\\?\(?\s*({cls})\s*\)?(?![A-Za-z0-9])",
        rf"(?i:option|choice)\s+\(?({cls})\)?\s+(?i:is\s+correct|is\s+the\s+correct)",
    )
    hits: list[tuple[int, str]] = []
    for pattern in patterns:
        hits.extend((m.start(), m.group(1)) for m in re.finditer(pattern, s))
    if not hits:
        return None
    return max(hits)[1]


def extract_choice(text: str | None, letters: str = "ABCD") -> str | None:
    """The picked choice letter, or None when the text names none (conservative: no guessing).

    In order: the extracted answer (`find_answer`: ``Final Answer:`` / ``\\boxed{C}`` / ``Answer:``) read
    as a letter (``C``, ``(C)``, ``C) 7``, ``\\text{C}``), or an "answer is C" phrase or a single
    parenthesised letter inside it; then the last "answer is (C)" / "option C is correct" phrase in the
    whole text; then the whole text when it is nothing but a letter.
    """
    if not text:
        return None
    letters = letters.upper()
    found = find_answer(text)
    if found is not None:
        letter = _letter_of(found.text, letters) or _phrase_letter(found.text, letters)
        if letter:
            return letter
        in_parens = set(re.findall(r"\(([" + re.escape(letters) + r"])\)", found.text))
        if len(in_parens) == 1:
            return in_parens.pop()
    letter = _phrase_letter(text, letters)
    if letter:
        return letter
    return _letter_of(text, letters)
