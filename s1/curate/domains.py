"""Domains: s1's classification of questions into the 61 top-level MSC 2020 classes (every class but
00 General and 01 History), with s1's rubric, prompts and reading of the reply.

The rubric, the system prompt and the user message are s1's (`s1.curate.protocol`). A reply names its
class in its last two characters, as s1 reads it (`completion[-2:]` in s1's `featurization.py`); a
reply that does not end in two digits is asked again (s1 asks until it does), and a code outside the
61 classes is no domain (s1's title lookup fails on it and records None).
"""

from __future__ import annotations

from functools import cache

import s1.curate.protocol as protocol


@cache
def msc(rubric_file: str = protocol.MSC) -> dict[str, str]:
    """code -> title, in s1's order."""
    return {c["code"]: c["title"] for c in protocol.msc_classes(rubric_file)}


@cache
def rubric(rubric_file: str = protocol.MSC) -> str:
    """The subject list shown to the classifier: s1's `prompt` entries joined by a blank line."""
    return "\n\n".join(c["prompt"] for c in protocol.msc_classes(rubric_file))


def system_prompt(name: str = protocol.DOMAIN_SYSTEM) -> str:
    return protocol.text(name)


def classify_prompt(question: str, template: str = protocol.DOMAIN_USER, rubric_file: str = protocol.MSC) -> str:
    """The user message of one classification."""
    return protocol.text(template).format(question=question, rubric=rubric(rubric_file))


def reply_ends_in_code(reply: str | None) -> bool:
    """Whether s1 would accept the reply: its last two characters are digits."""
    tail = (reply or "")[-2:]
    return len(tail) == 2 and tail.isdigit()


def parse_code(reply: str | None, rubric_file: str = protocol.MSC) -> tuple[str | None, str | None]:
    """(code, None) for a reply ending in the code of an MSC class; else (None, why)."""
    if not reply_ends_in_code(reply):
        return None, f"reply does not end in a two-digit code: {(reply or '')[-60:]!r}"
    code = (reply or "")[-2:]
    if code not in msc(rubric_file):
        return None, f"code {code} is not one of the {len(msc(rubric_file))} MSC classes"
    return code, None


def domain_name(code: str | None, rubric_file: str = protocol.MSC) -> str | None:
    return msc(rubric_file).get(code) if code is not None else None
