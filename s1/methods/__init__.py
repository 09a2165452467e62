"""Test-time scaling methods, one file each, all with one signature (`s1.methods.base`):

    run(work, config, backend, verifiers) -> None

`budget_forcing` (a shared-prefix sweep), `voting` (sampled solutions for majority voting and best-of-N),
`rebase` (reward-balanced tree search), `rejection` (rejection sampling for length), `control`
(token-, step- and class-conditional prompts). `method(name)` imports one on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

REGISTRY: dict[str, str] = {
    "budget_forcing": "s1.methods.budget_forcing:run",
    "voting": "s1.methods.voting:run",
    "rebase": "s1.methods.rebase:run",
    "rejection": "s1.methods.rejection:run",
    "control": "s1.methods.control:run",
}
METHODS: tuple[str, ...] = tuple(REGISTRY)


def method(name: str) -> Callable[..., Any]:
    """The `run` function of the method named `name`."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(REGISTRY)}")
    module, _, fn = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), fn)
