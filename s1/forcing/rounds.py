"""Budget forcing in rounds: the one round loop every round-based backend drives.

A round asks the engine to continue a sequence's context until an end of thinking (a stop token or
stop string) or the round's quota; its tokens are fed to the sequence's `ForcingMachine` here, which
decides what is appended (an ignore string, the closer, the cap) before the next round. The loop is a
generator (`rounds`) that yields a `RoundSpec` and receives the engine's `RoundResult`, so the
transformers and vLLM backends run a batch's rounds together (`run_rounds`) and the HTTP client runs
each sample's rounds on its own (`arun_rounds`), through the same code.

A round's tokens may need decoding (a stop string is matched in text): those steps yield text
operations (`s1.forcing.text`) that the drivers answer from a tokenizer or a codec.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from s1.forcing.machine import REPICK, ForcingMachine, Phase
from s1.forcing.policy import SamplingSettings
from s1.forcing.sequence import Sequence
from s1.forcing.text import Decode, Encode, Op, TextSteps
from s1.records import FinishReason


class RoundError(RuntimeError):
    """An engine answered a round with nothing usable (no tokens where it had to sample some)."""


@dataclass(frozen=True)
class RoundStops:
    """Stop strings of each phase: what ends a round in text (multi-token closers and stops)."""

    think: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoundSpec:
    """One round of one sequence, as an engine runs it.

    quota: most tokens the engine may sample (>= 1). stop_ids / stop_strings end the round (the engine
    returns what it sampled, the stop included). ban: ids masked for the first `min_tokens` sampled
    tokens (below the minimum thinking, or right after an ignore string). sampling: the phase's
    settings (penalties included). round: how many rounds the sequence ran before (per-round seeds).
    """

    phase: Phase
    quota: int
    sampling: SamplingSettings
    stop_ids: frozenset[int]
    stop_strings: tuple[str, ...] = ()
    ban: frozenset[int] = frozenset()
    min_tokens: int = 0
    round: int = 0


@dataclass(frozen=True)
class RoundResult:
    """What an engine sampled in a round. `natural_end`: it stopped on a stop it did not put in `ids`
    (a server that strips the stop); `stop_token` names that stop when known."""

    ids: list[int]
    natural_end: bool = False
    stop_token: int | None = None


def next_round(seq: Sequence, stops: RoundStops) -> RoundSpec:
    """The round a sequence runs next; its quota never passes the sequence's engine limit."""
    m = seq.machine
    room = seq.limit - len(seq.emitted)
    if m.phase is Phase.THINK:
        quota, ban, min_tokens = think_quota(m)
        return RoundSpec(Phase.THINK, max(1, min(quota, room)), seq.policy.thinking, m.tokens.end_triggers,
                         stops.think, ban, min_tokens, seq.rounds)
    quota = m.max_answer - m.answer_tokens
    return RoundSpec(Phase.ANSWER, max(1, min(quota, room)), seq.policy.answer_sampling, m.tokens.answer_stops,
                     stops.answer, round=seq.rounds)


def think_quota(m: ForcingMachine) -> tuple[int, frozenset[int], int]:
    """(tokens the next thinking round may generate, ids to ban, for how many of them).

    Below the minimum (suppress mode) the round runs exactly up to it with every end of thinking masked,
    the closer's first token included (a multi-token closer must not begin either); right after an
    ignore string the ends are masked for `min_after_ignore` tokens; otherwise it may run to the budget.
    """
    ban = m.banned()
    to_budget = m.max_thinking - m.thinking_tokens
    if not ban:
        return to_budget, ban, 0
    left = m.ban_left()
    ban = ban | {m.tokens.closer[0]}
    if m.below_min():
        return left, ban, left
    return to_budget, ban, left


Rounds = Generator["RoundSpec | Op", Any, None]


def rounds(seq: Sequence, stops: RoundStops) -> Rounds:
    """The round loop of one sequence: append what is forced, stop at the engine limit, else yield the
    next round and absorb what the engine returns, until the machine is done."""
    m = seq.machine
    while True:
        seq.emitted.extend(m.take_forced())
        if m.done:
            return
        if len(seq.emitted) >= seq.limit:  # a run-away (e.g. a wait-mode minimum never reached) is recorded
            m.finish(FinishReason.LENGTH)
            return
        spec = next_round(seq, stops)
        result = yield spec
        seq.rounds += 1
        yield from absorb(seq, spec, result)


def absorb(seq: Sequence, spec: RoundSpec, result: RoundResult) -> TextSteps[None]:
    """Feed one round's tokens to the machine; what it emits (forced tokens included) joins the sequence."""
    m, out = seq.machine, seq.emitted
    ids, natural, stop = list(result.ids), result.natural_end, result.stop_token
    if len(ids) > spec.quota:  # past its quota a batched row only got padding; a server may overrun
        ids, natural, stop = ids[: spec.quota], False, None
    if spec.stop_strings and ids:
        text = yield Decode(tuple(ids))
        at = find_stop(text, spec.stop_strings)
        if at is not None:  # a stop string (a multi-token closer): strip it at the text level
            kept, residual = yield from split_at_text(ids, at)
            ids = kept + (list((yield Encode(residual))) if residual else [])
            natural, stop = True, None
    ends = m.tokens.end_triggers if spec.phase is Phase.THINK else frozenset()
    for t in ids:
        got = m.feed(t)
        if got == REPICK:  # ignored with an empty string: the next round goes on with the ends masked
            return
        out.append(got)
        if m.done:
            return
        if t in ends:  # replaced by an ignore string, or closed
            out.extend(m.take_forced())
            return
    if natural:
        if spec.phase is Phase.THINK:
            if stop is not None and stop in ends:
                got = m.feed(stop)
                if got != REPICK:
                    out.append(got)
                    out.extend(m.take_forced())
            else:
                out.extend(m.end_thinking())
        elif stop is not None and stop in m.tokens.answer_stops:
            out.append(m.feed(stop))
        else:  # a stop the format does not name (a server's own EOS): recorded as the stop token
            m.finish(FinishReason.STOP)
            if stop is not None:
                out.append(stop)
    elif not ids:
        raise RoundError(f"the engine returned no tokens for a round of up to {spec.quota}")


def find_stop(text: str, stop_strings: tuple[str, ...]) -> int | None:
    """Where the first of `stop_strings` starts in `text`, or None."""
    hits = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
    return min(hits) if hits else None


def split_at_text(ids: list[int], char_index: int) -> TextSteps[tuple[list[int], str]]:
    """Keep the tokens wholly before `char_index`; return them and the text between them and it."""
    lo, hi = 0, len(ids)
    while lo < hi:  # largest j whose decoded prefix fits within char_index characters
        mid = (lo + hi + 1) // 2
        if len((yield Decode(tuple(ids[:mid])))) <= char_index:
            lo = mid
        else:
            hi = mid - 1
    prefix = yield Decode(tuple(ids[:lo]))
    full = yield Decode(tuple(ids))
    return ids[:lo], full[len(prefix):char_index]
