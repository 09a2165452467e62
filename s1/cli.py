"""The `s1` command. Subcommands map to the package's modules; this file only parses and prints."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s1.backends.base import Request
from s1.budget import AUTO, MIN_THINKING_MODES, BudgetPolicy, PolicyError, SamplingSettings
from s1.formats import PRESETS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test-time scaling for reasoning models: budget forcing, evaluation, curation, SFT.")
console = Console(stderr=False)
err = Console(stderr=True)

SEGMENT_STYLES = {"think": "", "ignore": "bold yellow", "close": "bold cyan", "cap": "bold red",
                  "answer": "green", "stop": "dim"}


def fail(message: str) -> None:
    """Exit with a clear message (status 2, as for bad usage)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def parse_budget(value: str) -> int | str:
    if value == AUTO:
        return AUTO
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"must be an integer >= 0 or 'auto', got {value!r}") from None


def read_prompts_file(path: Path) -> list[Request]:
    """JSONL: one object per line with `prompt` (raw text), `messages` (chat) or `question` (user turn);
    `id` optional. Every bad line is reported by number."""
    if not path.is_file():
        fail(f"--prompts-file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{path}:{n}: not valid JSON ({exc.msg})")
        if not isinstance(row, dict):
            fail(f"{path}:{n}: each line must be a JSON object")
        rid = str(row.get("id", f"{path.stem}-{n}"))
        keys = [k for k in ("prompt", "messages", "question") if k in row]
        if len(keys) != 1:
            fail(f"{path}:{n}: give exactly one of 'prompt', 'messages' or 'question'")
        key = keys[0]
        if key == "prompt":
            out.append(Request(rid, prompt=str(row["prompt"])))
        else:
            out.append(Request(rid, messages=row[key], system=row.get("system")))
    if not out:
        fail(f"--prompts-file {path} holds no prompts")
    return out


def show(gen) -> None:
    body = Text()
    for seg in gen.segments:
        label = "" if seg.kind in ("think", "answer", "stop") else f"[{seg.kind}]"
        if seg.kind == "stop":
            continue
        body.append(label, style="dim")
        body.append(seg.text, style=SEGMENT_STYLES.get(seg.kind, ""))
    stats = (f"thinking {gen.thinking_tokens} sampled + {gen.thinking_forced_tokens} forced "
             f"(budget {gen.thinking_budget}{', cap hit' if gen.cap_hit else ''}) · ignores {gen.ignores_applied} · "
             f"answer {gen.answer_tokens} sampled + {gen.answer_forced_tokens} forced · {gen.finish_reason} · "
             f"{gen.wall_time_s:.1f}s")
    if gen.error:
        console.print(Panel(Text(gen.error, style="red"), title=f"{gen.prompt_id}: failed", border_style="red"))
        return
    console.print(Panel(body, title=gen.prompt_id))
    console.print(Text(stats, style="dim"))
    console.print(Text("answer: ", style="bold") + Text(gen.answer or "(none)", style="green"))


