"""What a budget-forced request carries to vLLM's engine: `SamplingParams.extra_args[FORCING_KEY]`.

Plain JSON-able values (they cross into the engine's worker process), as a documented dataclass with
one validation: a malformed spec is refused at admission with a message naming the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from s1.forcing.machine import ForcingMachine, ForcingTokens, Phase
from s1.forcing.policy import MIN_THINKING_MODES, PolicyError, SamplingSettings

FORCING_KEY = "s1_forcing"  # extra_args entry of a budget-forced request
MASK_KEY = "s1_mask"  # extra_args entry of a round-based thinking round: ids to ban, vocabulary limit

_TOKENS: dict[str, ForcingTokens] = {}  # per worker process, by digest


def tokens_args(tokens: ForcingTokens) -> dict[str, Any]:
    """A `ForcingTokens` as plain values, with a digest the worker caches it under."""
    body = {
        "end_triggers": sorted(tokens.end_triggers), "closer": list(tokens.closer),
        "cap_newline": list(tokens.cap_newline), "cap_plain": list(tokens.cap_plain),
        "ignores": [list(ids) for ids in tokens.ignores], "answer_stops": sorted(tokens.answer_stops),
        "end_token": tokens.end_token, "newline_tokens": sorted(tokens.newline_tokens),
        "opener_ends_newline": tokens.opener_ends_newline,
    }
    return {"digest": hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest(), **body}


def tokens_from_args(args: dict[str, Any]) -> ForcingTokens:
    digest = args["digest"]
    if digest not in _TOKENS:
        _TOKENS[digest] = ForcingTokens(
            end_triggers=frozenset(args["end_triggers"]), closer=tuple(args["closer"]),
            cap_newline=tuple(args["cap_newline"]), cap_plain=tuple(args["cap_plain"]),
            ignores=tuple(tuple(ids) for ids in args["ignores"]), answer_stops=frozenset(args["answer_stops"]),
            end_token=int(args["end_token"]), newline_tokens=frozenset(args["newline_tokens"]),
            opener_ends_newline=bool(args["opener_ends_newline"]),
        )
    return _TOKENS[digest]


@dataclass(frozen=True)
class ForcingSpec:
    """One request's forcing, as the engine-side machine needs it.

    key: the request's identity across preemption. tokens: `tokens_args` of its forced strings.
    max_thinking (resolved budget), min_thinking, min_mode, num_ignore, max_answer (answer tokens left),
    min_after_ignore: the machine's limits. answer_only: the request starts in its answer phase (a
    sweep's branch). think / answer: each phase's `SamplingSettings` as a dict. report: keep where the
    machine replaced a proposal, for the frontend to fetch. vocab_limit: ids at or past it are never
    picked (padded embedding rows).
    """

    key: str
    tokens: dict[str, Any]
    sample_index: int
    vocab_limit: int
    max_thinking: int
    min_thinking: int
    min_mode: str
    num_ignore: int
    max_answer: int
    think: dict[str, Any]
    answer: dict[str, Any]
    min_after_ignore: int = 0
    answer_only: bool = False
    report: bool = True

    @classmethod
    def of(cls, key: str, machine: ForcingMachine, tokens: dict[str, Any], thinking: SamplingSettings,
           answer: SamplingSettings, sample_index: int, vocab_limit: int, report: bool = True) -> ForcingSpec:
        """The spec of a sequence's machine as it stands (a machine already answering starts there)."""
        return cls(key=key, tokens=tokens, sample_index=sample_index, vocab_limit=vocab_limit,
                   max_thinking=machine.max_thinking, min_thinking=machine.min_thinking, min_mode=machine.min_mode,
                   num_ignore=machine.num_ignore, max_answer=machine.max_answer - machine.answer_tokens,
                   min_after_ignore=machine.min_after_ignore, answer_only=machine.phase is Phase.ANSWER,
                   think=asdict(thinking), answer=asdict(answer), report=report)

    def to_args(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: Any) -> ForcingSpec:
        """Validate `extra_args[FORCING_KEY]`; raises ValueError naming the bad field."""
        where = f"extra_args[{FORCING_KEY!r}]"
        if not isinstance(args, dict):
            raise ValueError(f"{where} must be a dict, got {type(args).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        for name in sorted(required - set(args)):
            raise ValueError(f"{where} lacks the field {name!r}")
        unknown = sorted(set(args) - names)
        if unknown:
            raise ValueError(f"{where} has unknown fields: {', '.join(unknown)}")
        spec = cls(**args)
        if spec.min_mode not in MIN_THINKING_MODES:
            modes = ", ".join(MIN_THINKING_MODES)
            raise ValueError(f"{where}['min_mode'] must be one of {modes}, got {spec.min_mode!r}")
        for name in ("sample_index", "vocab_limit", "max_thinking", "min_thinking", "num_ignore", "max_answer",
                     "min_after_ignore"):
            value = getattr(spec, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}[{name!r}] must be an integer >= 0, got {value!r}")
        try:
            spec.sampling()
        except (PolicyError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return spec

    def sampling(self) -> tuple[SamplingSettings, SamplingSettings]:
        return SamplingSettings(**self.think), SamplingSettings(**self.answer)

    def machine(self) -> ForcingMachine:
        tokens = tokens_from_args(self.tokens)
        machine = ForcingMachine(tokens=tokens, max_thinking=self.max_thinking, min_thinking=self.min_thinking,
                                 min_mode=self.min_mode, num_ignore=self.num_ignore, max_answer=self.max_answer,
                                 min_after_ignore=self.min_after_ignore, _ends_newline=tokens.opener_ends_newline)
        if self.answer_only:
            machine.phase = Phase.ANSWER
        return machine
