"""The multi-round path shared by engine backends (transformers, vLLM).

A round generates until an end of thinking or the round's quota; its tokens are fed to the sequence's
`ForcingMachine` here, which decides what is appended before the context is re-submitted. Keeping
this in one place is what makes every backend's multi-round path produce the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s1.backends.base import Request
from s1.backends.tokens import encode
from s1.budget import BudgetPolicy, ForcingMachine, Kind, PolicyError
from s1.records import Generation, Segment


@dataclass
class InFlight:
    """One request in flight in an engine backend: its prompt, its machine and the tokens emitted so far
    (what `machine_record` turns into a record and, for a streamed request, its `LiveTokens` shows: the
transformers single pass appends at every decode step, multi-round paths every round, vLLM's single
pass when the engine returns). Backends extend it with their
    own state (samplers and KV caches, engine request keys, images)."""

    request: Request
    policy: BudgetPolicy
    prompt: str
    prompt_ids: list[int]
    machine: ForcingMachine
    budget: int
    emitted: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.request.live is not None:  # a streamed request: its readers follow this sequence's tokens
            self.request.live.source = self

    @property
    def context(self) -> list[int]:
        return self.prompt_ids + self.emitted


def think_quota(machine: ForcingMachine, closer_first: int) -> tuple[int, frozenset[int]]:
    """Tokens the next thinking round may generate, and the ids it must ban.

    Below the minimum (suppress mode) the round runs exactly up to it with every end of thinking
    masked, the closer's first token included; otherwise it may run to the budget.
    """
    ban = machine.banned()
    if ban:
        return machine.min_thinking - machine.thinking_tokens, ban | {closer_first}
    return machine.max_thinking - machine.thinking_tokens, ban


def absorb_thinking(machine: ForcingMachine, new: list[int], tokenizer: Any,
                    stop_strings: tuple[str, ...]) -> list[int]:
    """Feed one round's thinking tokens to the machine, up to the first end of thinking; returns the
    tokens the sequence gets (a closer matched in text is stripped, forced tokens appended)."""
    out: list[int] = []
    if stop_strings:
        text = tokenizer.decode(new, skip_special_tokens=False)
        idx = find_stop(text, stop_strings)
        if idx is not None:  # a multi-token closer: strip it at the text level
            kept, residual = split_at_text(tokenizer, new, idx)
            for t in [*kept, *encode(tokenizer, residual)]:
                out.append(machine.feed(t))
            out.extend(machine.end_thinking())
            return out
    for t in new:
        out.append(machine.feed(t))
        if t in machine.tokens.end_triggers:  # replaced by an ignore string, or closed
            out.extend(machine.take_forced())
            return out
    return out


def absorb_answer(machine: ForcingMachine, new: list[int]) -> list[int]:
    """Feed one round's answer tokens until the machine is done; returns the tokens it emitted."""
    out: list[int] = []
    for t in new:
        out.append(machine.feed(t))
        if machine.done:
            break
    return out


def find_stop(text: str, stop_strings: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
    return min(hits) if hits else None


def split_at_text(tokenizer: Any, ids: list[int], char_index: int) -> tuple[list[int], str]:
    """Keep the tokens wholly before `char_index`; return them and the text between them and it."""
    lo, hi = 0, len(ids)
    while lo < hi:  # largest j whose decoded prefix fits within char_index characters
        mid = (lo + hi + 1) // 2
        if len(tokenizer.decode(ids[:mid], skip_special_tokens=False)) <= char_index:
            lo = mid
        else:
            hi = mid - 1
    prefix = tokenizer.decode(ids[:lo], skip_special_tokens=False)
    full = tokenizer.decode(ids, skip_special_tokens=False)
    return ids[:lo], full[len(prefix):char_index]


def segments(tokenizer: Any, ids: list[int], kinds: list[Kind]) -> list[Segment]:
    """Runs of one kind, decoded: what a record shows as thinking / forced / answer parts."""
    out: list[Segment] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or kinds[i] is not kinds[start]:
            out.append(Segment(kinds[start].value, tokenizer.decode(ids[start:i], skip_special_tokens=False),
                               i - start))
            start = i
    return out


def machine_record(tokenizer: Any, fmt: Any, seq: InFlight, backend: str,
                   meta: dict[str, Any] | None = None) -> Generation:
    """The `Generation` of a finished sequence: its emitted ids up to what the machine accounted for
    (a trailing stop token is not text), the text split by the format, and the machine's counts."""
    m = seq.machine
    ids = seq.emitted[: len(m.kinds)]
    kinds = m.kinds[: len(ids)]
    body = ids[:-1] if kinds and kinds[-1] is Kind.STOP else ids
    text = tokenizer.decode(body, skip_special_tokens=False)
    thinking, answer, closed = fmt.split(text)
    return Generation(
        prompt_id=seq.request.id, sample_index=seq.request.sample_index,
        setting=seq.request.setting or seq.policy.label(), prompt=seq.prompt,
        thinking=thinking, answer=answer, text=text,
        thinking_tokens=m.thinking_tokens, thinking_forced_tokens=m.thinking_forced,
        answer_tokens=m.answer_tokens, answer_forced_tokens=m.answer_forced,
        ignores_applied=m.ignores_applied, cap_hit=m.cap_hit, thinking_closed=closed,
        finish_reason=m.finish_reason or "length", wall_time_s=time.perf_counter() - seq.started,
        prompt_tokens=len(seq.prompt_ids), thinking_budget=seq.budget, token_ids=ids,
        segments=segments(tokenizer, ids, kinds), backend=backend, meta=meta or {},
    )


def finish_batch(results: list[Any], batch: list[tuple[int, Any]], run: Callable[[list[Any]], None],
                 failed: Callable[..., Generation], record: Callable[[Any], Generation]) -> None:
    """Run one batch of (slot, sequence) and put each sequence's record in its slot of `results`; an
    engine failure (e.g. out of memory) becomes a failed record for every sequence of the batch, and
    the caller goes on with the next batch."""
    seqs = [s for _, s in batch]
    try:
        run(seqs)
    except (RuntimeError, MemoryError) as exc:
        for i, s in batch:
            results[i] = failed(s.request, s.policy, f"{type(exc).__name__}: {exc}", s.prompt)
        return
    for i, s in batch:
        results[i] = record(s)


def run_requests(requests: list[Any], policy: Any, start: Callable[[Any, Any], Any], batch_size: int,
                 run: Callable[[list[Any]], None], failed: Callable[..., Generation],
                 record: Callable[[Any], Generation]) -> list[Generation]:
    """An engine backend's `generate`: start a sequence per request (one that cannot run, e.g. over the
    context length, becomes a failed record in its place), run them `batch_size` at a time, and return
    one record per request in request order."""
    results: list[Generation | None] = [None] * len(requests)
    ready: list[tuple[int, Any]] = []
    for i, req in enumerate(requests):
        try:
            ready.append((i, start(req, req.policy or policy)))
        except (PolicyError, ValueError) as exc:
            results[i] = failed(req, req.policy or policy, str(exc))
    for first in range(0, len(ready), batch_size):
        finish_batch(results, ready[first : first + batch_size], run, failed, record)
    return [r for r in results if r is not None]
