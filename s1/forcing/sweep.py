"""Budget sweeps that think once: one longest trajectory per sample, a forced answer branched per setting.

Under the same seed, the thinking a setting (budget b, k ignores) produces is a prefix of the thinking
of the setting (B >= b, K >= k): both sample the same tokens until the smaller one is capped or keeps a
natural end that the larger one replaces with an ignore string. So a sweep generates the longest
setting once, replays its tokens through each smaller setting's own `ForcingMachine` to find where
that setting parts ways, and generates only the answer from there. Greedy results equal independent
runs token for token (a test); the cost stays close to the single longest run (a benchmark).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from s1.forcing.machine import ForcingMachine, ForcingTokens
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError
from s1.forcing.request import Branch, Request
from s1.forcing.sequence import answer_cap, failed_record
from s1.records import Generation, Kind

SWEPT_FIELDS = ("max_thinking_tokens", "num_ignore")


class BranchingBackend(Protocol):
    """What a sweep needs of a backend (every `s1.backends.Backend` has it)."""

    name: str
    batch_size: int
    context_length: int | None

    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]: ...

    def continue_answers(self, branches: list[Branch]) -> list[Generation]: ...

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens: ...

    def thinking_budget(self, policy: BudgetPolicy, prompt_tokens: int) -> int: ...

    def retain_prefixes(self) -> AbstractContextManager[None]: ...


def relabel(gen: Generation, policy: BudgetPolicy, **changes: object) -> Generation:
    """`gen` as the record of `policy`'s setting (its label and fields)."""
    return replace(gen, setting=policy.label(), **policy.setting().fields(), **changes)


@dataclass(frozen=True)
class SweepResult:
    """Every (request, setting) generation, in `settings` order per request, plus the cost split."""

    generations: list[Generation]
    longest: BudgetPolicy
    think_seconds: float
    branch_seconds: float
    branches: int


def shares_thinking(settings: list[BudgetPolicy]) -> bool:
    """Whether a sweep can think once and branch: under the default semantics a smaller setting's thinking
    is a prefix of a larger one's. A protocol's own rounds (which generate past a cut) and an ignore with
    an empty string (which leaves no token to branch at) do not keep that promise; those settings run
    one by one."""
    return all(p.protocol is None and "" not in (p.ignore_strings or ()) for p in settings)


def longest_setting(settings: list[BudgetPolicy]) -> BudgetPolicy:
    """The setting whose trajectory contains every other's: the largest budget and the most ignores.

    Settings may differ only in `max_thinking_tokens` and `num_ignore`; anything else would change the
    shared thinking, so it is an error naming the field.
    """
    if not settings:
        raise PolicyError("a sweep needs at least one setting")
    base = settings[0]
    for s in settings[1:]:
        for name in base.__dataclass_fields__:
            if name not in SWEPT_FIELDS and getattr(s, name) != getattr(base, name):
                raise PolicyError(
                    f"sweep settings may differ only in {', '.join(SWEPT_FIELDS)}; {name} differs "
                    f"({getattr(base, name)!r} vs {getattr(s, name)!r})"
                )
    budgets = [s.max_thinking_tokens for s in settings]
    budget = AUTO if AUTO in budgets else max(int(b) for b in budgets)
    return base.replace(max_thinking_tokens=budget, num_ignore=max(s.num_ignore for s in settings))


def expand_kinds(gen: Generation) -> list[Kind]:
    """Per-token kinds of a record, from its segments."""
    kinds: list[Kind] = []
    for seg in gen.segments:
        kinds += [Kind(seg.kind)] * seg.tokens
    return kinds


def divergence(ids: list[int], kinds: list[Kind], machine: ForcingMachine) -> list[int] | None:
    """Replay a longer trajectory's thinking through `machine` (a smaller setting, fresh).

    Returns the tokens this setting emits before its answer (the shared prefix, then its own cap or
    closer), leaving `machine` in the answer phase; or None when it never parts ways with the longer
    trajectory (both end thinking at the same point, so the longer record is this setting's too).
    """
    out: list[int] = []
    for token, kind in zip(ids, kinds, strict=False):
        forced = machine.forced()
        if machine.cap_hit:  # this setting's budget runs out here
            return out + machine.take_forced()
        if kind in (Kind.CLOSE, Kind.CAP, Kind.ANSWER, Kind.STOP):
            return None
        if forced is not None or kind is Kind.THINK:  # a shared sampled token, or inside a shared ignore string
            out.append(machine.feed(token))
            continue
        # The longer run replaced a natural end of thinking here; this setting replaces it too while it
        # has ignores left (the same string, as the cycle position is the same), else it closes.
        emitted = machine.feed(machine.tokens.end_token)
        out.append(emitted)
        if emitted != token:
            return out + machine.take_forced()
    return None


