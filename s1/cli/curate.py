"""`s1 curate`: the s1K data pipeline, stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from s1.cli.common import console, err, fail

curate_app = typer.Typer(no_args_is_help=True, help="The s1K data pipeline: collect, decontaminate, traces, "
                         "featurize, select (each reads the previous stage's files in the config's out_dir).")
CurateConfigArg = Annotated[str, typer.Argument(help="A config file (TOML/JSON) or a shipped config name (s1k).")]
OutDirOpt = Annotated[Path | None, typer.Option(help="Override the config's out_dir.")]


def _curate(config: str, out_dir: Path | None, stages: tuple[str, ...], shard: str = "0/1") -> None:
    from s1.curate import CurateError, load_config, report_lines, run_stage
    from s1.curate.pipeline import model_factories

    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        fail(f"--shard must be i/n (e.g. 0/4), got {shard!r}")
    try:
        cfg = load_config(config, out_dir)
        models = model_factories(cfg)  # each model is built once, when a stage first needs it
        for stage in stages:
            with err.status(f"curate: {stage}..."):
                report = run_stage(cfg, stage, shard=(index, count), models=models)
            for line in report_lines(stage, report):
                console.print(line, highlight=False)
    except CurateError as exc:
        fail(str(exc))


@curate_app.command("collect")
def curate_collect(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Read every source into pool.jsonl (one schema: question, solution, cot_type, source_type, metadata)."""
    _curate(config, out_dir, ("collect",))


@curate_app.command("decontaminate")
def curate_decontaminate(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Drop items sharing a word 8-gram with the eval sets, then exact duplicates -> clean.jsonl, removed.jsonl."""
    _curate(config, out_dir, ("decontaminate",))


@curate_app.command("traces")
def curate_traces(config: CurateConfigArg, out_dir: OutDirOpt = None, shard: Annotated[str, typer.Option(
        help="This worker's share i/n of the questions (several workers, one cache file each).")] = "0/1") -> None:
    """Generate traces and attempts (teacher and weaker models), cached by question; resumable."""
    _curate(config, out_dir, ("traces",), shard)


@curate_app.command("featurize")
def curate_featurize(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Correctness (math-verify, optional LLM judge), MSC domain, trace length -> features.jsonl."""
    _curate(config, out_dir, ("featurize",))


@curate_app.command("select")
def curate_select(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Quality, difficulty and diversity selection (seeded) -> selected.jsonl/.parquet and summary.json."""
    _curate(config, out_dir, ("select",))


@curate_app.command("run")
def curate_run(config: CurateConfigArg, out_dir: OutDirOpt = None) -> None:
    """Every stage in order; a rerun reuses cached traces and LLM replies."""
    from s1.curate import STAGES

    _curate(config, out_dir, STAGES)
