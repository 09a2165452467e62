"""`--protocol s1|s1m`: a reference's settings fill every option the user left open; an explicit option wins
and is named as an override (the run's manifest then says the preset was modified)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from s1.cli.options import EngineOptions
from s1.forcing.protocols import Protocol, get_protocol


@dataclass(frozen=True)
class Resolved:
    """Option values after the preset, which of them the user changed, and the engine options to load with."""

    values: dict[str, Any]
    overrides: tuple[str, ...]
    engine: EngineOptions


def preset_values(protocol: Protocol) -> dict[str, Any]:
    t = protocol.thinking
    return {"budgets": protocol.budgets, "num_ignore": protocol.num_ignore, "ignore_strings": protocol.ignore_strings,
            "max_answer_tokens": protocol.max_answer_tokens,
            "min_tokens_after_ignore": protocol.min_tokens_after_ignore,
            "temperature": t.temperature, "top_p": t.top_p, "repetition_penalty": t.repetition_penalty,
            "presence_penalty": t.presence_penalty, "frequency_penalty": t.frequency_penalty}


def resolve(protocol: str | None, given: dict[str, Any], defaults: dict[str, Any], engine: EngineOptions) -> Resolved:
    """`given` holds the options as parsed (None where the user gave none); `defaults` the project's own
    defaults for those left open without a protocol."""
    if protocol is None:
        return Resolved({k: defaults.get(k) if v is None else v for k, v in given.items()}, (), engine)
    preset = get_protocol(protocol)
    values = preset_values(preset)
    out = {k: (values[k] if k in values else defaults.get(k)) if v is None else v for k, v in given.items()}
    overrides = [k for k, v in given.items() if v is not None and k in values and v != values[k]]
    changes: dict[str, Any] = {}
    if engine.format == "auto":
        changes["format"] = preset.format
    elif engine.format != preset.format.name:
        overrides.append("format")
    if engine.dtype == "auto" and preset.dtype:
        changes["dtype"] = preset.dtype
    elif preset.dtype and engine.dtype != preset.dtype:
        overrides.append("dtype")
    if engine.tokenizer == "auto" and engine.model in preset.tokenizers:
        changes["tokenizer"] = preset.tokenizers[engine.model]
    return Resolved(out, tuple(sorted(overrides)), replace(engine, **changes))


def parse_answer_cap(text: str | None) -> int | str | None:
    """`--max-answer-tokens`: an integer, or `rest` (whatever the context leaves)."""
    if text is None or text == "rest":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"max_answer_tokens must be an integer >= 1 or 'rest', got {text!r}") from None
