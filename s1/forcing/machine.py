"""The per-sequence forcing machine: pure Python over token ids, no model, no tokenizer, no I/O.

Every backend (the transformers and vLLM logits processors, the round loop of `s1.forcing.rounds`)
drives this one machine, which is what makes them agree token for token. The inner loop of any
engine reads the same:

    token = m.forced()              # a forced token, or None
    if token is None:
        token = sample(mask=m.banned())
    emitted = m.feed(token)         # a natural end of thinking may be replaced

Counting rule (the s1 repo's): the thinking budget counts *sampled* thinking tokens. Forced tokens
(ignore strings, the closer, the cap) are counted separately.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from s1.records import FinishReason, Kind

REPICK = -2
"""What `feed` returns when a natural end was ignored with an empty ignore string (s1's "no string"
ablation): nothing is emitted, and the engine picks again with the ends of thinking masked."""


@dataclass(frozen=True)
class ForcingTokens:
    """A format's strings as token ids of one tokenizer: what the machine forces and watches for.

    end_triggers: single tokens that mean "thinking wants to end" (the closer's first token, the
        format's stop tokens, EOS).
    closer: the closer's ids, forced on a natural end (its first id is kept if the model sampled it).
    cap_newline / cap_plain: the cap's ids with and without its leading newline.
    ignores: each ignore string's ids, used in a cycle; an empty one (s1's ablation) appends nothing.
    answer_stops: tokens that end the answer; end_token is forced when the answer budget runs out.
    newline_tokens: ids whose text ends with a newline, to pick the cap variant.
    opener_ends_newline: whether the prompt's thinking opener ends with a newline.
    """

    end_triggers: frozenset[int]
    closer: tuple[int, ...]
    cap_newline: tuple[int, ...]
    cap_plain: tuple[int, ...]
    ignores: tuple[tuple[int, ...], ...]
    answer_stops: frozenset[int]
    end_token: int
    newline_tokens: Any = frozenset()  # a frozenset, or any container that answers `in` (learned texts)
    opener_ends_newline: bool = True

    def __post_init__(self) -> None:
        if not self.closer or not self.cap_newline or not self.cap_plain:
            raise ValueError("closer and cap must encode to at least one token")
        if not self.ignores:
            raise ValueError("give at least one ignore string")
        if not self.end_triggers:
            raise ValueError("end_triggers must not be empty")

    def forced_reserve(self, policy: Any) -> int:
        """Upper bound on forced tokens one generation can add (for sizing engine limits)."""
        longest_ignore = max(len(ids) for ids in self.ignores) or 1
        extra_for_min = policy.min_thinking_tokens if policy.min_thinking_mode == "wait" else 0
        return (
            (policy.num_ignore + extra_for_min) * longest_ignore
            + max(len(self.closer), len(self.cap_newline), len(self.cap_plain))
            + 1
        )


class Phase(enum.Enum):
    THINK = "think"
    ANSWER = "answer"
    DONE = "done"


@dataclass(frozen=True)
class MachineState:
    """Everything a `ForcingMachine` changes as it runs, for `snapshot()` / `restore()` (an engine that
    may discard the token it just fed, e.g. vLLM on a partial prefill, takes it back this way)."""

    scalars: tuple[tuple[str, Any], ...]
    kinds: int
    queue: tuple[int, ...]


@dataclass
class ForcingMachine:
    """Per-sequence state machine (see the module docstring).

    min_after_ignore: sampled tokens after each ignore string before thinking may end again (the s1
    repo's `min_tokens=1` in every round after an ignore); below it the ends of thinking are masked.
    """

    tokens: ForcingTokens
    max_thinking: int
    min_thinking: int = 0
    min_mode: str = "suppress"
    num_ignore: int = 0
    max_answer: int = 1024
    min_after_ignore: int = 0
    phase: Phase = Phase.THINK
    thinking_tokens: int = 0
    thinking_forced: int = 0
    answer_tokens: int = 0
    answer_forced: int = 0
    ignores_applied: int = 0
    cap_hit: bool = False
    finish_reason: FinishReason | None = None
    kinds: list[Kind] = field(default_factory=list)
    _rounds_used: int = 0
    _since_ignore: int = 0
    _queue: deque[int] = field(default_factory=deque)
    _queue_kind: Kind = Kind.THINK
    _ends_newline: bool = True

    @classmethod
    def for_policy(cls, policy: Any, tokens: ForcingTokens, max_thinking: int,
                   max_answer: int | None = None) -> ForcingMachine:
        """A machine for one sequence; `max_thinking` is the policy's budget and `max_answer` its answer cap,
        already resolved (the answer cap defaults to the policy's, which must then be an integer)."""
        return cls(
            tokens=tokens,
            max_thinking=max_thinking,
            min_thinking=policy.min_thinking_tokens,
            min_mode=policy.min_thinking_mode,
            num_ignore=policy.num_ignore,
            max_answer=int(policy.max_answer_tokens) if max_answer is None else max_answer,
            min_after_ignore=policy.min_tokens_after_ignore,
            _ends_newline=tokens.opener_ends_newline,
        )

    # -- queries (never change the machine) ---------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def peek(self) -> int | None:
        """The token that must come next, or None when the model may sample; changes nothing."""
        if self._queue:
            return self._queue[0]
        if self.phase is Phase.THINK and self.thinking_tokens >= self.max_thinking:
            return self._cap()[0]
        if self.phase is Phase.ANSWER and self.answer_tokens >= self.max_answer or self.phase is Phase.DONE:
            return self.tokens.end_token
        return None

    def banned(self) -> frozenset[int]:
        """Tokens to mask before sampling: the ends of thinking while the minimum is suppressed, or
        right after an ignore string (`min_after_ignore`)."""
        return self.tokens.end_triggers if self.ban_left() else frozenset()

    def ban_left(self) -> int:
        """For how many more sampled tokens `banned()` holds (0: nothing is banned now)."""
        if self.phase is not Phase.THINK or self._queue:
            return 0
        if self.below_min():
            return self.min_thinking - self.thinking_tokens
        if self.ignores_applied and self._since_ignore < self.min_after_ignore:
            return self.min_after_ignore - self._since_ignore
        return 0

    def below_min(self) -> bool:
        """Below the minimum thinking in suppress mode (ends of thinking are masked until it is reached)."""
        return self.min_mode == "suppress" and self.thinking_tokens < self.min_thinking

    def snapshot(self) -> MachineState:
        names = [f.name for f in fields(self) if f.name not in ("tokens", "kinds", "_queue")]
        return MachineState(tuple((n, getattr(self, n)) for n in names), len(self.kinds), tuple(self._queue))

    # -- transitions ---------------------------------------------------------------------------------
    def restore(self, state: MachineState) -> None:
        """Go back to a `snapshot()` taken earlier on this machine."""
        for name, value in state.scalars:
            setattr(self, name, value)
        del self.kinds[state.kinds :]
        self._queue = deque(state.queue)

    def forced(self) -> int | None:
        """The token that must come next, or None when the model may sample. Commits what falls due
        now: the cap once the budget is spent, the end (finish reason `length`) once the answer is."""
        if self._queue:
            return self._queue[0]
        if self.phase is Phase.THINK and self.thinking_tokens >= self.max_thinking:
            self.cap_hit = True
            self._enqueue(self._cap(), Kind.CAP)
            return self._queue[0]
        if self.phase is Phase.ANSWER and self.answer_tokens >= self.max_answer:
            self.finish(FinishReason.LENGTH)
            return self.tokens.end_token
        if self.phase is Phase.DONE:
            return self.tokens.end_token
        return None

    def feed(self, token: int) -> int:
        """Advance by one step. `token` is the forced token or the sampled proposal; the return value
        is what the sequence actually gets (a proposal that ends thinking may be replaced), or `REPICK`:
        the end was ignored with an empty string, so nothing is emitted and the engine picks again (the
        ends are then masked by `banned()`)."""
        if self._queue:
            return self._pop_forced(token)
        if self.phase is Phase.DONE:
            return self.tokens.end_token
        if self.phase is Phase.ANSWER:
            if token in self.tokens.answer_stops:
                self.finish(FinishReason.STOP)
            else:
                self.answer_tokens += 1
                self.kinds.append(Kind.ANSWER)
            return token
        # THINK
        if token not in self.tokens.end_triggers:
            self.thinking_tokens += 1
            self._since_ignore += 1
            self._ends_newline = token in self.tokens.newline_tokens
            self.kinds.append(Kind.THINK)
            return token
        return self._natural_end(token)

    def end_thinking(self) -> list[int]:
        """A natural end found outside the token stream (a multi-token closer matched in text, which the
        caller already stripped, or a stop the engine did not return). Returns the tokens to append."""
        if self.phase is not Phase.THINK or self._queue:
            raise RuntimeError("end_thinking() is only valid while thinking with nothing forced")
        first = self._natural_end(None)
        return [] if first == REPICK else [first, *self.take_forced()]

    def take_forced(self) -> list[int]:
        """Emit every token that is forced right now (round-based callers append forced text between
        rounds instead of decoding it step by step)."""
        out: list[int] = []
        while not self.done:
            token = self.forced()
            if token is None:
                break
            out.append(self.feed(token))
        return out

    def settle(self, kinds: list[Kind]) -> None:
        """Take a protocol loop's account of the tokens it emitted (`s1.forcing.protocols`): their kinds, the
        counts they imply, and the answer phase once the closer or the cap was forced."""
        self.kinds[:] = kinds
        self.thinking_tokens, self.thinking_forced = kinds.count(Kind.THINK), kinds.count(Kind.IGNORE)
        self.answer_forced = kinds.count(Kind.CLOSE) + kinds.count(Kind.CAP)
        self.answer_tokens = kinds.count(Kind.ANSWER)
        self.cap_hit = self.cap_hit or Kind.CAP in kinds
        if kinds and kinds[-1] in (Kind.CLOSE, Kind.CAP):
            self.phase = Phase.ANSWER

    def finish(self, reason: FinishReason | str) -> None:
        """End the generation (an answer stop, the answer budget, or an engine limit)."""
        if self.phase is not Phase.DONE:
            self.phase = Phase.DONE
            self.finish_reason = FinishReason(reason)
            self.kinds.append(Kind.STOP)

    # -- internals -----------------------------------------------------------------------------------
    def _cap(self) -> tuple[int, ...]:
        return self.tokens.cap_plain if self._ends_newline else self.tokens.cap_newline

    def _natural_end(self, token: int | None) -> int:
        below_min = self.thinking_tokens < self.min_thinking
        if below_min or self._rounds_used < self.num_ignore:
            if not below_min:
                self._rounds_used += 1
            ids = self.tokens.ignores[self.ignores_applied % len(self.tokens.ignores)]
            self.ignores_applied += 1
            self._since_ignore = 0
            if not ids:
                return REPICK
            self._enqueue(ids, Kind.IGNORE)
            return self._pop_forced(ids[0])
        closer = self.tokens.closer
        if token == closer[0]:
            # The model chose the closer itself: keep its token, force the rest.
            self.answer_forced += 1
            self.kinds.append(Kind.CLOSE)
            if len(closer) > 1:
                self._enqueue(closer[1:], Kind.CLOSE)
            else:
                self.phase = Phase.ANSWER
            return token
        self._enqueue(closer, Kind.CLOSE)
        return self._pop_forced(closer[0])

    def _enqueue(self, ids: tuple[int, ...], kind: Kind) -> None:
        self._queue.extend(ids)
        self._queue_kind = kind

    def _pop_forced(self, token: int) -> int:
        expected = self._queue.popleft()
        if token != expected:
            raise RuntimeError(f"backend fed token {token} while {expected} was forced")
        kind = self._queue_kind
        self.kinds.append(kind)
        if kind is Kind.IGNORE:
            self.thinking_forced += 1
            self._ends_newline = token in self.tokens.newline_tokens
        else:
            self.answer_forced += 1
        if not self._queue and kind in (Kind.CLOSE, Kind.CAP):
            self.phase = Phase.ANSWER
        return token
