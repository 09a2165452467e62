"""Registry of the synthetic task families, keyed by the name used in items and CLIs."""

from __future__ import annotations

from s1.synthetic.arithmetic import AdditionFamily, MultiplicationFamily
from s1.synthetic.base import Family
from s1.synthetic.letters import CountLetterFamily
from s1.synthetic.sorting import SortFamily
from s1.synthetic.word_problems import ArithChainFamily

FAMILIES: dict[str, Family] = {
    f.name: f for f in (AdditionFamily(), MultiplicationFamily(), CountLetterFamily(), SortFamily(), ArithChainFamily())
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def get_family(name: str) -> Family:
    """Look a family up by name, with an error that lists the valid names."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"family must be one of {list(FAMILY_NAMES)}, got {name!r}") from None
