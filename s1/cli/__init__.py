"""The `s1` command: one module per command, parsing and printing only; the engine and backend options
are one shared group (`options`)."""

from __future__ import annotations

import typer

from s1.cli.compare import compare
from s1.cli.curate import curate_app
from s1.cli.evaluate import eval_
from s1.cli.generate import generate
from s1.cli.results import plot, report, stats
from s1.cli.serve import serve
from s1.cli.tasks import tasks_
from s1.cli.train import train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test-time scaling for reasoning models: budget forcing, evaluation, curation, SFT.")
app.command()(generate)
app.command()(train)
app.command("eval")(eval_)
app.command()(compare)
app.command()(report)
app.command()(plot)
app.command()(stats)
app.command()(serve)
app.command("tasks")(tasks_)
app.add_typer(curate_app, name="curate")


@app.callback()
def main() -> None:
    """s1: simple test-time scaling."""


__all__ = ["app"]
