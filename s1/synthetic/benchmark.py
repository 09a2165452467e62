"""The `synthetic` benchmark: a fixed held-out set the tiny model never trains on.

The held-out split is disjoint from training by construction (a question's split is a hash of its
text); this module fixes which held-out items form the benchmark. Grading is the `synthetic` grader
of `s1.grading`, the same for `s1 eval`, the benchmarks and the tests.
"""

from __future__ import annotations

from s1.synthetic.generation import generate
from s1.synthetic.item import SyntheticItem

BENCHMARK_SEED = 20250131  # the s1 paper's arXiv date; fixed so every run scores the same items
BENCHMARK_FAMILIES: tuple[str, ...] = ("addition",)
"""What the embedded tiny model is trained on (`TinyRecipe.families`), so `synthetic` scores it fairly."""
BENCHMARK_DIFFICULTIES: tuple[int, ...] = (1,)


def heldout_items(n: int = 400, difficulties: tuple[int, ...] = BENCHMARK_DIFFICULTIES,
                  seed: int = BENCHMARK_SEED, family: str | None = None,
                  families: tuple[str, ...] | None = BENCHMARK_FAMILIES) -> list[SyntheticItem]:
    """`n` held-out items, spread evenly over the difficulties and over `families` (one `family`
    overrides it; `families=None` means every family)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    names: list[str | None] = [family] if family else list(families) if families else [None]
    parts: list[list[SyntheticItem]] = []
    for level in difficulties:
        for name in names:
            parts.append(generate(name, -(-n // (len(difficulties) * len(names))), seed=seed + level,
                                  split="heldout", difficulty=level))
    mixed = [part[j] for j in range(max(len(p) for p in parts)) for part in parts if j < len(part)]
    return mixed[:n]
