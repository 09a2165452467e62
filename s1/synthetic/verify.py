"""Exact verifiers: compare an extracted answer to the gold one in each family's canonical form."""

from __future__ import annotations

from s1.synthetic.answers import extract_answer
from s1.synthetic.families import get_family
from s1.synthetic.item import SyntheticItem


def check_answer(family: str, predicted: str | None, gold: str) -> bool:
    """True when ``predicted`` parses and equals ``gold`` canonically; unparseable never counts."""
    if not isinstance(predicted, str):
        return False
    fam = get_family(family)
    got = fam.canonical(predicted)
    return got is not None and got == fam.canonical(gold)


def verify(item: SyntheticItem, text: str) -> bool:
    """Grade model output (thinking and/or response) against the item's gold answer."""
    if not isinstance(text, str):
        return False
    return check_answer(item.family, extract_answer(text), item.answer)
