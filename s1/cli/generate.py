"""`s1 generate`: generate with budget forcing and show the forced parts."""

from __future__ import annotations

import dataclasses
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from s1 import defaults
from s1.cli.common import err, exit_for, fail, parse_budget, read_prompts_file, show
from s1.cli.options import EngineOptions, engine_options
from s1.cli.presets import parse_answer_cap, resolve
from s1.eval.report import failures
from s1.forcing.policy import AUTO, MIN_THINKING_MODES, BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Request


@engine_options(batch_size=16)
def generate(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A question (repeatable).")] = None,
    prompts_file: Annotated[Path | None, typer.Option(help="JSONL with prompt / messages / question per line.")] = None,
    max_thinking_tokens: Annotated[str | None, typer.Option(
        help="Thinking cap in tokens, or 'auto' (default; a protocol's: its largest budget).")] = None,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    min_thinking_mode: Annotated[str, typer.Option(help="Below the minimum: suppress | wait.")] = "suppress",
    num_ignore: Annotated[int, typer.Option(help="Times to replace a natural end of thinking.")] = 0,
    ignore_str: Annotated[list[str] | None, typer.Option(
        help="Ignore string (repeatable: cycles; '' ignores the end with no string).")] = None,
    min_tokens_after_ignore: Annotated[int | None, typer.Option(
        help="Sampled tokens after each ignore before thinking may end again (s1: 1).")] = None,
    max_answer_tokens: Annotated[str | None, typer.Option(
        help="Answer cap in tokens, or 'rest' (default: the model's context / 32, at most 1024).")] = None,
    temperature: Annotated[float | None, typer.Option(help="Thinking temperature (default 0: greedy).")] = None,
    top_p: Annotated[float | None, typer.Option(help="Thinking top-p (default 1).")] = None,
    repetition_penalty: Annotated[float | None, typer.Option(help="Repetition penalty (default 1: off).")] = None,
    presence_penalty: Annotated[float | None, typer.Option(help="Presence penalty (default 0).")] = None,
    frequency_penalty: Annotated[float | None, typer.Option(help="Frequency penalty (default 0).")] = None,
    protocol: Annotated[str | None, typer.Option(
        help="Reproduce a paper's protocol: s1 or s1m (see docs/protocols.md); explicit options override it.")] = None,
    top_k: Annotated[int, typer.Option(help="Thinking top-k (0 = off).")] = 0,
    answer_temperature: Annotated[float | None, typer.Option(help="Answer temperature (default: thinking's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    samples: Annotated[int, typer.Option(help="Samples per prompt.")] = 1,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    raw_prompt: Annotated[bool, typer.Option(help="Use --prompt as raw text, no chat template.")] = False,
    image: Annotated[list[str] | None, typer.Option(
        help="Image path or URL for every --prompt, placed before the text (repeatable; vision-language "
             "models such as Qwen2-VL).")] = None,
    mode: Annotated[str, typer.Option(help="auto | single (one pass) | multi (rounds).")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON record per line on stdout.")] = False,
    allow_failures: Annotated[bool, typer.Option(help="Exit 0 even when generations failed.")] = False,
    *,
    engine: EngineOptions,
) -> None:
    """Generate with budget forcing: cap, extend (num-ignore) or floor the thinking."""
    if (prompt is None) == (prompts_file is None):
        fail("give --prompt (repeatable) or --prompts-file, not both and not neither")
    if min_thinking_mode not in MIN_THINKING_MODES:
        fail(f"--min-thinking-mode must be one of {', '.join(MIN_THINKING_MODES)}, got {min_thinking_mode!r}")
    if samples < 1:
        fail(f"--samples must be >= 1, got {samples}")
    if image and (raw_prompt or prompts_file is not None):
        fail("--image goes with --prompt chat questions; a raw prompt cannot hold images, and a --prompts-file "
             "line names its own 'images'")
    try:
        engine.check()
        budget = parse_budget(max_thinking_tokens) if max_thinking_tokens is not None else None
        given = dict(budgets=(budget,) if budget is not None else None, ignore_strings=tuple(ignore_str) if ignore_str
                     else None, max_answer_tokens=parse_answer_cap(max_answer_tokens), temperature=temperature,
                     top_p=top_p, repetition_penalty=repetition_penalty, presence_penalty=presence_penalty,
                     frequency_penalty=frequency_penalty, min_tokens_after_ignore=min_tokens_after_ignore)
        preset = resolve(protocol, given, {**defaults.run_defaults(None), "budgets": (AUTO,), "max_answer_tokens": 1},
                         engine)
        engine, v = preset.engine, preset.values

        def sampling(temp: float) -> SamplingSettings:
            return SamplingSettings(temperature=temp, top_p=v["top_p"], top_k=top_k, seed=seed,
                                    repetition_penalty=v["repetition_penalty"], presence_penalty=v["presence_penalty"],
                                    frequency_penalty=v["frequency_penalty"])

        policy = BudgetPolicy(
            max_thinking_tokens=max(v["budgets"], key=lambda b: float("inf") if b == AUTO else b),
            min_thinking_tokens=min_thinking_tokens, min_thinking_mode=min_thinking_mode, num_ignore=num_ignore,
            ignore_strings=v["ignore_strings"], max_answer_tokens=v["max_answer_tokens"],
            min_tokens_after_ignore=v["min_tokens_after_ignore"], thinking=sampling(v["temperature"]),
            answer=None if answer_temperature is None else sampling(answer_temperature), protocol=protocol,
        )
    except (PolicyError, ValueError, typer.BadParameter) as exc:
        fail(str(exc))
    if prompts_file is not None:
        base = read_prompts_file(prompts_file)
    else:
        base = [Request(f"prompt-{i}", prompt=p) if raw_prompt else Request(
                    f"prompt-{i}", messages=p, system=system, images=tuple(image or ()))
                for i, p in enumerate(prompt or [])]
    requests = [dataclasses.replace(r, sample_index=k) for r in base for k in range(samples)]

    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model...") if not json_out else nullcontext():
            backend = engine.load(seed, mode=mode) if engine.backend != "openai" else engine.load(seed)
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))
    if max_answer_tokens is None and protocol is None:  # the default cap follows the model's context
        policy = policy.replace(max_answer_tokens=defaults.answer_tokens(backend.context_length))
    gens = backend.generate(requests, policy)
    for g in gens:
        if json_out:
            sys.stdout.write(g.to_json() + "\n")
        else:
            show(g)
    failed = failures(gens)
    if failed.failed:
        for line in failed.lines():
            err.print(line, style="red", highlight=False)
    exit_for(failed, allow_failures)
