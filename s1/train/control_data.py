"""Training data for s1's conditional-control models (the paper's token- and step-conditional baselines).

Token-conditional: the prompt says how long the thinking may be (`Think for up to N tokens.`, N the
trace's own length rounded up to a bucket), so the model learns to keep within a stated budget.
Step-conditional: the thinking is cut into steps and each step opens with a countdown of the steps
left (`(3 steps left)`), and the prompt states the step budget (`Think for up to N steps.`).
The prompt sentences are `s1.tasks.prompts`' own, so training and evaluation ask the same way.
The countdown is plain text on purpose: in the `s1` format `<|im_start|>` inside thinking is a stop
token, so a marker starting with it would end thinking under budget forcing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from s1.tasks.prompts import SEPARATOR, STEP_CONDITIONAL, TOKEN_CONDITIONAL

CONTROL_KINDS = ("tokens", "steps")


@dataclass(frozen=True)
class ControlSpec:
    """How to add conditional control to a record.

    kind: `tokens` (budget in the prompt) or `steps` (countdown in the trace, step budget in the prompt).
    bucket: token budgets are the trace length rounded up to a multiple of this.
    separator: where the thinking splits into parts; step_tokens: consecutive parts merge until a step
    has at least this many tokens (0: every part is a step). marker: the countdown, `{left}` = steps left.
    """

    kind: str
    bucket: int = 100
    separator: str = "\n\n"
    step_tokens: int = 0
    marker: str = "({left} steps left)\n"

    def __post_init__(self) -> None:
        if self.kind not in CONTROL_KINDS:
            raise ValueError(f"control kind must be one of {list(CONTROL_KINDS)}, got {self.kind!r}")
        if self.bucket < 1:
            raise ValueError(f"control bucket must be >= 1, got {self.bucket}")
        if self.step_tokens < 0:
            raise ValueError(f"control step_tokens must be >= 0, got {self.step_tokens}")
        if not self.separator:
            raise ValueError("control separator must be a non-empty string")
        if "{left}" not in self.marker:
            raise ValueError(f"control marker must contain '{{left}}', got {self.marker!r}")


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def steps_of(thinking: str, spec: ControlSpec, tokenizer: Any) -> list[str]:
    """The thinking's steps: non-blank parts at the separator, merged up to `step_tokens` tokens each."""
    parts = [p.strip() for p in thinking.split(spec.separator) if p.strip()]
    if spec.step_tokens == 0:
        return parts
    steps: list[str] = []
    current: list[str] = []
    for part in parts:
        current.append(part)
        if _count(tokenizer, spec.separator.join(current)) >= spec.step_tokens:
            steps.append(spec.separator.join(current))
            current = []
    if current:
        steps.append(spec.separator.join(current))
    return steps


def apply_control(record: dict[str, str], spec: ControlSpec, tokenizer: Any) -> dict[str, str]:
    """The record with its budget in the question and (for steps) the countdown in the thinking."""
    for key in ("question", "thinking"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise ValueError(f"control data needs a non-empty string {key!r}; got keys {sorted(record)}")
    thinking = record["thinking"]
    if spec.kind == "tokens":
        budget = math.ceil(_count(tokenizer, thinking) / spec.bucket) * spec.bucket
        return {**record, "question": record["question"] + SEPARATOR + TOKEN_CONDITIONAL.format(n=budget)}
    steps = steps_of(thinking, spec, tokenizer)
    marked = spec.separator.join(spec.marker.format(left=len(steps) - i) + s for i, s in enumerate(steps))
    return {**record, "question": record["question"] + SEPARATOR + STEP_CONDITIONAL.format(n=len(steps)),
            "thinking": marked}
