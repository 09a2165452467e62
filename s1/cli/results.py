"""`s1 report`, `s1 plot`, `s1 stats`: what a finished (or running) run holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from s1.cli.common import console, fail, open_store, plot_run, read_run, report_run
from s1.records import SampleRecord


def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")]) -> None:
    """Accuracy +- CI and thinking tokens per task and setting; Control / Scaling / Performance per sweep."""
    report_run(run_dir, None)


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `s1 eval`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Image file (.png, .pdf, .svg).")] = Path(
        "scaling.png"),
) -> None:
    """Accuracy vs average thinking tokens per task (the s1 paper's Figure 1)."""
    records, manifest = read_run(run_dir)
    console.print(f"plot: {plot_run(records, manifest, output, run_dir.name)}")


def stats(path: Annotated[Path, typer.Argument(help="samples.jsonl of a run (or the run directory).")]) -> None:
    """Thinking-token statistics per task and setting, as s1's compute_sample_stats.py prints them."""
    from collections import defaultdict

    from s1.metrics import no_answer, thinking_stats

    records = _records_at(path)
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for rec in records:
        groups[rec.task, rec.generation.setting].append(rec)
    for (task, setting), recs in groups.items():
        gens = [r.generation for r in recs]
        budget = gens[0].thinking_budget if all(g.thinking_budget == gens[0].thinking_budget for g in gens) else None
        st = thinking_stats(gens, budget=budget, correct=[bool(r.correct) for r in recs],
                            answerless=[no_answer(r) for r in recs])
        console.print(f"[bold]{task} · {setting}[/]")
        for line in st.lines():
            console.print("  " + line, highlight=False)


def _records_at(path: Path) -> list[SampleRecord]:
    """The records of a run directory (or its samples.jsonl) as the run store reads them: a resumed key
    counts once, as in `s1 report`; a lone samples file is read line by line."""

    run_dir = path if path.is_dir() else path.parent
    if (run_dir / "manifest.json").is_file() and (path.is_dir() or path.name == "samples.jsonl"):
        store = open_store(run_dir, resume=False)
        try:
            return list(store.records())
        finally:
            store.close()
    if not path.is_file():
        fail(f"no samples file at {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SampleRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            fail(f"{path}:{n}: not a sample record ({exc})")
    return out
