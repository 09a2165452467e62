"""Starting a sequence and building its record: the parts of a generation every backend shares.

`open_sequence` resolves the thinking budget, checks that prompt + budget + answer + forced strings
fit the context (one check, one message), sizes the engine limit and builds the machine. `record`
turns a finished sequence into its `Generation`; `replay` rebuilds a machine's account of tokens an
engine produced elsewhere (vLLM's worker), from the ids and the positions where a natural end was
replaced. Backends differ only in how they render a prompt (images) and run tokens.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from s1.forcing.formats import ReasoningFormat
from s1.forcing.machine import REPICK, ForcingMachine, ForcingTokens
from s1.forcing.policy import REST, BudgetPolicy, PolicyError
from s1.forcing.request import Request
from s1.forcing.text import NO_TOKEN, Decode, Encode, RenderChat, TextSteps
from s1.records import FinishReason, Generation, Kind, Segment


def thinking_budget(policy: BudgetPolicy, tokens: ForcingTokens, context_length: int | None,
                    prompt_tokens: int) -> int:
    """`policy`'s thinking budget for a prompt of `prompt_tokens` tokens ("auto": the context left after
    the prompt, the answer and the forced strings)."""
    return policy.resolve_thinking_budget(context_length, prompt_tokens, tokens.forced_reserve(policy))


def answer_cap(policy: BudgetPolicy, tokens: ForcingTokens, context_length: int | None, prompt_tokens: int,
               budget: int) -> int:
    """The answer's cap in tokens: the policy's, or with "rest" what the context leaves after the prompt, the
    thinking budget and the forced strings."""
    if policy.max_answer_tokens != REST:
        return int(policy.max_answer_tokens)
    if context_length is None:
        raise PolicyError("max_answer_tokens='rest' needs the model's context length; give an integer")
    rest = context_length - prompt_tokens - budget - tokens.forced_reserve(policy)
    if rest < 1:
        raise PolicyError(f"max_answer_tokens='rest' leaves no room: prompt ({prompt_tokens} tokens) + "
                          f"max_thinking_tokens ({budget}) + forced ({tokens.forced_reserve(policy)}) fill the "
                          f"context ({context_length})")
    return rest


def engine_limit(policy: BudgetPolicy, tokens: ForcingTokens, budget: int, answer: int) -> int:
    """Most tokens one generation may emit: thinking, every forced string, the answer and its stop.
    A single pass sizes its engine call to it; rounds stop there (a run-away is recorded, not looped)."""
    return budget + tokens.forced_reserve(policy) + answer + 1


def check_fits(policy: BudgetPolicy, tokens: ForcingTokens, context_length: int | None, prompt_tokens: int,
               budget: int, answer: int | None = None) -> None:
    """Refuse a generation that cannot fit the model's context, naming every part and the flag to change."""
    reserve = tokens.forced_reserve(policy)
    answer = answer_cap(policy, tokens, context_length, prompt_tokens, budget) if answer is None else answer
    if context_length and prompt_tokens + budget + reserve + answer > context_length:
        raise PolicyError(
            f"prompt ({prompt_tokens} tokens) + max_thinking_tokens ({budget}) + max_answer_tokens "
            f"({answer}) + forced ({reserve}) exceeds the context length ({context_length}); "
            "lower max_thinking_tokens (or use 'auto') or max_answer_tokens"
        )


@dataclass(kw_only=True, eq=False)
class Sequence:
    """One request in flight: its prompt, budget, machine and the tokens emitted so far (what `record`
    turns into a `Generation` and, for a streamed request, its `LiveTokens` shows). Engine backends
    extend it with their own state (samplers and KV caches, engine request keys, images).

    `prompt_ids` is empty when the prompt's ids are not known here (a chat API without a tokenizer);
    `prompt_tokens` then says what was counted.
    """

    request: Request
    policy: BudgetPolicy
    prompt: str
    prompt_ids: list[int]
    prompt_tokens: int
    machine: ForcingMachine
    budget: int
    limit: int
    emitted: list[int] = field(default_factory=list)
    rounds: int = 0
    started: float = field(default_factory=time.perf_counter)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.request.live is not None:  # a streamed request: its readers follow this sequence's tokens
            self.request.live.source = self

    @property
    def context(self) -> list[int]:
        return self.prompt_ids + self.emitted


def open_sequence(request: Request, policy: BudgetPolicy, tokens: ForcingTokens, context_length: int | None,
                  prompt: str, prompt_ids: list[int], prompt_tokens: int | None = None,
                  kind: type[Sequence] = Sequence, **extra: Any) -> Sequence:
    """A sequence ready to run: budget resolved, context checked, machine built. Raises `PolicyError`
    (naming the numbers) when it cannot run; callers record that as the request's failed record."""
    n = len(prompt_ids) if prompt_tokens is None else prompt_tokens
    budget = thinking_budget(policy, tokens, context_length, n)
    answer = answer_cap(policy, tokens, context_length, n, budget)
    check_fits(policy, tokens, context_length, n, budget, answer)
    return kind(request=request, policy=policy, prompt=prompt, prompt_ids=prompt_ids, prompt_tokens=n,
                machine=ForcingMachine.for_policy(policy, tokens, budget, answer), budget=budget,
                limit=engine_limit(policy, tokens, budget, answer), **extra)


