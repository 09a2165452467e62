"""Protocol presets: the s1 and S1-M papers' evaluation protocols, reproduced as their code runs them.

A preset fixes the forced strings, the budgets, the sampling and the round structure of a reference;
the project's own semantics (`s1.forcing.rounds`) stay the default. A policy with `protocol` set runs
that reference's round loop here, on any backend (the loops are generators over `RoundSpec`s like the
default one), always in rounds: both references generate past points a single pass cannot see (s1 picks
its end marker from the finish reason of a last round that may run past the budget; S1-M cuts each
round's text at `</think>`). `docs/protocols.md` lists every quirk as "reproduced" or "a difference".

- `s1`: simplescaling/s1's lm-evaluation-harness fork (`lm_eval/models/vllm_causallms.py`): the opener
  `<|im_start|>think` and closer `<|im_start|>answer` without newlines; every thinking round may use the
  whole budget B; the ignore string is appended raw and counted; `min_tokens=1` in every round once
  ignores are asked for; the thinking ids are cut to B afterwards; the end marker follows the last round
  (`length`: `[\\n]<|im_start|>answer\\nFinal Answer:`, else `<|im_start|>answer`); the answer may use the
  rest of the context.
- `s1m`: PKU-Alignment/s1-m's MathVista client (`budget_forcing.py`, `eval.py`): the model writes
  `<think>` itself (a first reply without it is returned unforced); each round is cut at its first
  `</think>`, the seven ignore strings cycle; the budget is spent by each reply's re-tokenized length;
  the answer is always forced with `</think>\\nFinal answer: ` and capped at what is left of the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from s1.forcing.formats import S1M_IGNORE_STRINGS, ReasoningFormat
from s1.forcing.machine import Phase
from s1.forcing.policy import AUTO, REST, Budget, BudgetPolicy, SamplingSettings
from s1.forcing.rounds import RoundResult, Rounds, RoundSpec, absorb, find_stop, split_at_text
from s1.forcing.sequence import Sequence
from s1.forcing.text import Decode, Encode
from s1.records import FinishReason, Kind

S1_FORMAT = ReasoningFormat(
    name="s1-lm-eval",
    think_open="<|im_start|>think",
    think_close="<|im_start|>answer",
    cap="\n<|im_start|>answer\nFinal Answer:",
    think_stops=("<|im_start|>", "<|im_end|>"),
    answer_stops=("<|im_end|>",),
    description="the s1 repo's lm-eval fork: <|im_start|>think / <|im_start|>answer, no newlines forced",
)
S1M_FORMAT = ReasoningFormat(
    name="s1m-client",
    think_open="<think>",
    think_close="</think>",
    cap="</think>\nFinal answer: ",
    ignore_strings=S1M_IGNORE_STRINGS,
    description="S1-M's MathVista client: the model writes <think> itself; </think>\\nFinal answer: forced",
    open_in_prompt=False,
)
S1_MAX_GEN_TOKS = 32768  # eval/commands.sh: max_gen_toks=32768 (the s1-32B context)
S1_ANSWER_ROOM = 100  # vllm_causallms.py: "Leave 100 tokens for answer"


@dataclass(frozen=True)
class Protocol:
    """A reference's protocol: its strings, sweep, sampling and the loading settings that decide results."""

    name: str
    reference: str
    format: ReasoningFormat
    budgets: tuple[Budget, ...]
    num_ignore: tuple[int, ...]
    thinking: SamplingSettings
    max_answer_tokens: int | str
    ignore_strings: tuple[str, ...] | None = None
    min_tokens_after_ignore: int = 0
    dtype: str | None = None
    tokenizers: dict[str, str] = field(default_factory=dict)  # model id -> tokenizer (and template) it ran with

    def policy(self, budget: Budget, num_ignore: int = 0, **overrides: Any) -> BudgetPolicy:
        """A policy of this protocol (explicit `overrides` win)."""
        base: dict[str, Any] = dict(
            max_thinking_tokens=budget, num_ignore=num_ignore, ignore_strings=self.ignore_strings,
            max_answer_tokens=self.max_answer_tokens, min_tokens_after_ignore=self.min_tokens_after_ignore,
            thinking=self.thinking, protocol=self.name)
        return BudgetPolicy(**{**base, **overrides})


