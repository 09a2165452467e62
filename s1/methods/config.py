"""The settings of a method comparison (`s1 compare`): every method reads its part of one config.

Kept apart from the methods themselves, so each method module (and the comparison in `s1.eval`) imports
it without importing the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from s1.forcing.policy import AUTO, Budget, BudgetPolicy, SamplingSettings
from s1.methods import METHODS
from s1.methods.control import ControlRun, control_runs
from s1.methods.rebase import SELECTIONS, RebaseConfig
from s1.methods.verifiers import AGGREGATIONS, parse_verifier_spec
from s1.methods.voting import sample_label
from s1.tasks import Control, check_scope


def _positive_ints(name: str, values: Sequence[Any]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name}: give integers >= 1, got {tuple(values)!r}")


@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides a comparison's results (stored in the run manifest)."""

    model: str | None = None
    backend: str = "hf"
    tasks: tuple[str, ...] = ("synthetic",)
    data_dir: str | None = None
    limit: int | None = None
    methods: tuple[str, ...] = METHODS
    format: str = "auto"
    system: str | None = None
    max_answer_tokens: int = 16
    seed: int = 0
    grader_timeout: float = 5.0
    # budget forcing: greedy, one shared-prefix sweep
    budgets: tuple[Budget, ...] = (8, 16, 24, 32, 48, AUTO)
    num_ignore: tuple[int, ...] = (0, 1, 2)
    # sampling: voting / best-of-N samples, REBASE steps, rejection attempts
    samples: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    sample_budget: Budget = 128
    verifiers: tuple[str, ...] = ("confidence",)
    aggregate: str = "mean"
    step_separator: str = "\n"
    step_tag: str = " ки"
    # REBASE
    rebase_widths: tuple[int, ...] = (2, 4, 8)
    rebase_temperature: float = 0.2
    rebase_select: str = "weighted"
    max_depth: int = 32
    max_step_tokens: int = 64
    rebase_thinking_tokens: int = 128
    # rejection sampling
    rejection_budgets: tuple[int, ...] = (24, 32, 48)
    max_attempts: int = 8
    # conditional control
    controls: tuple[str, ...] = ("tokens=16", "tokens=32", "steps=2", "steps=4", "class=short", "class=long")
    control_forcing: bool = True
    step_tokens: int = 12

    def __post_init__(self) -> None:
        check_scope(self.tasks, self.limit)
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise ValueError(f"methods must be among {', '.join(METHODS)}, got {', '.join(self.methods) or 'none'}")
        _positive_ints("samples", [self.samples])
        _positive_ints("rebase_widths", self.rebase_widths)
        _positive_ints("rejection_budgets", self.rejection_budgets)
        _positive_ints("max_attempts", [self.max_attempts])
        _positive_ints("step_tokens", [self.step_tokens])
        if self.temperature <= 0 and any(m in self.methods for m in ("voting", "rebase", "rejection")):
            raise ValueError("temperature must be > 0 for voting, rebase and rejection sampling "
                             "(greedy samples would all be identical)")
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {self.aggregate!r}")
        if self.rebase_select not in SELECTIONS:
            raise ValueError(f"rebase_select must be one of {', '.join(SELECTIONS)}, got {self.rebase_select!r}")
        if any(m in self.methods for m in ("voting", "rebase")):
            if not self.verifiers:
                raise ValueError("verifiers: voting's best-of-N and rebase need at least one verifier")
            for spec in self.verifiers:
                parse_verifier_spec(spec)
        for spec in self.controls:
            Control.parse(spec)
        self.bf_settings()
        self.sample_policy()
        self.rebase_config(self.rebase_widths[0])

    # -- settings --------------------------------------------------------------------------------
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(temperature=self.temperature, top_p=self.top_p, seed=self.seed)

    def bf_settings(self) -> list[BudgetPolicy]:
        """The budget-forcing curve: every budget without ignores, then the largest budget extended by
        each ignore count (suppressing the end of thinking only matters once the cap does not bind)."""
        top = AUTO if AUTO in self.budgets else max(int(b) for b in self.budgets)
        pairs = [(b, 0) for b in self.budgets] + [(top, k) for k in self.num_ignore if k]
        return [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=self.max_answer_tokens)
                for b, k in dict.fromkeys(pairs)]

    def sample_policy(self) -> BudgetPolicy:
        return BudgetPolicy(max_thinking_tokens=self.sample_budget, max_answer_tokens=self.max_answer_tokens,
                            thinking=self.sampling())

    def rebase_config(self, width: int) -> RebaseConfig:
        return RebaseConfig(width=width, temperature=self.rebase_temperature, separator=self.step_separator,
                            max_depth=self.max_depth, max_step_tokens=self.max_step_tokens,
                            max_thinking_tokens=self.rebase_thinking_tokens, max_answer_tokens=self.max_answer_tokens,
                            aggregate=self.aggregate, select=self.rebase_select)

    def control_runs(self) -> list[ControlRun]:
        return control_runs([Control.parse(c) for c in self.controls], self.control_forcing, self.step_tokens)

    def labels(self) -> dict[str, list[tuple[str, int]]]:
        """Per method, the (setting label, samples per item) it stores."""
        out: dict[str, list[tuple[str, int]]] = {}
        if "budget_forcing" in self.methods:
            out["budget_forcing"] = [(p.label(), 1) for p in self.bf_settings()]
        if "voting" in self.methods:
            out["voting"] = [(sample_label(self.sample_policy()), self.samples)]
        if "rebase" in self.methods:
            out["rebase"] = [(f"rebase:W={w}", 1) for w in self.rebase_widths]
        if "rejection" in self.methods:
            out["rejection"] = [(f"rejection:think<={b}", 1) for b in self.rejection_budgets]
        if "control" in self.methods:
            out["control"] = [(run.label, 1) for run in self.control_runs()]
        return out

    def parameters(self) -> dict[str, Any]:
        skip = {"model", "backend", "tasks", "seed"}
        return {k: v for k, v in asdict(self).items() if k not in skip}




