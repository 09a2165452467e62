"""`s1 tasks`: the benchmark registry."""

from __future__ import annotations

from s1.cli.common import console


def tasks_() -> None:
    """List the benchmark tasks and where each loads from."""
    from s1.tasks import TASKS

    for name, task in TASKS.items():
        source = task.hub_id or "built in"
        console.print(f"[bold]{name}[/]  {source}  ({task.grader})  {task.description}", highlight=False)