def text_prompt(request: Request, fmt: ReasoningFormat) -> TextSteps[tuple[str, list[int]]]:
    """A text request's prompt and ids: chat messages through the model's template (ending in the
    thinking opener), or a raw prompt with the opener appended and the tokenizer's special tokens."""
    if request.messages is not None:
        prompt = yield RenderChat(fmt, tuple(request.chat() or ()))
        ids = yield Encode(prompt)
    else:
        prompt = fmt.ensure_open(request.prompt or "")
        ids = yield Encode(prompt, special=True)
    return prompt, list(ids)


def record(seq: Sequence, fmt: ReasoningFormat, backend: str) -> TextSteps[Generation]:
    """The `Generation` of a finished sequence: its emitted ids up to what the machine accounted for (a
    trailing stop token is not text), the text split by the format, the machine's counts."""
    m = seq.machine
    ids = seq.emitted[: len(m.kinds)]
    kinds = m.kinds[: len(ids)]
    body = ids[:-1] if kinds and kinds[-1] is Kind.STOP else ids
    text = yield Decode(tuple(body))
    thinking, answer, closed = fmt.split(text)
    segments: list[Segment] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or kinds[i] is not kinds[start]:
            segments.append(Segment(kinds[start], (yield Decode(tuple(ids[start:i]))), i - start))
            start = i
    return Generation(
        prompt_id=seq.request.id, sample_index=seq.request.sample_index,
        setting=seq.request.setting or seq.policy.label(), **seq.policy.setting().fields(), prompt=seq.prompt,
        thinking=thinking, answer=answer, text=text,
        thinking_tokens=m.thinking_tokens, thinking_forced_tokens=m.thinking_forced,
        answer_tokens=m.answer_tokens, answer_forced_tokens=m.answer_forced,
        ignores_applied=m.ignores_applied, cap_hit=m.cap_hit, thinking_closed=closed,
        finish_reason=m.finish_reason or FinishReason.LENGTH, wall_time_s=time.perf_counter() - seq.started,
        prompt_tokens=seq.prompt_tokens, thinking_budget=seq.budget,
        token_ids=[t for t in ids if t != NO_TOKEN], segments=segments, backend=backend, meta=dict(seq.meta),
    )


def failed_record(request: Request, policy: BudgetPolicy, error: str, backend: str, prompt: str = "",
                  wall_time_s: float = 0.0) -> Generation:
    """A request that could not run or whose engine failed: a record in its place, never a gap."""
    return Generation.failed(request.id, error, sample_index=request.sample_index, prompt=prompt,
                             setting=request.setting or policy.label(), backend=backend, wall_time_s=wall_time_s,
                             **policy.setting().fields())


def replay(machine: ForcingMachine, ids: list[int], replaced: Collection[int] = ()) -> list[int]:
    """Feed tokens an engine produced through `machine`. At the positions in `replaced` the engine's own
    machine replaced a proposal (a natural end of thinking: a sampled "Wait" and a forced one are the
    same token), so an end of thinking is fed there. Returns the tokens the machine emits; a
    disagreement with the engine is an error, never hidden."""
    out: list[int] = []
    for pos, token in enumerate(ids):
        if machine.done:
            break
        if pos in replaced:
            got = machine.feed(machine.tokens.end_token)
            if got == REPICK:  # an end ignored with an empty string: the engine picked again
                got = machine.feed(token)
        else:
            forced = machine.forced()
            got = machine.feed(token if forced is None else forced)
        if got != token:
            raise RuntimeError(f"the engine emitted token {token} at output position {pos} where the forcing "
                               f"machine emits {got}; engine and frontend disagree")
        out.append(got)
    return out


def rebuild(request: Request, policy: BudgetPolicy, tokens: ForcingTokens, budget: int, prompt: str,
            prompt_ids: list[int], ids: list[int], replaced: Collection[int] = ()) -> Sequence:
    """A finished sequence rebuilt from the tokens an engine produced elsewhere (a server that cannot
    report its machine's state) and the positions where a natural end was replaced; `record` then
    builds its `Generation`. Raises when the ids cannot be what `policy` makes (never a guess)."""
    answer = int(policy.max_answer_tokens) if policy.max_answer_tokens != REST else len(ids)
    machine = ForcingMachine.for_policy(policy, tokens, budget, answer)
    seq = Sequence(request=request, policy=policy, prompt=prompt, prompt_ids=prompt_ids, prompt_tokens=len(prompt_ids),
                   machine=machine, budget=budget, limit=engine_limit(policy, tokens, budget, answer))
    seq.emitted = replay(machine, ids, replaced)
    if not machine.done:
        machine.finish(FinishReason.LENGTH)
    return seq
