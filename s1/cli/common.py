"""What the `s1` commands share: the consoles, failing with a clear message, prompt files, printing a
generation, opening a run store and printing a run's report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s1.forcing.policy import AUTO
from s1.forcing.request import Request

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
    `id` and `images` (a list of image paths or URLs, placed before the text) optional. Every bad line
    is reported by number."""
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
        images = row.get("images", [])
        if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
            fail(f"{path}:{n}: 'images' must be a list of image paths or URLs")
        try:
            if key == "prompt":
                out.append(Request(rid, prompt=str(row["prompt"]), images=tuple(images)))
            else:
                out.append(Request(rid, messages=row[key], system=row.get("system"), images=tuple(images)))
        except ValueError as exc:
            fail(f"{path}:{n}: {exc}")
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


def open_store(run_dir: Path, resume: bool, manifest: dict | None = None):
    from s1.eval.store import RunStore, RunStoreError

    try:
        if manifest is None:
            return RunStore.open(run_dir, read_only=True)
        return RunStore.open_or_create(run_dir, manifest, resume=resume)
    except (RunStoreError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def report_run(run_dir: Path, plot: Path | None) -> Any:
    """Print a run's report (failures first, grouped, then the tables) and write its plot; returns the
    run's `Failures` so a command can exit with the truth."""
    from s1.eval.report import (
        category_summaries,
        failures,
        render,
        render_categories,
        render_methods,
        summarize,
        sweep_summaries,
    )
    from s1.eval.summary import equal_compute, method_curves, method_points

    records, manifest = read_run(run_dir)
    failed = failures(records)
    if failed.failed:
        for line in failed.lines():
            err.print(line, style="red", highlight=False)
    if manifest.get("kind") == "compare":
        curves = method_curves(method_points(records, manifest.get("parameters", {}).get("aggregate", "mean")))
        render_methods(curves, equal_compute(curves), console)
    else:
        rows = summarize(records)
        render(rows, sweep_summaries(rows), console)
        categories = category_summaries(records)
        if categories:
            render_categories(categories, console)
    if plot is not None:
        console.print(f"plot: {plot_run(records, manifest, plot, run_dir.name)}")
    return failed


def read_run(run_dir: Path) -> tuple[list[Any], dict[str, Any]]:
    """A run's records (as the store reads them: a resumed key once) and its manifest."""
    store = open_store(run_dir, resume=False)
    try:
        records, manifest = list(store.records()), dict(store.manifest)
    finally:
        store.close()
    if not records:
        fail(f"{run_dir} holds no samples yet")
    return records, manifest


def plot_run(records: list[Any], manifest: dict[str, Any], output: Path, title: str) -> Path:
    """A run's figure: accuracy vs thinking tokens, or accuracy vs compute per method for a comparison."""
    from s1.eval.plot import plot_methods, plot_scaling
    from s1.eval.report import summarize
    from s1.eval.summary import method_curves, method_points

    if manifest.get("kind") == "compare":
        how = manifest.get("parameters", {}).get("aggregate", "mean")
        return plot_methods(method_curves(method_points(records, how)), output, title=title)
    return plot_scaling(summarize(records), output, title=title)


def exit_for(failed: Any, allow_failures: bool, retry: str = "") -> None:
    """Exit 1 when samples failed (the lines above said which and why), unless a partial result is accepted.
    `retry` says how to run the failed ones again."""
    if failed.failed and allow_failures:
        err.print(f"accepted a partial result: {failed.failed} of {failed.total} samples failed (--allow-failures)",
                  highlight=False)
    elif failed.failed:
        err.print(f"{failed.failed} of {failed.total} samples failed; {retry + ', or ' if retry else ''}pass "
                  "--allow-failures to accept a partial result", style="red", highlight=False)
        raise typer.Exit(1)


def plan_run(engine: Any, configure: Callable[[int | None], Any]) -> tuple[Any, Any, int | None]:
    """(config, items, probed context) of an `s1 eval` / `s1 compare` run, before any model loads: the
    config's defaults follow the model's context length where it can be read without loading, and the
    items load first, so a bad task or setting fails at once."""
    from s1.eval.run import load_items
    from s1.forcing.policy import PolicyError
    from s1.tasks import HubUnavailableError

    try:
        engine.check()
        probed = engine.context_length()
        config = configure(probed)
        items = load_items(config)
    except (ValueError, PolicyError, FileNotFoundError, HubUnavailableError) as exc:
        fail(str(exc))
    return config, items, probed


def pick_run_dir(output: Path | None, resume: bool, manifest: dict[str, Any], default: Path,
                 quiet: bool = False) -> tuple[Path, bool]:
    """(run directory, whether it resumes a stored run). An explicit `--output` that holds a run needs
    `--resume` and the same settings (refused here, before anything loads). The default directory resumes
    the run it holds when that run has these settings, else the next numbered one starts fresh."""
    from s1.eval.run import choose_run_dir
    from s1.eval.store import RunStore, differing_keys, stored_manifest

    if output is not None:
        if not RunStore.exists(output):
            return output, False
        if not resume:
            fail(f"run dir {output} exists; pass --resume or choose another --output")
        stored = stored_manifest(output)
        differing = differing_keys(stored, manifest) if stored is not None else ["manifest"]
        if differing:
            fail(f"cannot resume {output}: the stored run differs in {', '.join(differing)}; rerun with the same "
                 "settings, or choose another --output")
        return output, True
    run_dir, resuming = choose_run_dir(default, manifest)
    if not quiet:
        if resuming:
            err.print(f"resuming {run_dir}: it holds a run with these settings", highlight=False)
        elif run_dir != default:
            err.print(f"{default} holds a run with other settings; this run goes to {run_dir}", highlight=False)
    return run_dir, resuming


def load_engine(engine: Any, seed: int) -> Any:
    """The backend, loaded, or a clear error."""
    from s1.forcing.policy import PolicyError

    try:
        with err.status("loading model..."):
            return engine.load(seed)
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))


def progress_bar() -> Any:
    """The progress bar of a long step: counts, elapsed time and an ETA, on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=err, transient=True)
