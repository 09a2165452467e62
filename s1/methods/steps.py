"""Reasoning steps: thinking split at a separator (a newline, a blank line, or a marker such as `Step`).

Verifiers score steps, tree search grows one step at a time, step-conditional control counts them;
all of them split the same way. Sampling one step at a time is `s1.methods.step_sampler`.
"""

from __future__ import annotations

import codecs


def parse_separator(text: str) -> str:
    """A step separator from the command line: escapes such as `\\n` are read (`\\n\\n`: blank line)."""
    value = codecs.decode(text, "unicode_escape") if "\\" in text else text
    if not value:
        raise ValueError("step separator must be a non-empty string, e.g. '\\n' or '\\n\\n'")
    return value


def split_steps(thinking: str, separator: str) -> list[str]:
    """The non-blank steps of `thinking`, each stripped, in order."""
    if not separator:
        raise ValueError("step separator must be a non-empty string")
    return [part.strip() for part in thinking.split(separator) if part.strip()]
