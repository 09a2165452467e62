"""Budget forcing: the policy a user asks for and the per-sequence machine that enforces it.

Pure Python over token ids: no model, no tokenizer, no I/O. Every backend (the transformers logits
processor, the vLLM logits processor, the multi-round HTTP loop) drives this one machine, which is
what makes them agree token for token.

Counting rule (as in the s1 repo): the thinking budget counts *sampled* thinking tokens. Forced
tokens (ignore strings, the closer, the cap) are counted separately.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

AUTO = "auto"
MinThinkingMode = Literal["suppress", "wait"]
MIN_THINKING_MODES: tuple[str, ...] = ("suppress", "wait")


class PolicyError(ValueError):
    """A budget policy or sampling setting is out of range; the message names the field."""


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise PolicyError(f"{name} must be an integer >= {minimum}, got {value}")


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling for one phase. temperature 0 means greedy; top_k 0 means no top-k cut."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
            raise PolicyError(f"temperature must be a number >= 0, got {self.temperature!r}")
        if self.temperature < 0:
            raise PolicyError(f"temperature must be >= 0, got {self.temperature}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1:
            raise PolicyError(f"top_p must be in (0, 1], got {self.top_p!r}")
        _check_int("top_k", self.top_k, 0)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class BudgetPolicy:
    """What the user asks of one generation; validated on construction, immutable.

    max_thinking_tokens: sampled thinking tokens before the cap is forced; an int >= 0 or "auto"
        (the context length minus the prompt minus the answer reserve, resolved by the backend).
    min_thinking_tokens: below it a natural end of thinking is suppressed ("suppress": the closer and
        stop tokens are masked) or turned into an ignore string ("wait").
    num_ignore: how many natural ends are replaced by an ignore string before the closer is allowed.
    ignore_strings: the string(s) appended, cycling in order; None uses the format's default.
    max_answer_tokens: sampled answer tokens before the answer is cut (finish reason "length").
    thinking / answer: sampling settings per phase; answer defaults to thinking's.
    """

    max_thinking_tokens: int | Literal["auto"] = AUTO
    min_thinking_tokens: int = 0
    min_thinking_mode: MinThinkingMode = "suppress"
    num_ignore: int = 0
    ignore_strings: tuple[str, ...] | None = None
    max_answer_tokens: int = 1024
    thinking: SamplingSettings = field(default_factory=SamplingSettings)
    answer: SamplingSettings | None = None

    def __post_init__(self) -> None:
        if self.max_thinking_tokens != AUTO:
            try:
                _check_int("max_thinking_tokens", self.max_thinking_tokens, 0)
            except PolicyError:
                raise PolicyError(
                    f"max_thinking_tokens must be an integer >= 0 or 'auto', got {self.max_thinking_tokens!r}"
                ) from None
        _check_int("min_thinking_tokens", self.min_thinking_tokens, 0)
        if self.max_thinking_tokens != AUTO and self.min_thinking_tokens > self.max_thinking_tokens:
            raise PolicyError(
                f"min_thinking_tokens ({self.min_thinking_tokens}) must be <= max_thinking_tokens "
                f"({self.max_thinking_tokens})"
            )
        if self.min_thinking_mode not in MIN_THINKING_MODES:
            raise PolicyError(
                f"min_thinking_mode must be one of {', '.join(MIN_THINKING_MODES)}, got {self.min_thinking_mode!r}"
            )
        _check_int("num_ignore", self.num_ignore, 0)
        _check_int("max_answer_tokens", self.max_answer_tokens, 1)
        if self.ignore_strings is not None:
            if isinstance(self.ignore_strings, str):
                object.__setattr__(self, "ignore_strings", (self.ignore_strings,))
            else:
                object.__setattr__(self, "ignore_strings", tuple(self.ignore_strings))
            if not self.ignore_strings:
                raise PolicyError("ignore_strings must hold at least one string (or be None for the default)")
            for s in self.ignore_strings:
                if not isinstance(s, str) or not s:
                    raise PolicyError(f"ignore_strings must be non-empty strings, got {s!r}")
        if not isinstance(self.thinking, SamplingSettings):
            raise PolicyError("thinking must be a SamplingSettings")
        if self.answer is not None and not isinstance(self.answer, SamplingSettings):
            raise PolicyError("answer must be a SamplingSettings or None")

    @property
    def answer_sampling(self) -> SamplingSettings:
        return self.answer if self.answer is not None else self.thinking

    def resolve_thinking_budget(self, context_length: int | None, prompt_tokens: int, reserve: int = 0) -> int:
        """The thinking budget in tokens for one prompt; "auto" needs the context length.

        `reserve` is room the backend keeps for forced strings (cap, closer, ignore strings).
        """
        if self.max_thinking_tokens != AUTO:
            return int(self.max_thinking_tokens)
        if context_length is None:
            raise PolicyError("max_thinking_tokens='auto' needs the model's context length; give an integer")
        budget = context_length - prompt_tokens - self.max_answer_tokens - reserve
        if budget < self.min_thinking_tokens:
            raise PolicyError(
                f"max_thinking_tokens='auto' leaves {budget} tokens (context {context_length} - prompt "
                f"{prompt_tokens} - max_answer_tokens {self.max_answer_tokens} - forced {reserve}); "
                f"that is below min_thinking_tokens ({self.min_thinking_tokens}): shorten the prompt or "
                "lower max_answer_tokens"
            )
        return budget

    def label(self) -> str:
        """A short, stable name for this setting in reports and run stores."""
        parts = [f"think<={self.max_thinking_tokens}"]
        if self.min_thinking_tokens:
            parts.append(f"min{self.min_thinking_tokens}:{self.min_thinking_mode}")
        if self.num_ignore:
            parts.append(f"ignore{self.num_ignore}")
        return ",".join(parts)

    def replace(self, **changes: Any) -> BudgetPolicy:
        return replace(self, **changes)


@dataclass(frozen=True)
class ForcingTokens:
    """A format's strings as token ids of one tokenizer: what the machine forces and watches for.

    end_triggers: single tokens that mean "thinking wants to end" (the closer's first token, the
        format's stop tokens, EOS).
    closer: the closer's ids, forced on a natural end (its first id is kept if the model sampled it).
    cap_newline / cap_plain: the cap's ids with and without its leading newline.
    ignores: each ignore string's ids, used in a cycle.
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
    newline_tokens: frozenset[int] = frozenset()
    opener_ends_newline: bool = True

    def __post_init__(self) -> None:
        if not self.closer or not self.cap_newline or not self.cap_plain:
            raise ValueError("closer and cap must encode to at least one token")
        if not self.ignores or any(not ids for ids in self.ignores):
            raise ValueError("every ignore string must encode to at least one token")
        if not self.end_triggers:
            raise ValueError("end_triggers must not be empty")

    def forced_reserve(self, policy: BudgetPolicy) -> int:
        """Upper bound on forced tokens one generation can add (for sizing engine limits)."""
        longest_ignore = max(len(ids) for ids in self.ignores)
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


class Kind(enum.StrEnum):
    """What each emitted token is, so records can mark the forced parts."""

    THINK = "think"  # sampled thinking
    IGNORE = "ignore"  # forced ignore string
    CLOSE = "close"  # the closer (first token may be sampled)
    CAP = "cap"  # forced cap string
    ANSWER = "answer"  # sampled answer
    STOP = "stop"  # the token that ended the generation (sampled stop or forced end)


@dataclass
class ForcingMachine:
    """Per-sequence state machine. Each step: `forced()` says whether the next token is fixed; if not,
    the backend samples with `banned()` masked; then `feed(token)` returns the token to emit.
    """

    tokens: ForcingTokens
    max_thinking: int
    min_thinking: int = 0
    min_mode: str = "suppress"
    num_ignore: int = 0
    max_answer: int = 1024
    phase: Phase = Phase.THINK
    thinking_tokens: int = 0
    thinking_forced: int = 0
    answer_tokens: int = 0
    answer_forced: int = 0
    ignores_applied: int = 0
    cap_hit: bool = False
    finish_reason: str | None = None
    kinds: list[Kind] = field(default_factory=list)
    _rounds_used: int = 0
    _queue: deque[int] = field(default_factory=deque)
    _queue_kind: Kind = Kind.THINK
    _ends_newline: bool = True

    @classmethod
    def for_policy(cls, policy: BudgetPolicy, tokens: ForcingTokens, max_thinking: int) -> ForcingMachine:
        """A machine for one sequence; `max_thinking` is the policy's budget, already resolved."""
        return cls(
            tokens=tokens,
            max_thinking=max_thinking,
            min_thinking=policy.min_thinking_tokens,
            min_mode=policy.min_thinking_mode,
            num_ignore=policy.num_ignore,
            max_answer=policy.max_answer_tokens,
            _ends_newline=tokens.opener_ends_newline,
        )

    # -- queries -------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def forced(self) -> int | None:
        """The token that must come next, or None when the model may sample."""
        if self._queue:
            return self._queue[0]
        if self.phase is Phase.THINK and self.thinking_tokens >= self.max_thinking:
            self.cap_hit = True
            cap = self.tokens.cap_plain if self._ends_newline else self.tokens.cap_newline
            self._enqueue(cap, Kind.CAP)
            return self._queue[0]
        if self.phase is Phase.ANSWER and self.answer_tokens >= self.max_answer:
            self.finish("length")
            return self.tokens.end_token
        if self.phase is Phase.DONE:
            return self.tokens.end_token
        return None

    def banned(self) -> frozenset[int]:
        """Tokens to mask before sampling: ends of thinking while the minimum is suppressed."""
        if (
            self.phase is Phase.THINK
            and self.min_mode == "suppress"
            and self.thinking_tokens < self.min_thinking
        ):
            return self.tokens.end_triggers
        return frozenset()

    # -- transitions ---------------------------------------------------------------------------
    def feed(self, token: int) -> int:
        """Advance by one step. `token` is the forced token or the sampled proposal; the return value
        is what the sequence actually gets (a proposal that ends thinking may be replaced)."""
        if self._queue:
            return self._pop_forced(token)
        if self.phase is Phase.DONE:
            return self.tokens.end_token
        if self.phase is Phase.ANSWER:
            if token in self.tokens.answer_stops:
                self.finish("stop")
            else:
                self.answer_tokens += 1
                self.kinds.append(Kind.ANSWER)
            return token
        # THINK
        if token not in self.tokens.end_triggers:
            self.thinking_tokens += 1
            self._ends_newline = token in self.tokens.newline_tokens
            self.kinds.append(Kind.THINK)
            return token
        return self._natural_end(token)

    def end_thinking(self) -> list[int]:
        """A natural end found outside the token stream (a multi-token closer matched in text by a
        multi-round backend, which already stripped it). Returns the tokens to append."""
        if self.phase is not Phase.THINK or self._queue:
            raise RuntimeError("end_thinking() is only valid while thinking with nothing forced")
        first = self._natural_end(None)
        return [first, *self.take_forced()]

    def take_forced(self) -> list[int]:
        """Emit every token that is forced right now (for multi-round backends, which append forced
        text between rounds instead of decoding it step by step)."""
        out: list[int] = []
        while not self.done:
            token = self.forced()
            if token is None:
                break
            out.append(self.feed(token))
        return out

    def _natural_end(self, token: int | None) -> int:
        below_min = self.thinking_tokens < self.min_thinking
        if below_min or self._rounds_used < self.num_ignore:
            if not below_min:
                self._rounds_used += 1
            ids = self.tokens.ignores[self.ignores_applied % len(self.tokens.ignores)]
            self.ignores_applied += 1
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

    def finish(self, reason: str) -> None:
        """End the generation (an answer stop, the answer budget, or an engine limit)."""
        if self.phase is not Phase.DONE:
            self.phase = Phase.DONE
            self.finish_reason = reason
            self.kinds.append(Kind.STOP)
