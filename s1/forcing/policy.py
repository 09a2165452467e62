"""What a user asks of one generation: the budget policy and each phase's sampling settings.

Validated on construction, immutable, plain values: every backend and the server read the same
objects, so a bad value is refused once, with one message naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from s1.records import Setting

AUTO = "auto"
REST = "rest"  # an answer cap: whatever the context leaves after the prompt, the thinking and the forced strings
Budget = int | str  # a thinking budget: an int, or "auto"
PROTOCOLS: tuple[str, ...] = ("s1", "s1m")
MinThinkingMode = Literal["suppress", "wait"]
MIN_THINKING_MODES: tuple[str, ...] = ("suppress", "wait")


class PolicyError(ValueError):
    """A budget policy or sampling setting is out of range; the message names the field."""


def check_int(name: str, value: Any, minimum: int) -> None:
    """`value` is an int (not a bool) >= `minimum`, else a `PolicyError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise PolicyError(f"{name} must be an integer >= {minimum}, got {value}")


def check_number(name: str, value: Any, low: float, high: float | None = None, strict: bool = False) -> None:
    """`value` is a real number (not a bool) >= `low` (> with `strict`) and <= `high`, else a `PolicyError`."""
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    ok = ok and (value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        span = f"> {low}" if strict else f">= {low}"
        if high is not None:
            span = f"in [{low}, {high}]"
        raise PolicyError(f"{name} must be a number {span}, got {value!r}")


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling for one phase. temperature 0 means greedy; top_k 0 means no top-k cut.

    Penalties follow the usual definitions, applied to the logits before the choice (greedy included):
    `repetition_penalty` (transformers' formula: a seen token's logit is divided by it when positive,
    multiplied when negative; over the prompt and the output), `presence_penalty` and
    `frequency_penalty` (OpenAI's: subtracted once per seen token / per occurrence, over the output).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def __post_init__(self) -> None:
        check_number("temperature", self.temperature, 0)
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1:
            raise PolicyError(f"top_p must be in (0, 1], got {self.top_p!r}")
        check_int("top_k", self.top_k, 0)
        if self.seed is not None:
            check_int("seed", self.seed, 0)
        check_number("repetition_penalty", self.repetition_penalty, 0, strict=True)
        check_number("presence_penalty", self.presence_penalty, -2, 2)
        check_number("frequency_penalty", self.frequency_penalty, -2, 2)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def penalized(self) -> bool:
        """Whether any penalty changes the logits (the sampler then needs the sequence's tokens)."""
        return self.repetition_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0


@dataclass(frozen=True)
class BudgetPolicy:
    """What the user asks of one generation; validated on construction, immutable.

    max_thinking_tokens: sampled thinking tokens before the cap is forced; an int >= 0 or "auto"
        (the context length minus the prompt minus the answer reserve, resolved per prompt).
    min_thinking_tokens: below it a natural end of thinking is suppressed ("suppress": the closer and
        stop tokens are masked) or turned into an ignore string ("wait").
    num_ignore: how many natural ends are replaced by an ignore string before the closer is allowed.
    ignore_strings: the string(s) appended, cycling in order; None uses the format's default. An empty
        string appends nothing (s1's ablation): the end is dropped and the model goes on, which needs
        `min_tokens_after_ignore` >= 1 so it does not stop again at once.
    max_answer_tokens: sampled answer tokens before the answer is cut (finish reason "length"), or
        "rest": whatever the context leaves (needs an integer thinking budget).
    min_tokens_after_ignore: sampled thinking tokens after each ignore string before thinking may end
        again (the s1 repo's `min_tokens=1` in every round after an ignore; 0: it may end at once).
    thinking / answer: sampling settings per phase; answer defaults to thinking's.
    protocol: run a reference's own round loop instead of the default semantics: "s1" (the s1 repo's
        lm-evaluation-harness fork) or "s1m" (S1-M's MathVista client); see `s1.forcing.protocols`.
    """

    max_thinking_tokens: int | Literal["auto"] = AUTO
    min_thinking_tokens: int = 0
    min_thinking_mode: MinThinkingMode = "suppress"
    num_ignore: int = 0
    ignore_strings: tuple[str, ...] | None = None
    max_answer_tokens: int | Literal["rest"] = 1024
    min_tokens_after_ignore: int = 0
    thinking: SamplingSettings = field(default_factory=SamplingSettings)
    answer: SamplingSettings | None = None
    protocol: str | None = None

    def __post_init__(self) -> None:
        if self.max_thinking_tokens != AUTO:
            try:
                check_int("max_thinking_tokens", self.max_thinking_tokens, 0)
            except PolicyError:
                raise PolicyError(
                    f"max_thinking_tokens must be an integer >= 0 or 'auto', got {self.max_thinking_tokens!r}"
                ) from None
        check_int("min_thinking_tokens", self.min_thinking_tokens, 0)
        if self.max_thinking_tokens != AUTO and self.min_thinking_tokens > self.max_thinking_tokens:
            raise PolicyError(
                f"min_thinking_tokens ({self.min_thinking_tokens}) must be <= max_thinking_tokens "
                f"({self.max_thinking_tokens})"
            )
        if self.min_thinking_mode not in MIN_THINKING_MODES:
            raise PolicyError(
                f"min_thinking_mode must be one of {', '.join(MIN_THINKING_MODES)}, got {self.min_thinking_mode!r}"
            )
        check_int("num_ignore", self.num_ignore, 0)
        if self.max_answer_tokens == REST:
            if self.max_thinking_tokens == AUTO and self.protocol != "s1":  # s1's auto has its own formula
                raise PolicyError("max_answer_tokens='rest' needs an integer max_thinking_tokens ('auto' divides the "
                                  "context between thinking and answer)")
        else:
            try:
                check_int("max_answer_tokens", self.max_answer_tokens, 1)
            except PolicyError:
                raise PolicyError(f"max_answer_tokens must be an integer >= 1 or 'rest', got "
                                  f"{self.max_answer_tokens!r}") from None
        check_int("min_tokens_after_ignore", self.min_tokens_after_ignore, 0)
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise PolicyError(f"protocol must be one of {', '.join(PROTOCOLS)} (or None), got {self.protocol!r}")
        if self.ignore_strings is not None:
            if isinstance(self.ignore_strings, str):
                object.__setattr__(self, "ignore_strings", (self.ignore_strings,))
            else:
                object.__setattr__(self, "ignore_strings", tuple(self.ignore_strings))
            if not self.ignore_strings:
                raise PolicyError("ignore_strings must hold at least one string (or be None for the default); "
                                  "[\"\"] ignores the end with no string")
            for s in self.ignore_strings:
                if not isinstance(s, str):
                    raise PolicyError(f"ignore_strings must be strings, got {s!r}")
            if "" in self.ignore_strings and self.min_tokens_after_ignore < 1:
                raise PolicyError("ignore_strings: an empty string needs min_tokens_after_ignore >= 1 (else the model "
                                  "stops again at once, as s1's ablation prevents with min_tokens=1)")
        if not isinstance(self.thinking, SamplingSettings):
            raise PolicyError("thinking must be a SamplingSettings")
        if self.answer is not None and not isinstance(self.answer, SamplingSettings):
            raise PolicyError("answer must be a SamplingSettings or None")

    @property
    def answer_sampling(self) -> SamplingSettings:
        return self.answer if self.answer is not None else self.thinking

    def resolve_thinking_budget(self, context_length: int | None, prompt_tokens: int, reserve: int = 0) -> int:
        """The thinking budget in tokens for one prompt; "auto" needs the context length.

        `reserve` is room kept for forced strings (cap, closer, ignore strings).
        """
        if self.max_thinking_tokens != AUTO:
            return int(self.max_thinking_tokens)
        if context_length is None:
            raise PolicyError("max_thinking_tokens='auto' needs the model's context length; give an integer")
        if self.max_answer_tokens == REST:  # only s1's protocol allows it, and resolves its own auto first
            raise PolicyError("max_thinking_tokens='auto' with max_answer_tokens='rest' must be resolved by the "
                              "protocol (s1's formula) before a sequence starts")
        answer = int(self.max_answer_tokens)
        budget = context_length - prompt_tokens - answer - reserve
        if budget < self.min_thinking_tokens:
            raise PolicyError(
                f"max_thinking_tokens='auto' leaves {budget} tokens (context {context_length} - prompt "
                f"{prompt_tokens} - max_answer_tokens {self.max_answer_tokens} - forced {reserve}); "
                f"that is below min_thinking_tokens ({self.min_thinking_tokens}): shorten the prompt or "
                "lower max_answer_tokens"
            )
        return budget

    def setting(self) -> Setting:
        """The knobs a sweep varies and reports group by, as fields (records carry them)."""
        return Setting(self.max_thinking_tokens, self.num_ignore, self.min_thinking_tokens, self.min_thinking_mode)

    def label(self) -> str:
        """A short, stable name for this setting in reports and run stores."""
        return self.setting().label

    def replace(self, **changes: Any) -> BudgetPolicy:
        return replace(self, **changes)
