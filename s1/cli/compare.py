"""`s1 compare`: test-time scaling methods side by side at equal compute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from s1 import defaults
from s1.cli.common import (
    console,
    err,
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
from s1.forcing.policy import PolicyError

RETRY = "rerun the same command to retry them (with --output, add --resume)"


@engine_options(batch_size=64)
def compare(
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks (see `s1 tasks`).")] = "synthetic",
    data_dir: Annotated[str | None, typer.Option(help="Local file or directory with the task data.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each task.")] = None,
    methods: Annotated[str, typer.Option(
        help="Comma-separated: budget_forcing, voting (majority voting and best-of-N), rebase, rejection, control."
    )] = "budget_forcing,voting,rebase,rejection,control",
    budgets: Annotated[str | None, typer.Option(help="Budget forcing: thinking caps (greedy).")] = None,
    num_ignore: Annotated[str | None, typer.Option(help="Budget forcing: ignore counts at the largest cap.")] = None,
    samples: Annotated[int, typer.Option(help="Voting / best-of-N: samples per question (maj@k for k=1,2,4..).")] = 8,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (voting, REBASE, rejection).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Top-p for sampling.")] = 1.0,
    sample_budget: Annotated[str | None, typer.Option(help="Thinking cap of each sample, or 'auto'.")] = None,
    verifier: Annotated[list[str] | None, typer.Option(
        help="confidence (the policy's own step probabilities), orm:PATH, prm:PATH or judge:BASE_URL "
             "(repeatable; REBASE uses the first).")] = None,
    aggregate: Annotated[str, typer.Option(help="Step scores -> one: last, min, prod or mean.")] = "mean",
    step_separator: Annotated[str, typer.Option(help="Where steps end: \\n, \\n\\n or a marker like 'Step'.")] = "\\n",
    step_tag: Annotated[str, typer.Option(help="prm: the tag after each step (one token).")] = " ки",
    judge_model: Annotated[str, typer.Option(help="judge: the model name at the endpoint.")] = "gpt-4o-mini",
    rebase_widths: Annotated[str, typer.Option(help="REBASE: tree widths W.")] = "2,4,8",
    rebase_temperature: Annotated[float, typer.Option(help="REBASE: softmax temperature of the width split.")] = 0.2,
    rebase_select: Annotated[str, typer.Option(help="REBASE final answer: weighted (majority) or best (leaf).")] = (
        "weighted"),
    max_depth: Annotated[int, typer.Option(help="REBASE: steps per path.")] = 32,
    max_step_tokens: Annotated[int | None, typer.Option(help="REBASE: tokens per step.")] = None,
    rebase_thinking_tokens: Annotated[int | None, typer.Option(help="REBASE: thinking tokens per path.")] = None,
    rejection_budgets: Annotated[str | None, typer.Option(help="Rejection sampling: thinking budgets.")] = None,
    max_attempts: Annotated[int, typer.Option(help="Rejection sampling: attempts per question.")] = 8,
    controls: Annotated[str | None, typer.Option(
        help="Conditional control prompts, e.g. tokens=16,steps=2,class=short,class=long.")] = None,
    control_forcing: Annotated[bool, typer.Option(help="Also run token/step control with budget forcing.")] = True,
    step_tokens: Annotated[int | None, typer.Option(help="Step control + forcing: thinking tokens per step.")] = None,
    max_answer_tokens: Annotated[int | None, typer.Option(help="Answer cap in tokens.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling.")] = 0,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Run directory (default: runs/<model>-<tasks>-compare, resumed when it holds this run).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in an existing --output.")] = False,
    allow_failures: Annotated[bool, typer.Option(help="Exit 0 even when records failed (a partial run).")] = False,
    plot: Annotated[bool, typer.Option(help="Write compare.png into the run directory.")] = True,
    *,
    engine: EngineOptions,
) -> None:
    """Compare test-time scaling methods at equal compute: budget forcing, conditional control, majority
    voting, best-of-N, REBASE and rejection sampling on the same questions, into one resumable run; prints
    accuracy vs tokens per method with Control / Scaling / Performance and writes the figure."""
    from s1.backends.loading import quiet_hf_logging
    from s1.eval.compare import CompareConfig, manifest_for, run_compare
    from s1.eval.run import parse_budgets, parse_ints, run_dir_default
    from s1.methods.steps import parse_separator
    from s1.methods.verifiers import load_verifier

    quiet_hf_logging()

    def configure(context: int | None) -> CompareConfig:
        d = defaults.compare_defaults(context)
        return CompareConfig(
            model=engine.model, backend=engine.backend, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
            data_dir=data_dir, limit=limit, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
            budgets=parse_budgets(budgets) if budgets else d.budgets,
            num_ignore=parse_ints(num_ignore or "0,1,2", "num_ignore"), samples=samples,
            temperature=temperature, top_p=top_p,
            sample_budget=parse_budgets(sample_budget)[0] if sample_budget else d.sample_budget,
            verifiers=tuple(verifier or ("confidence",)), aggregate=aggregate,
            step_separator=parse_separator(step_separator), step_tag=step_tag,
            rebase_widths=parse_ints(rebase_widths, "rebase_widths"), rebase_temperature=rebase_temperature,
            rebase_select=rebase_select, max_depth=max_depth, max_step_tokens=max_step_tokens or d.max_step_tokens,
            rebase_thinking_tokens=rebase_thinking_tokens or d.rebase_thinking_tokens,
            rejection_budgets=parse_ints(rejection_budgets, "rejection_budgets") if rejection_budgets
            else d.rejection_budgets,
            max_attempts=max_attempts,
            controls=tuple(c.strip() for c in controls.split(",") if c.strip()) if controls else d.controls,
            control_forcing=control_forcing, step_tokens=step_tokens or d.step_tokens,
            max_answer_tokens=max_answer_tokens or d.max_answer_tokens, seed=seed, format=engine.format, system=system,
        )

    config, items, probed = plan_run(engine, configure)
    default_dir = run_dir_default(config).with_name(run_dir_default(config).name + "-compare")
    run_dir, resuming = pick_run_dir(output, resume, manifest_for(config, items), default_dir)
    backend = load_engine(engine, seed)
    if backend.context_length != probed:  # the defaults follow what the loaded model says
        config = configure(backend.context_length)
        default_dir = run_dir_default(config).with_name(run_dir_default(config).name + "-compare")
        run_dir, resuming = pick_run_dir(output, resume, manifest_for(config, items), default_dir)
    try:
        with err.status("loading verifiers..."):
            verifiers = [load_verifier(v, backend, step_tag=config.step_tag, device=engine.device,
                                       judge_model=judge_model)
                         for v in config.verifiers] if {"voting", "rebase"} & set(config.methods) else []
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))
    store = open_store(run_dir, resume or resuming, manifest_for(config, items, backend.format.name))
    n_items = sum(len(v) for v in items.values())
    console.print(f"{engine.model_label} on {', '.join(config.tasks)}: {n_items} items, methods "
                  f"{', '.join(config.methods)} -> {run_dir}", highlight=False)
    try:
        with progress_bar() as bar:
            task_id = bar.add_task("records", total=None)

            def advance(method: str, n: int) -> None:
                bar.update(task_id, advance=n, description=method)

            progress = run_compare(config, backend, store, items, verifiers, chunk_items=engine.batch_size,
                                   on_records=advance,
                                   on_start=lambda p: bar.update(task_id, total=p.total, completed=p.done_before))
        store.finish()
    finally:
        store.close()
    spent = ", ".join(f"{m} {s:.0f}s" for m, s in progress.seconds.items())
    console.print(f"generated {progress.generated} records ({progress.done_before} already done), "
                  f"{progress.errors} failed; {spent}", highlight=False)
    exit_for(report_run(run_dir, run_dir / "compare.png" if plot else None), allow_failures, RETRY)