PROTOCOLS: dict[str, Protocol] = {
    "s1": Protocol(
        name="s1", reference="simplescaling/s1 eval/lm-evaluation-harness (vllm_causallms.py), eval/commands.sh",
        format=S1_FORMAT, budgets=(500, 1000, 2000, 4000, 8000, 16000, AUTO), num_ignore=(0,),
        thinking=SamplingSettings(temperature=0.0), max_answer_tokens=REST, min_tokens_after_ignore=1,
        dtype="float32",
        tokenizers={"simplescaling/s1-32B": "Qwen/Qwen2.5-32B-Instruct",
                    "simplescaling/step-conditional-control": "Qwen/Qwen2.5-32B-Instruct",
                    "simplescaling/token-conditional-control": "Qwen/Qwen2.5-32B-Instruct"},
    ),
    "s1m": Protocol(
        name="s1m",
        reference="PKU-Alignment/s1-m evaluation-test_time_scaling_law/MathVista (budget_forcing.py, eval.py)",
        format=S1M_FORMAT, budgets=(30000,), num_ignore=tuple(range(8)),
        thinking=SamplingSettings(temperature=0.3, top_p=0.9, repetition_penalty=1.2), max_answer_tokens=REST,
        ignore_strings=S1M_IGNORE_STRINGS, dtype="bfloat16",
    ),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; allowed: {', '.join(PROTOCOLS)}") from None


def s1_auto_budget(longest_prompt: int, start_tokens: int, end_tokens: int,
                   max_gen_toks: int = S1_MAX_GEN_TOKS) -> int:
    """s1's `max_tokens_thinking=auto`: max_gen_toks - the longest prompt of the batch - len(start) -
    len(end + "\\nFinal Answer:") - 100 (the prompt measured before the opener is appended)."""
    return max_gen_toks - longest_prompt - start_tokens - end_tokens - S1_ANSWER_ROOM


def protocol_rounds(seq: Sequence) -> Rounds:
    """The round loop of `seq.policy.protocol`."""
    if seq.policy.protocol == "s1":
        yield from _s1_rounds(seq)
    else:
        yield from _s1m_rounds(seq)


# -- s1 ---------------------------------------------------------------------------------------------------
def _strip_stops(ids: list[int], stops: frozenset[int]) -> list[int]:
    """Drop a trailing stop token, as s1 strips `until_thinking` tokens from the end of a round."""
    return ids[:-1] if ids and ids[-1] in stops else ids


def _s1_rounds(seq: Sequence) -> Rounds:
    m, policy = seq.machine, seq.policy
    tokens, budget = m.tokens, seq.budget
    stops = tokens.end_triggers  # <|im_start|> and the EOS, as stop_token_ids
    first_min = 1 if policy.num_ignore else 0  # min_tokens=1 in every round once thinking_n_ignore is given
    acc: list[int] = []  # thinking ids with the ignore strings, as s1 accumulates them (uncut)
    kinds: list[Kind] = []
    length = False
    for r in range(policy.num_ignore + 1):
        room = seq.limit - len(acc)
        spec = RoundSpec(Phase.THINK, max(1, min(budget, room)), policy.thinking, stops,
                         ban=stops if first_min else frozenset(), min_tokens=first_min, round=r)
        seq.emitted = list(acc)
        result: RoundResult = yield spec
        seq.rounds += 1
        ids = list(result.ids) + ([result.stop_token] if result.stop_token is not None else [])
        natural = bool(ids) and ids[-1] in stops or result.natural_end
        if not natural or r == policy.num_ignore:  # the final round, however it ended
            acc += ids
            kinds += [Kind.THINK] * len(ids)
            length = not natural
            break
        kept = _strip_stops(ids, stops)
        ignore = tokens.ignores[m.ignores_applied % len(tokens.ignores)]
        m.ignores_applied += 1
        acc += kept + list(ignore)
        kinds += [Kind.THINK] * len(kept) + [Kind.IGNORE] * len(ignore)
    uncut = yield Decode(tuple(_strip_stops(acc, stops)))
    meta_past = max(0, len(acc) - budget)
    acc, kinds = acc[:budget], kinds[:budget]  # s1 cuts the token ids to the budget; its text stays uncut
    while acc and acc[-1] in stops:
        acc, kinds = acc[:-1], kinds[:-1]
    cap = tokens.cap_plain if uncut.endswith("\n") else tokens.cap_newline  # the newline rule reads the uncut text
    marker = list(cap if length else tokens.closer)
    m.settle([*kinds, *([Kind.CAP if length else Kind.CLOSE] * len(marker))])
    seq.emitted = acc + marker
    m.max_answer = max(1, seq.limit - 1 - len(seq.emitted))  # the answer may use the rest of the context
    if meta_past:
        seq.meta["s1_generated_past_budget"] = meta_past
    yield from _answer(seq)


def _answer(seq: Sequence) -> Rounds:
    """Answer rounds until the machine is done (the default round's absorb, answer phase)."""
    m = seq.machine
    while not m.done:
        seq.emitted.extend(m.take_forced())
        if m.done:
            return
        room = seq.limit - len(seq.emitted)
        if room <= 0:
            m.finish(FinishReason.LENGTH)
            return
        spec = RoundSpec(Phase.ANSWER, max(1, min(m.max_answer - m.answer_tokens, room)), seq.policy.answer_sampling,
                         m.tokens.answer_stops, round=seq.rounds)
        result = yield spec
        seq.rounds += 1
        yield from absorb(seq, spec, result)


# -- S1-M -------------------------------------------------------------------------------------------------
def _s1m_rounds(seq: Sequence) -> Rounds:
    m, policy = seq.machine, seq.policy
    tokens = m.tokens
    stops = tokens.answer_stops  # no stop strings: a reply runs to EOS or its max_completion_tokens
    remaining = seq.budget
    discarded = 0

    def reply(quota: int, r: int) -> Any:
        return RoundSpec(Phase.THINK, max(1, min(quota, seq.limit - len(seq.emitted))), policy.thinking, stops,
                         round=r)

    result: RoundResult = yield reply(remaining, 0)
    seq.rounds += 1
    first = _strip_stops(list(result.ids), stops)
    text = yield Decode(tuple(first))
    if "<think>" not in text:  # S1-M returns a reply without <think> as it is: no forcing at all
        seq.emitted = first
        m.settle([Kind.ANSWER] * len(first))
        m.finish(FinishReason.STOP if len(first) < len(result.ids) or result.natural_end else FinishReason.LENGTH)
        seq.meta["s1m_unforced"] = True
        return
    remaining -= len((yield Encode(text)))  # S1-M spends the budget by each reply's re-tokenized length
    content, kinds = first, [Kind.THINK] * len(first)
    strings = policy.ignore_strings or S1M_IGNORE_STRINGS
    for i in range(policy.num_ignore):
        if remaining <= 0:
            break
        content, kinds, cut = yield from _cut_at_close(content, kinds)
        discarded += cut
        ignore = list((yield Encode(strings[i % len(strings)])))  # appended raw: no space, no newline
        content, kinds = content + ignore, kinds + [Kind.IGNORE] * len(ignore)
        m.ignores_applied += 1
        seq.emitted = content
        result = yield reply(remaining, i + 1)
        seq.rounds += 1
        more = _strip_stops(list(result.ids), stops)
        more_text = yield Decode(tuple(more))
        remaining -= len((yield Encode(more_text)))
        content, kinds = content + more, kinds + [Kind.THINK] * len(more)
    content, kinds, cut = yield from _cut_at_close(content, kinds)
    discarded += cut
    forced = list(tokens.cap_newline)  # "</think>\nFinal answer: "
    seq.emitted = content + forced
    m.settle([*kinds, *([Kind.CAP] * len(forced))])
    seq.meta.update(s1m_counted_tokens=seq.budget - remaining, s1m_discarded_tokens=discarded)
    if remaining <= 0:  # S1-M asks for max_completion_tokens <= 0 here, which its server refuses
        seq.meta["s1m_answer_budget"] = remaining
        m.finish(FinishReason.LENGTH)
        return
    m.max_answer = remaining
    yield from _answer(seq)


def _cut_at_close(content: list[int], kinds: list[Kind]) -> Any:
    """Cut `content` at its first `</think>` (text), as S1-M cuts each reply; returns the kept ids, their
    kinds and how many generated tokens were dropped."""
    text = yield Decode(tuple(content))
    at = find_stop(text, ("</think>",))
    if at is None:
        return content, kinds, 0
    kept, residual = yield from split_at_text(content, at)
    tail = list((yield Encode(residual))) if residual else []
    return kept + tail, kinds[: len(kept)] + [Kind.THINK] * len(tail), len(content) - len(kept)
