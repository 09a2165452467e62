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


def report_run(run_dir: Path, plot: Path | None) -> None:
    from s1.eval.report import category_summaries, render, render_categories, summarize, sweep_summaries

    store = open_store(run_dir, resume=False)
    if store.manifest.get("kind") == "compare":
        report_compare(store, run_dir, plot)
        return
    records = list(store.records())
    rows = summarize(records)
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    render(rows, sweep_summaries(rows), console)
    categories = category_summaries(records)
    if categories:
        render_categories(categories, console)
    if plot is not None:
        from s1.eval.plot import plot_scaling

        console.print(f"plot: {plot_scaling(rows, plot, title=str(run_dir.name))}")


def compare_curves(store, run_dir: Path) -> list:
    """A comparison run's method curves (`s1.eval.summary`), read from its store (closed here)."""
    from s1.eval.summary import method_curves, method_points

    how = store.manifest.get("parameters", {}).get("aggregate", "mean")
    points = method_points(store.records(), how)
    store.close()
    if not points:
        fail(f"{run_dir} holds no samples yet")
    return method_curves(points)


def report_compare(store, run_dir: Path, plot: Path | None) -> None:
    from s1.eval.report import render_methods
    from s1.eval.summary import equal_compute

    curves = compare_curves(store, run_dir)
    render_methods(curves, equal_compute(curves), console)
    if plot is not None:
        from s1.eval.plot import plot_methods

        console.print(f"plot: {plot_methods(curves, plot, title=str(run_dir.name))}")




def configured_run(engine: Any, configure: Callable[[int | None], Any], seed: int) -> tuple[Any, Any, Any]:
    """(config, items, backend) of an `s1 eval` / `s1 compare` run: the config's defaults follow the model's
    context length (read without loading when possible), its items load before the model does (a bad
    task fails fast), and the model loads last."""
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
    try:
        with err.status("loading model..."):
            backend = engine.load(seed)
        if backend.context_length != probed:  # the defaults follow what the loaded model says
            config = configure(backend.context_length)
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))
    return config, items, backend
