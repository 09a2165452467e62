"""`s1 report`, `s1 plot`, `s1 stats`: what a finished (or running) run holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from s1.cli.common import compare_curves, console, fail, open_store, report_run


def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")]) -> None:
    """Accuracy +- CI and thinking tokens per task and setting; Control / Scaling / Performance per sweep."""
    report_run(run_dir, None)


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (.png, .pdf, .svg).")] = Path(
        "scaling.png"),
) -> None:
    """Accuracy vs average thinking tokens per task (the s1 paper's Figure 1)."""
    from s1.eval.plot import plot_scaling
    from s1.eval.report import summarize

    store = open_store(run_dir, resume=False)
    if store.manifest.get("kind") == "compare":
        from s1.eval.plot import plot_methods

        console.print(f"plot: {plot_methods(compare_curves(store, run_dir), output, title=run_dir.name)}")
        return
    rows = summarize(store.records())
    store.close()
    if not rows:
        fail(f"{run_dir} holds no samples yet")
    console.print(f"plot: {plot_scaling(rows, output, title=run_dir.name)}")


def stats(path: Annotated[Path, typer.Argument(help="samples.jsonl of a run (or the run directory).")]) -> None:
    """Thinking-token statistics per task and setting, as s1's compute_sample_stats.py prints them."""
    from collections import defaultdict

    from s1.metrics import thinking_stats
    from s1.records import SampleRecord

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