def run_sweep(backend: BranchingBackend, requests: list[Request], settings: list[BudgetPolicy],
              labels: list[str] | None = None) -> SweepResult:
    """Generate every request under every setting, thinking once per request.

    Records carry each setting's own label (`labels`, when a setting was resolved from another, e.g. s1's
    `auto`); a request that fails in the longest run fails in every setting (recorded, never dropped).
    Requests go through in chunks of the backend's batch size; a backend that can keep a batch's KV cache
    (`retain_prefixes`) branches its answers from it.
    """
    labels = labels or [p.label() for p in settings]
    longest = longest_setting(settings)
    step = max(1, backend.batch_size)
    ordered: list[Generation] = []
    think_seconds = branch_seconds = 0.0
    n_branches = 0
    for start in range(0, len(requests), step):
        chunk = requests[start : start + step]
        if not shares_thinking(settings):  # each setting on its own
            began = time.perf_counter()
            per_setting = [backend.generate([replace(r, policy=None, setting=label) for r in chunk], policy)
                           for policy, label in zip(settings, labels, strict=True)]
            think_seconds += time.perf_counter() - began
            ordered += [per_setting[j][i] for i in range(len(chunk)) for j in range(len(settings))]
            continue
        with backend.retain_prefixes():
            began = time.perf_counter()
            long_gens = backend.generate([replace(r, policy=None, setting="") for r in chunk], longest)
            think_seconds += time.perf_counter() - began
            by_slot, branches = _plan_branches(backend, chunk, long_gens, settings)
            began = time.perf_counter()
            finished = backend.continue_answers([b for _, b in branches]) if branches else []
            branch_seconds += time.perf_counter() - began
        for (slot, _), gen in zip(branches, finished, strict=True):
            by_slot[slot] = gen
        n_branches += len(branches)
        ordered += [by_slot[i, j] for i in range(len(chunk)) for j in range(len(settings))]
    return SweepResult(ordered, longest, think_seconds, branch_seconds, n_branches)


def _plan_branches(backend: BranchingBackend, requests: list[Request], long_gens: list[Generation],
                   settings: list[BudgetPolicy]) -> tuple[dict[tuple[int, int], Generation],
                                                          list[tuple[tuple[int, int], Branch]]]:
    """Per (request, setting): the longest record itself where the setting never parts ways with it,
    a failure where the setting cannot run, else a branch to finish."""
    by_slot: dict[tuple[int, int], Generation] = {}
    branches: list[tuple[tuple[int, int], Branch]] = []
    for i, (req, gen) in enumerate(zip(requests, long_gens, strict=True)):
        kinds = expand_kinds(gen) if gen.ok else []
        for j, policy in enumerate(settings):
            if not gen.ok:
                by_slot[i, j] = relabel(gen, policy)
                continue
            try:
                budget = backend.thinking_budget(policy, gen.prompt_tokens)
            except PolicyError as exc:
                by_slot[i, j] = failed_record(req, policy, str(exc), gen.backend, gen.prompt)
                continue
            tokens = backend.forcing_tokens(policy)
            try:
                answer = answer_cap(policy, tokens, backend.context_length, gen.prompt_tokens, budget)
            except PolicyError as exc:
                by_slot[i, j] = failed_record(req, policy, str(exc), gen.backend, gen.prompt)
                continue
            machine = ForcingMachine.for_policy(policy, tokens, budget, answer)
            emitted = divergence(gen.token_ids, kinds, machine)
            if emitted is None:
                by_slot[i, j] = relabel(gen, policy, thinking_budget=budget)
            else:
                branch_req = replace(req, policy=None, setting=policy.label())
                branches.append(((i, j), Branch(branch_req, policy, emitted, machine)))
    return by_slot, branches
