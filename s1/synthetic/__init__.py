"""Synthetic reasoning tasks with exact verifiers (the ``synthetic`` benchmark task).

Items look like s1K examples (question, thinking trace, short ``Answer: ...`` response)
and some traces include an s1-style ``Wait`` re-check, so a tiny model trained on them
can genuinely gain from thinking longer. See ``generate`` and ``verify``.
"""

from s1.synthetic.answers import canonical_int, canonical_int_list, extract_answer
from s1.synthetic.base import (
    CONFIRM_LINE,
    DIFFICULTIES,
    FIX_LINE,
    WAIT_LINE,
    Attempt,
    Family,
    Problem,
    recheck_kind,
)
from s1.synthetic.families import FAMILIES, FAMILY_NAMES, get_family
from s1.synthetic.generation import SPLITS, generate, item_id, split_of
from s1.synthetic.item import SyntheticItem
from s1.synthetic.verify import check_answer, verify

__all__ = [
    "CONFIRM_LINE",
    "DIFFICULTIES",
    "FAMILIES",
    "FAMILY_NAMES",
    "FIX_LINE",
    "SPLITS",
    "WAIT_LINE",
    "Attempt",
    "Family",
    "Problem",
    "SyntheticItem",
    "canonical_int",
    "canonical_int_list",
    "check_answer",
    "extract_answer",
    "generate",
    "get_family",
    "item_id",
    "recheck_kind",
    "split_of",
    "verify",
]
