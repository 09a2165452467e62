"""s1's curation protocol strings, read from the data files beside this module (see README.md).

The prompts, the MSC rubric and the keep list are s1's, byte for byte; a config can point any of them
at another file. Reading is cached: every stage asks for the same few small files.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
GRADING_SYSTEM = "s1_grading_system.txt"
GRADING_USER = "s1_grading_user.txt"
DOMAIN_SYSTEM = "s1_domain_system.txt"
DOMAIN_USER = "s1_domain_user.txt"
MSC = "s1_msc.json"
KEEP_QUESTIONS = "s1_keep_questions.json"


def path_of(name: str) -> Path:
    """A shipped protocol file by its name, or any other file by its path."""
    shipped = HERE / name
    return shipped if shipped.is_file() else Path(name).expanduser()


@cache
def text(name: str) -> str:
    """A prompt file exactly as stored (no newline added or stripped)."""
    with path_of(name).open(encoding="utf-8", newline="") as fh:
        return fh.read()


@cache
def msc_classes(name: str = MSC) -> tuple[dict, ...]:
    """s1's MSC classes: `code`, `title`, `prompt` (the rubric entry), in s1's order."""
    return tuple(json.loads(text(name)))


@cache
def keep_questions(name: str = KEEP_QUESTIONS) -> frozenset[str]:
    """Questions kept whenever a source is subsampled (s1's `TMP_QUESTIONS_TO_KEEP`)."""
    return frozenset(json.loads(text(name)))
