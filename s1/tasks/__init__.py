"""Benchmark tasks: where each benchmark's data lives, what s1 prompts with, the gold answer, the grader.

    from s1.tasks import get_task, build_prompt, Control
    items = get_task("aime24").load("../shared/data", limit=5)
    prompt = build_prompt(items[0], Control("tokens", 1024))
"""

from s1.tasks.base import GRADERS, HubUnavailableError, Task, TaskDataError, TaskItem
from s1.tasks.prompts import (
    CLASS_CONDITIONAL,
    CONTROL_KINDS,
    STEP_CONDITIONAL,
    TOKEN_CONDITIONAL,
    Control,
    build_prompt,
    choice_question,
    format_choices,
    mathvista_query,
)
from s1.tasks.registry import TASKS, check_scope, get_task, load_task, task_names

__all__ = [
    "check_scope",
    "CLASS_CONDITIONAL",
    "CONTROL_KINDS",
    "GRADERS",
    "STEP_CONDITIONAL",
    "TASKS",
    "TOKEN_CONDITIONAL",
    "Control",
    "HubUnavailableError",
    "Task",
    "TaskDataError",
    "TaskItem",
    "build_prompt",
    "choice_question",
    "format_choices",
    "get_task",
    "load_task",
    "mathvista_query",
    "task_names",
]