@app.command()
def generate(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A question (repeatable).")] = None,
    prompts_file: Annotated[Path | None, typer.Option(help="JSONL with prompt / messages / question per line.")] = None,
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    gguf_file: Annotated[str | None, typer.Option(help="GGUF file name inside --model.")] = None,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    max_thinking_tokens: Annotated[str, typer.Option(help="Thinking cap in tokens, or 'auto'.")] = AUTO,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    min_thinking_mode: Annotated[str, typer.Option(help="Below the minimum: suppress | wait.")] = "suppress",
    num_ignore: Annotated[int, typer.Option(help="Times to replace a natural end of thinking.")] = 0,
    ignore_str: Annotated[list[str] | None, typer.Option(help="Ignore string (repeatable: cycles).")] = None,
    max_answer_tokens: Annotated[int | None, typer.Option(
        help="Answer cap in tokens (default: 32 for the tiny model, 1024 otherwise).")] = None,
    temperature: Annotated[float, typer.Option(help="Thinking temperature (0 = greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Thinking top-p.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Thinking top-k (0 = off).")] = 0,
    answer_temperature: Annotated[float | None, typer.Option(help="Answer temperature (default: thinking's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    samples: Annotated[int, typer.Option(help="Samples per prompt.")] = 1,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    raw_prompt: Annotated[bool, typer.Option(help="Use --prompt as raw text, no chat template.")] = False,
    mode: Annotated[str, typer.Option(help="auto | single (one pass) | multi (rounds).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON record per line on stdout.")] = False,
) -> None:
    """Generate with budget forcing: cap, extend (num-ignore) or floor the thinking."""
    if (prompt is None) == (prompts_file is None):
        fail("give --prompt (repeatable) or --prompts-file, not both and not neither")
    if min_thinking_mode not in MIN_THINKING_MODES:
        fail(f"--min-thinking-mode must be one of {', '.join(MIN_THINKING_MODES)}, got {min_thinking_mode!r}")
    if samples < 1:
        fail(f"--samples must be >= 1, got {samples}")
    try:
        think = SamplingSettings(temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
        answer = None if answer_temperature is None else SamplingSettings(
            temperature=answer_temperature, top_p=top_p, top_k=top_k, seed=seed)
        policy = BudgetPolicy(
            max_thinking_tokens=parse_budget(max_thinking_tokens), min_thinking_tokens=min_thinking_tokens,
            min_thinking_mode=min_thinking_mode, num_ignore=num_ignore,
            ignore_strings=tuple(ignore_str) if ignore_str else None,
            max_answer_tokens=max_answer_tokens or (32 if model is None else 1024), thinking=think, answer=answer,
        )
    except (PolicyError, typer.BadParameter) as exc:
        fail(str(exc))

    if prompts_file is not None:
        base = read_prompts_file(prompts_file)
    else:
        base = [Request(f"prompt-{i}", prompt=p) if raw_prompt else Request(f"prompt-{i}", messages=p, system=system)
                for i, p in enumerate(prompt or [])]
    requests = [Request(r.id, messages=r.messages, prompt=r.prompt, system=r.system, sample_index=k)
                for r in base for k in range(samples)]

    from s1.backends import load_backend
    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model...") if not json_out else nullcontext():
            backend = load_backend(model, gguf_file=gguf_file, device=device, dtype=dtype, format=format,
                                   mode=mode, batch_size=batch_size)
    except (ValueError, PolicyError) as exc:
        fail(str(exc))
    gens = backend.generate(requests, policy)
    failed = 0
    for g in gens:
        failed += g.error is not None
        if json_out:
            sys.stdout.write(g.to_json() + "\n")
        else:
            show(g)
    if failed:
        err.print(f"[red]{failed} of {len(gens)} generations failed[/]")
        raise typer.Exit(1)


@app.command()
def train(
    preset: Annotated[str, typer.Option(help="Training preset; 'tiny' retrains the embedded model.")] = "tiny",
    output: Annotated[Path, typer.Option(help="Where to save the trained model.")] = Path("tiny-reasoner"),
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data, initialisation and order.")] = 0,
) -> None:
    """Train a model. `--preset tiny` reproduces the embedded tiny reasoning model from scratch on CPU."""
    if preset != "tiny":
        fail(f"preset {preset!r} cannot be trained from the command line yet; allowed: tiny")
    if max_steps is not None and max_steps < 1:
        fail(f"--max-steps must be >= 1, got {max_steps}")
    if seed < 0:
        fail(f"--seed must be >= 0, got {seed}")
    from dataclasses import replace

    from s1.backends.loading import quiet_hf_logging
    from s1.synthetic.tiny_model import TinyRecipe, train_tiny

    quiet_hf_logging()
    summary = train_tiny(output, replace(TinyRecipe(), seed=seed), max_steps=max_steps,
                         log=lambda m: console.print(m, highlight=False))
    console.print(f"saved to {output} ({summary['steps']} steps, {summary['train_seconds']}s)")


TINY_BUDGETS = "8,16,24,32,48,auto"
MODEL_BUDGETS = "512,1024,2048,4096,8192,auto"


def _open_store(run_dir: Path, resume: bool, manifest: dict | None = None):
    from s1.runs import RunStore, RunStoreError

    try:
        if manifest is None:
            return RunStore.open(run_dir, read_only=True)
        return RunStore.open_or_create(run_dir, manifest, resume=resume)
    except (RunStoreError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _report_run(run_dir: Path, plot: Path | None) -> None:
    from s1.report import render, summarize, sweep_summaries

    store = _open_store(run_dir, resume=False)
    rows = summarize(store.records())
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    render(rows, sweep_summaries(rows), console)
    if plot is not None:
        from s1.plot import plot_scaling

        console.print(f"plot: {plot_scaling(rows, plot, title=str(run_dir.name))}")


@app.command("eval")
def eval_(
    model: Annotated[str | None, typer.Option(help="Hub id, dir, .gguf or smollm2 (default: tiny model).")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks (see `s1 tasks`).")] = "synthetic",
    data_dir: Annotated[str | None, typer.Option(help="Local file or directory with the task data.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each task.")] = None,
    budgets: Annotated[str | None, typer.Option(
        help=f"Thinking caps to sweep, e.g. 512,1024,auto (default: {TINY_BUDGETS} for the tiny model, "
             f"{MODEL_BUDGETS} otherwise).")] = None,
    num_ignore: Annotated[str | None, typer.Option(
        help="num_ignore values to sweep, e.g. 0,1,2 (default: 0,1,2 for the tiny model, 0 otherwise).")] = None,
    ignore_str: Annotated[list[str] | None, typer.Option(help="Ignore string (repeatable: cycles).")] = None,
    min_thinking_tokens: Annotated[int, typer.Option(help="Minimum thinking tokens.")] = 0,
    max_answer_tokens: Annotated[int | None, typer.Option(
        help="Answer cap in tokens (default: 32 for the tiny model, 1024 otherwise).")] = None,
    samples: Annotated[int, typer.Option(help="Samples per item (needs --temperature > 0).")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Top-p.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for sampling and GPQA choice order.")] = 0,
    control: Annotated[str | None, typer.Option(
        help="Conditional-control prompt: tokens=N, steps=N, class=long or class=short.")] = None,
    format: Annotated[str, typer.Option(help=f"Reasoning format: auto, {', '.join(PRESETS)}.")] = "auto",
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    output: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<model>-<tasks>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --output.")] = False,
    plot: Annotated[bool, typer.Option(help="Write scaling.png into the run directory.")] = True,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
) -> None:
    """Evaluate a model on benchmarks over a budget sweep (thinking once per sample), store every sample,
    and print accuracy vs thinking tokens with the s1 paper's Control / Scaling / Performance."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from s1.evaluate import EvalConfig, evaluate, load_items, manifest_for, parse_budgets, parse_ints, run_dir_default
    from s1.tasks import HubUnavailableError

    tiny = model is None
    try:
        config = EvalConfig(
            model=model, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()), data_dir=data_dir,
            limit=limit, budgets=parse_budgets(budgets or (TINY_BUDGETS if tiny else MODEL_BUDGETS)),
            num_ignore=parse_ints(num_ignore or ("0,1,2" if tiny else "0"), "num_ignore"),
            ignore_strings=tuple(ignore_str) if ignore_str else None, min_thinking_tokens=min_thinking_tokens,
            max_answer_tokens=max_answer_tokens or (32 if tiny else 1024), samples=samples,
            temperature=temperature, top_p=top_p, seed=seed, control=control, format=format, system=system,
        )
        items = load_items(config)
    except (ValueError, PolicyError, FileNotFoundError, HubUnavailableError) as exc:
        fail(str(exc))
    run_dir = output or run_dir_default(config)

    from s1.backends import load_backend
    from s1.backends.loading import quiet_hf_logging

    quiet_hf_logging()
    try:
        with err.status("loading model..."):
            backend = load_backend(model, device=device, dtype=dtype, format=format, batch_size=batch_size)
    except (ValueError, PolicyError) as exc:
        fail(str(exc))
    store = _open_store(run_dir, resume, manifest_for(config, backend, items))
    n_items = sum(len(v) for v in items.values())
    console.print(f"{config.model or 'tiny reasoning model'} on {', '.join(config.tasks)}: {n_items} items x "
                  f"{config.samples} sample(s) x {len(config.settings())} settings -> {run_dir}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task_id = bar.add_task("samples", total=None)

            progress = evaluate(config, backend, store, items, chunk_items=max(1, batch_size // config.samples),
                                on_chunk=lambda n: bar.advance(task_id, n),
                                on_start=lambda p: bar.update(task_id, total=p.total, completed=p.done_before))
        store.finish()
    finally:
        store.close()
    console.print(f"generated {progress.generated} samples ({progress.done_before} already done), "
                  f"{progress.errors} failed; thinking {progress.think_seconds:.0f}s + branched answers "
                  f"{progress.branch_seconds:.0f}s", highlight=False)
    _report_run(run_dir, run_dir / "scaling.png" if plot else None)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")]) -> None:
    """Accuracy +- CI and thinking tokens per task and setting; Control / Scaling / Performance per sweep."""
    _report_run(run_dir, None)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (.png, .pdf, .svg).")] = Path(
        "scaling.png"),
) -> None:
    """Accuracy vs average thinking tokens per task (the s1 paper's Figure 1)."""
    from s1.plot import plot_scaling
    from s1.report import summarize

    store = _open_store(run_dir, resume=False)
    rows = summarize(store.records())
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    console.print(f"plot: {plot_scaling(rows, output, title=run_dir.name)}")


@app.command()
def stats(path: Annotated[Path, typer.Argument(help="samples.jsonl of a run (or the run directory).")]) -> None:
    """Thinking-token statistics per task and setting, as s1's compute_sample_stats.py prints them."""
    from collections import defaultdict

    from s1.metrics import thinking_stats
    from s1.runs import SampleRecord

    file = path / "samples.jsonl" if path.is_dir() else path
    if not file.is_file():
        fail(f"no samples file at {file}")
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = SampleRecord.from_dict(json.loads(line))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            fail(f"{file}:{n}: not a sample record ({exc})")
        groups[rec.task, rec.generation.setting].append(rec)
    for (task, setting), recs in groups.items():
        gens = [r.generation for r in recs]
        budget = gens[0].thinking_budget if all(g.thinking_budget == gens[0].thinking_budget for g in gens) else None
        st = thinking_stats(gens, budget=budget, correct=[bool(r.correct) for r in recs])
        console.print(f"[bold]{task} · {setting}[/]")
        for line in st.lines():
            console.print("  " + line, highlight=False)


@app.command("tasks")
def tasks_() -> None:
    """List the benchmark tasks and where each loads from."""
    from s1.tasks import TASKS

    for name, task in TASKS.items():
        source = task.hub_id or "built in"
        console.print(f"[bold]{name}[/]  {source}  ({task.grader})  {task.description}", highlight=False)


@app.callback()
def main() -> None:
    """s1: simple test-time scaling."""


if __name__ == "__main__":
    app()
