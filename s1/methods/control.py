"""Conditional length control (the s1 paper's token-, step- and class-conditional baselines), with and
without budget forcing on top, and the bounds their Control metric (Eq. 1) checks.

A control run appends the s1 control sentence to every question (`s1.tasks.Control`). With budget
forcing on top, token-conditional runs are capped at their token count and step-conditional ones at
`steps * step_tokens` thinking tokens; class-conditional runs have no number to force.

Control checks each run's average against what it asked for: tokens=N thinking tokens <= N,
steps=N steps <= N; class=short thinking <= the unconditioned run's, class=long >= it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from s1.forcing.policy import AUTO, BudgetPolicy
from s1.forcing.sweep import run_sweep
from s1.grading.records import grade_records
from s1.methods.base import MethodWork, request_for
from s1.methods.steps import split_steps
from s1.methods.verifiers import Verifier
from s1.records import SampleRecord
from s1.tasks import Control

if TYPE_CHECKING:
    from s1.backends.base import Backend
    from s1.methods.config import CompareConfig


@dataclass(frozen=True)
class ControlRun:
    """One control prompt, optionally with a budget-forcing cap (thinking tokens) on top."""

    control: Control
    cap: int | None = None

    @property
    def label(self) -> str:
        """The run's setting label in the run store, e.g. `control:tokens=32` or
        `control:tokens=32,think<=32`."""
        return f"control:{self.control.label}" + ("" if self.cap is None else f",think<={self.cap}")

    @property
    def group(self) -> str:
        """The curve it belongs to in reports (the paper's Table 3 rows)."""
        name = {"tokens": "token-conditional", "steps": "step-conditional", "class": "class-conditional"}
        return name[self.control.kind] + (" + budget forcing" if self.cap is not None else "")


def control_runs(controls: list[Control], forcing: bool = True, step_tokens: int = 16) -> list[ControlRun]:
    """Each control alone and, with `forcing`, capped by budget forcing (not class controls)."""
    if isinstance(step_tokens, bool) or not isinstance(step_tokens, int) or step_tokens < 1:
        raise ValueError(f"step_tokens must be an integer >= 1, got {step_tokens!r}")
    out = []
    for c in controls:
        out.append(ControlRun(c))
        if forcing and c.kind != "class":
            out.append(ControlRun(c, int(c.value) * (step_tokens if c.kind == "steps" else 1)))
    return out


def control_bounds(control: Control, baseline_thinking: float | None) -> tuple[float | None, float | None, str]:
    """(a_min, a_max, unit) for Eq. 1; unit is `tokens` (average thinking tokens) or `steps`.
    Class controls need the unconditioned run's average thinking tokens (`baseline_thinking`)."""
    if control.kind == "tokens":
        return None, float(control.value), "tokens"
    if control.kind == "steps":
        return None, float(control.value), "steps"
    if baseline_thinking is None:
        raise ValueError("class-conditional Control needs the unconditioned run's thinking tokens")
    return (None, baseline_thinking, "tokens") if control.value == "short" else (baseline_thinking, None, "tokens")


def run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None:
    """Each control prompt alone and with its forcing cap, as one shared-prefix sweep per prompt."""
    by_control: dict[str, list[ControlRun]] = defaultdict(list)
    for one in config.control_runs():
        by_control[one.control.label].append(one)
    plain = BudgetPolicy(max_thinking_tokens=max(config.budgets, key=lambda b: float("inf") if b == AUTO else b),
                         max_answer_tokens=config.max_answer_tokens)
    for group in by_control.values():
        settings = [plain if one.cap is None else plain.replace(max_thinking_tokens=one.cap) for one in group]
        for chunk in work.chunks(work.union(one.label for one in group)):
            result = run_sweep(backend, [request_for(item, config.system, group[0].control) for _, item in chunk],
                               settings)
            records: list[SampleRecord] = []
            for n, (task, item) in enumerate(chunk):
                gens = result.generations[n * len(group) : (n + 1) * len(group)]
                gens = [replace(g, setting=one.label, meta={
                    "method": "control", "control": one.control.label, "cap": one.cap, "group": one.group,
                    "steps": len(split_steps(g.thinking, config.step_separator))})
                        for g, one in zip(gens, group, strict=True)]
                records += grade_records(task, item, gens, config.grader_timeout)
            work.emit(records)
