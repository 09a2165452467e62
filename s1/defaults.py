"""Defaults that follow the model's context length, in one place (never the model's name).

A 1024-token model (the embedded tiny one) and a 32K one need budgets three orders of magnitude apart;
deriving every default from the context keeps a retrained tiny model, a model given by path, a server's
model and a 32B model each working with no extra flag.

| default | rule (C = context) | C = 1K | 8K | 32K |
| --- | --- | --- | --- | --- |
| answer cap | min(1024, C / 32) | 32 | 256 | 1024 |
| sweep budgets | powers of 2, C/128 to C/4, auto | 8..256 | 64..2048 | 256..8192 |
| reasoning_effort low/medium/high | C/64, C/16, C/4 | 16/64/256 | 128/512/2048 | 512/2048/8192 |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s1.forcing.policy import AUTO, Budget

FALLBACK_CONTEXT = 32768  # when a model does not say (e.g. a server that reports no max_model_len)
DEFAULT_NUM_IGNORE: tuple[int, ...] = (0, 1, 2)  # the s1 paper's extension: no Wait, one, two


def answer_tokens(context_length: int | None) -> int:
    """The default answer cap: room for a worked answer, a small share of the context."""
    return max(1, min(1024, (context_length or FALLBACK_CONTEXT) // 32))


def sweep_budgets(context_length: int | None) -> tuple[Budget, ...]:
    """Thinking budgets that spread over the curve: powers of two from context/128 to context/4, then auto."""
    context = context_length or FALLBACK_CONTEXT
    low, high = max(8, context // 128), max(8, context // 4)
    out: list[Budget] = []
    b = 1 << (low - 1).bit_length()
    while b <= high:
        out.append(b)
        b *= 2
    return (*out, AUTO)


def run_defaults(context_length: int | None) -> dict[str, Any]:
    """What `s1 eval` / `s1 generate` use for every option left open (when no protocol preset fills it)."""
    return {"budgets": sweep_budgets(context_length), "num_ignore": DEFAULT_NUM_IGNORE,
            "max_answer_tokens": answer_tokens(context_length), "ignore_strings": None, "temperature": 0.0,
            "top_p": 1.0, "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
            "min_tokens_after_ignore": 0}


def effort_budgets(context_length: int | None) -> dict[str, int]:
    """`reasoning_effort` -> thinking budget ("none" and "minimal" answer straight away: the cap at once)."""
    context = context_length or FALLBACK_CONTEXT
    return {"none": 0, "minimal": 0, "low": context // 64, "medium": context // 16, "high": context // 4}


@dataclass(frozen=True)
class CompareDefaults:
    """The method comparison's defaults for one context length (`s1 compare`)."""

    budgets: tuple[Budget, ...]
    max_answer_tokens: int
    sample_budget: int
    rejection_budgets: tuple[int, ...]
    rebase_thinking_tokens: int
    max_step_tokens: int
    controls: tuple[str, ...]
    step_tokens: int


def compare_defaults(context_length: int | None) -> CompareDefaults:
    context = context_length or FALLBACK_CONTEXT
    steps = (16, 32) if context >= 8192 else (2, 4)
    return CompareDefaults(
        budgets=sweep_budgets(context), max_answer_tokens=answer_tokens(context), sample_budget=context // 8,
        rejection_budgets=(context // 32, context // 16, context // 8), rebase_thinking_tokens=context // 4,
        max_step_tokens=max(64, context // 64),
        controls=(f"tokens={context // 64}", f"tokens={context // 32}", *(f"steps={n}" for n in steps),
                  "class=short", "class=long"),
        step_tokens=max(12, context // 256),
    )
