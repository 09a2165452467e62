"""The `synthetic` benchmark: a fixed held-out set the tiny model never trains on, and its scoring.

The held-out split is disjoint from training by construction (a question's split is a hash of its
text); this module fixes which held-out items form the benchmark and how a generation is graded.
"""

from __future__ import annotations

from s1.synthetic.generation import generate
from s1.synthetic.item import SyntheticItem
from s1.synthetic.verify import verify

BENCHMARK_SEED = 20250131  # the s1 paper's arXiv date; fixed so every run scores the same items
BENCHMARK_DIFFICULTIES = (1, 2)


def heldout_items(n: int = 400, difficulties: tuple[int, ...] = BENCHMARK_DIFFICULTIES,
                  seed: int = BENCHMARK_SEED, family: str | None = None) -> list[SyntheticItem]:
    """`n` held-out items, spread evenly over the families (or one `family`) and the difficulties."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    per_level = -(-n // len(difficulties))
    items: list[SyntheticItem] = []
    for level in difficulties:
        items += generate(family, per_level, seed=seed + level, split="heldout", difficulty=level)
    return items[:n] if len(difficulties) == 1 else _interleave(items, per_level, n)


def _interleave(items: list[SyntheticItem], per_level: int, n: int) -> list[SyntheticItem]:
    """Alternate difficulty levels so any prefix (`--limit`) keeps the mix."""
    levels = [items[i:i + per_level] for i in range(0, len(items), per_level)]
    mixed = [lvl[j] for j in range(per_level) for lvl in levels if j < len(lvl)]
    return mixed[:n]


def score(item: SyntheticItem, answer_text: str) -> bool:
    """Correct when the text after thinking states the gold answer; empty text is wrong."""
    return bool(answer_text.strip()) and verify(item, answer_text)
