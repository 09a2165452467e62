"""Warmup as a step count, the same on every transformers version.

transformers reads a float `warmup_steps` below 1 as a ratio of the optimizer steps on 5.x but as a
step count on 4.x (where the ratio was `warmup_ratio`), so a ratio handed to it means different things
depending on the installed version. Here the trainer's scheduler gets an integer computed from the
preset: ceil(ratio x steps) as HF's Trainer does it (s1 trained with that), or floor as
align-anything's `int(ratio * steps)` does (S1-M).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any


def warmup_steps(ratio: float, total_steps: int, rounding: str = "ceil") -> int:
    """Warmup steps for `ratio` of `total_steps` optimizer steps."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"warmup ratio must be in [0, 1), got {ratio}")
    exact = ratio * total_steps
    return math.ceil(exact) if rounding == "ceil" else int(exact)


class ExplicitWarmup:
    """Trainer mixin: the scheduler's warmup is `warmup_steps(warmup_ratio, steps, warmup_rounding)`."""

    warmup_ratio: float = 0.0
    warmup_rounding: str = "ceil"

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        args = self.args  # type: ignore[attr-defined]
        saved = args.warmup_steps
        args.warmup_steps = warmup_steps(self.warmup_ratio, num_training_steps, self.warmup_rounding)  # an int: steps
        try:
            return super().create_scheduler(num_training_steps, optimizer)  # type: ignore[misc]
        finally:
            args.warmup_steps = saved


@cache
def with_explicit_warmup(base: type) -> type:
    """`base` (a transformers / TRL trainer class) with `ExplicitWarmup`."""
    return type(f"{base.__name__}WithExplicitWarmup", (ExplicitWarmup, base), {})


def make_trainer(base: type, preset: Any, **kwargs: Any) -> Any:
    """A `base` trainer whose warmup follows the preset."""
    trainer = with_explicit_warmup(base)(**kwargs)
    trainer.warmup_ratio, trainer.warmup_rounding = preset.warmup_ratio, preset.warmup_rounding
    return trainer
