"""Rejection sampling for length control (the s1 paper's baseline): sample until the thinking ends
naturally within the budget.

An attempt runs with its thinking capped one token past the budget, so an attempt that would run
over is cut there (it costs at most budget + 1 thinking tokens, plus the answer forced after the
cap) and one that ends naturally with at most `budget` sampled thinking tokens is accepted. Attempts
are capped at `max_attempts` (the s1 repo loops forever when nothing fits, e.g. at temperature 0);
under greedy decoding a retry would repeat the attempt exactly, so there is only one. A question
with no accepted attempt keeps its last attempt, marked not accepted. Every attempt's tokens count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.grading.records import grade_records
from s1.methods.base import MethodWork, request_for
from s1.methods.verifiers import Verifier
from s1.metrics import generated_tokens, total_thinking_tokens
from s1.records import Generation, SampleRecord

if TYPE_CHECKING:
    from s1.backends.base import Backend
    from s1.methods.config import CompareConfig


@dataclass(frozen=True)
class RejectionResult:
    """The accepted attempt (or the last one), how many attempts it took and what they all cost."""

    generation: Generation
    attempts: int
    accepted: bool
    generated_tokens: int  # thinking + answer tokens of every attempt, forced ones included
    thinking_tokens: int  # thinking tokens of every attempt


def accepted(gen: Generation, budget: int) -> bool:
    """Whether an attempt ended its thinking by itself within `budget` sampled thinking tokens."""
    return gen.ok and gen.thinking_closed and not gen.cap_hit and gen.thinking_tokens <= budget


def rejection_sample(backend: Backend, requests: Sequence[Request], budget: int, max_attempts: int,
                     policy: BudgetPolicy) -> list[RejectionResult]:
    """One result per request. Attempts run in rounds over the questions still rejected; attempt a of
    a request samples from stream `sample_index * max_attempts + a`, so results are reproducible with
    a seed and each attempt differs. `policy` gives the sampling and answer settings (its budget and
    ignore settings are replaced: thinking capped at budget + 1, no ignores)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"rejection budget must be an integer >= 1, got {budget!r}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    capped = policy.replace(max_thinking_tokens=budget + 1, num_ignore=0, min_thinking_tokens=0)
    rounds = 1 if policy.thinking.greedy else max_attempts
    last: list[Generation | None] = [None] * len(requests)
    attempts = [0] * len(requests)
    tokens = [0] * len(requests)
    thinking = [0] * len(requests)
    open_rows = list(range(len(requests)))
    for attempt in range(rounds):
        if not open_rows:
            break
        batch = [replace(requests[i], policy=None, sample_index=requests[i].sample_index * max_attempts + attempt)
                 for i in open_rows]
        still = []
        for i, gen in zip(open_rows, backend.generate(batch, capped), strict=True):
            attempts[i] += 1
            tokens[i] += generated_tokens(gen)
            thinking[i] += total_thinking_tokens(gen)
            last[i] = replace(gen, sample_index=requests[i].sample_index)
            if gen.ok and not accepted(gen, budget):
                still.append(i)  # a failed generation is not retried: the same request would fail again
        open_rows = still
    return [RejectionResult(g, attempts[i], accepted(g, budget), tokens[i], thinking[i])
            for i, g in enumerate(last) if g is not None]


def run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None:
    """Rejection sampling per budget; a question with no accepted attempt is wrong, whatever it answered."""
    base = config.sample_policy()
    for budget in config.rejection_budgets:
        label = f"rejection:think<={budget}"
        for chunk in work.chunks(work.pending.get(label, [])):
            results = rejection_sample(backend, [request_for(item, config.system) for _, item in chunk], budget,
                                       config.max_attempts, base)
            records: list[SampleRecord] = []
            for (task, item), res in zip(chunk, results, strict=True):
                (record,) = grade_records(task, item, [replace(res.generation, setting=label)], config.grader_timeout)
                if not res.accepted and record.generation.error is None:
                    record = replace(record, correct=False, extracted=None, reason=(
                        f"no attempt ended its thinking within {budget} tokens ({res.attempts} attempts)"))
                records.append(replace(record, generation=replace(record.generation, meta={
                    "method": "rejection", "budget": budget, "attempts": res.attempts, "accepted": res.accepted,
                    "generated_tokens": res.generated_tokens, "thinking_tokens": res.thinking_tokens})))
            work.emit(records)
