"""`s1 eval`: a model on benchmarks over a budget sweep, stored sample by sample, reported as a curve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from s1 import defaults
from s1.cli.common import (
    console,
    exit_for,
    fail,
    load_engine,
    open_store,
    pick_run_dir,
    plan_run,
    progress_bar,
    report_run,
)
from s1.cli.options import EngineOptions, engine_options
from s1.cli.presets import parse_answer_cap, resolve

RETRY = "rerun the same command to retry them (with --output, add --resume)"


@engine_options(batch_size=32)
def eval_(
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks (see `s1 tasks`).")] = "synthetic",
    data_dir: Annotated[str | None, typer.Option(help="Local file or directory with the task data.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each task.")] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Thinking caps to sweep, e.g. 512,1024,auto (default: powers of two from the model's context / 128 "
             "to context / 4, then auto).")] = None,
    num_ignore: Annotated[str | None, typer.Option(help="num_ignore values to sweep (default: 0,1,2).")] = None,
    ignore_str: Annotated[list[str] | None, typer.Option(
        help="Ignore string (repeatable: cycles; '' ignores the end with no string).")] = None,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    min_tokens_after_ignore: Annotated[int | None, typer.Option(
        help="Sampled tokens after each ignore before thinking may end again (s1: 1).")] = None,
    max_answer_tokens: Annotated[str | None, typer.Option(
        help="Answer cap in tokens, or 'rest' (default: the model's context / 32, at most 1024).")] = None,
    samples: Annotated[int, typer.Option(help="Samples per item (needs --temperature > 0).")] = 1,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (default 0: greedy).")] = None,
    top_p: Annotated[float | None, typer.Option(help="Top-p (default 1).")] = None,
    repetition_penalty: Annotated[float | None, typer.Option(help="Repetition penalty (default 1: off).")] = None,
    presence_penalty: Annotated[float | None, typer.Option(help="Presence penalty (default 0).")] = None,
    frequency_penalty: Annotated[float | None, typer.Option(help="Frequency penalty (default 0).")] = None,
    protocol: Annotated[str | None, typer.Option(
        help="Reproduce a paper's protocol: s1 or s1m (see docs/protocols.md); explicit options override it.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and GPQA choice order.")] = 0,
    control: Annotated[str | None, typer.Option(
        help="Conditional-control prompt: tokens=N, steps=N, class=long or class=short.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Run directory (default: runs/<model>-<tasks>, resumed when it holds this run, else numbered).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in an existing --output.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Resuming: run failed samples again.")] = True,
    allow_failures: Annotated[bool, typer.Option(help="Exit 0 even when samples failed (a partial run).")] = False,
    plot: Annotated[bool, typer.Option(help="Write scaling.png into the run directory.")] = True,
    *,
    engine: EngineOptions,
) -> None:
    """Evaluate a model on benchmarks over a budget sweep (thinking once per sample), store every sample,
    and print accuracy vs thinking tokens with the s1 paper's Control / Scaling / Performance. Exits 1 when
    samples failed (their errors are listed, grouped), 2 on bad input."""
    from s1.backends.loading import quiet_hf_logging
    from s1.eval.run import (
        EvalConfig,
        check_fit,
        evaluate,
        manifest_for,
        parse_budgets,
        parse_ints,
        run_dir_default,
    )
    from s1.forcing.policy import PolicyError

    quiet_hf_logging()

    try:
        given = dict(budgets=parse_budgets(budgets) if budgets else None,
                     num_ignore=parse_ints(num_ignore, "num_ignore") if num_ignore else None,
                     ignore_strings=tuple(ignore_str) if ignore_str else None,
                     max_answer_tokens=parse_answer_cap(max_answer_tokens), temperature=temperature, top_p=top_p,
                     repetition_penalty=repetition_penalty, presence_penalty=presence_penalty,
                     frequency_penalty=frequency_penalty, min_tokens_after_ignore=min_tokens_after_ignore)
        preset = resolve(protocol, given, {}, engine)
    except ValueError as exc:
        fail(str(exc))
    engine = preset.engine

    def configure(context: int | None) -> EvalConfig:
        v = resolve(protocol, given, defaults.run_defaults(context), engine).values
        fmt = engine.format if isinstance(engine.format, str) else engine.format.name
        return EvalConfig(
            model=engine.model, backend=engine.backend, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
            data_dir=data_dir, limit=limit, min_thinking_tokens=min_thinking_tokens, samples=samples, seed=seed,
            control=control, format=fmt, system=system, protocol=protocol, protocol_overrides=preset.overrides, **v)

    config, items, probed = plan_run(engine, configure)
    run_dir, resuming = pick_run_dir(output, resume, manifest_for(config, items), run_dir_default(config))
    if resuming and not _pending(run_dir, config, items, retry_failed):  # a finished run: report it again
        exit_for(report_run(run_dir, run_dir / "scaling.png" if plot else None), allow_failures, RETRY)
        return
    backend = load_engine(engine, seed)
    if backend.context_length != probed:  # the defaults follow what the loaded model says
        config = configure(backend.context_length)
        run_dir, resuming = pick_run_dir(output, resume, manifest_for(config, items), run_dir_default(config))
    try:
        check_fit(config, backend, items)
    except PolicyError as exc:
        fail(str(exc))
    store = open_store(run_dir, resume or resuming, manifest_for(config, items, backend.format.name))
    n_items = sum(len(v) for v in items.values())
    console.print(f"{engine.model_label} on {', '.join(config.tasks)}: {n_items} items x {config.samples} "
                  f"sample(s) x {len(config.settings())} settings -> {run_dir}", highlight=False)
    try:
        with progress_bar() as bar:
            task_id = bar.add_task("samples", total=None)
            progress = evaluate(config, backend, store, items, chunk_items=max(1, engine.batch_size // config.samples),
                                on_chunk=lambda n: bar.advance(task_id, n), retry_failed=retry_failed,
                                on_start=lambda p: bar.update(task_id, total=p.total, completed=p.done_before))
        store.finish()
    finally:
        store.close()
    console.print(f"generated {progress.generated} samples ({progress.done_before} already done), "
                  f"{progress.errors} failed; thinking {progress.think_seconds:.0f}s + branched answers "
                  f"{progress.branch_seconds:.0f}s", highlight=False)
    exit_for(report_run(run_dir, run_dir / "scaling.png" if plot else None), allow_failures, RETRY)


def _pending(run_dir: Path, config: object, items: dict, retry_failed: bool) -> int:
    """How many samples a resumed run still has to make (failed ones too, when they are retried)."""
    from s1.eval.run import pending_work
    from s1.eval.store import RunStore

    store = RunStore.open(run_dir, read_only=True)
    try:
        done = store.done_keys(include_failed=not retry_failed)
    finally:
        store.close()
    work, progress = pending_work(config, items, done)  # type: ignore[arg-type]
    return progress.total - progress.done_before
