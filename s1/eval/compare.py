"""`s1 compare`: every test-time scaling method on the same questions, into one run store.

Methods (each writes one record per (task, item, sample, setting), so a killed run resumes with
exactly what is missing, like `s1 eval`):

- `budget_forcing`: a greedy shared-prefix sweep over thinking budgets and ignore counts;
- `voting`: `samples` sampled solutions per question, each graded, mapped to its answer's
  equivalence class and scored by every verifier; majority voting and (weighted) best-of-N at
  k = 1, 2, 4, ... are computed from them at report time (`s1.eval.summary`);
- `rebase`: one REBASE tree per question and width;
- `rejection`: rejection sampling per budget;
- `control`: conditional-control prompts, alone and with budget forcing on top.

Grading is the task's grader throughout; a failed generation is stored with its error and counts as
wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from s1.backends.base import Backend
from s1.eval.run import scope_manifest
from s1.eval.store import RunStore
from s1.methods import method
from s1.methods.base import MethodWork, Work
from s1.methods.config import CompareConfig
from s1.methods.verifiers import Verifier
from s1.records import RecordKey, SampleRecord
from s1.tasks import TaskItem

__all__ = ["KIND", "CompareConfig", "CompareProgress", "manifest_for", "run_compare"]

KIND = "compare"  # the manifest's `kind`: reports recognise a comparison run by it


def manifest_for(config: CompareConfig, items: dict[str, list[TaskItem]], format_name: str | None = None
                 ) -> dict[str, Any]:
    return {"kind": KIND, **scope_manifest(config, items, format_name),
            "settings": {m: [label for label, _ in labels] for m, labels in config.labels().items()}}


@dataclass
class CompareProgress:
    """Record counts (total, stored before, made now, failed) and seconds spent per method."""

    total: int = 0
    done_before: int = 0
    generated: int = 0
    errors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def run_compare(config: CompareConfig, backend: Backend, store: RunStore, items: dict[str, list[TaskItem]],
                verifiers: Sequence[Verifier] = (), chunk_items: int = 16,
                on_start: Callable[[CompareProgress], None] | None = None,
                on_records: Callable[[str, int], None] | None = None) -> CompareProgress:
    """Run every method's pending records and store them. `on_start` sees the totals before any work,
    `on_records(method, n)` each appended batch."""
    labels = config.labels()
    names = [v.name for v in verifiers]
    if len(set(names)) != len(names):
        raise ValueError(f"verifiers: each needs its own name (they label the scores), got {names}")
    if "rebase" in labels and not verifiers:
        raise ValueError("verifiers: rebase needs a verifier to score its nodes")
    done = store.done_keys(include_failed=False)  # a failed record is retried
    progress = CompareProgress()
    pending: dict[str, dict[str, Work]] = {}
    for name, method_labels in labels.items():
        pending[name] = {}
        for label, n in method_labels:
            todo: Work = []
            for task, task_items in items.items():
                for item in task_items:
                    keys = [RecordKey(task, item.id, s, label) for s in range(n)]
                    progress.total += len(keys)
                    missing = sum(k not in done for k in keys)
                    progress.done_before += len(keys) - missing
                    if missing:
                        todo.append((task, item))
            pending[name][label] = todo
    if on_start:
        on_start(progress)

    def emit(name: str, records: list[SampleRecord]) -> None:
        fresh = [r for r in records if r.key not in done]
        store.append(fresh)
        done.update(r.key for r in fresh)
        progress.generated += len(fresh)
        progress.errors += sum(r.generation.error is not None for r in fresh)
        if on_records:
            on_records(name, len(fresh))

    for name in labels:
        began = time.perf_counter()
        work = MethodWork(pending[name], chunk_items, lambda records, name=name: emit(name, records), store.records,
                          done)
        method(name)(work, config, backend, verifiers)
        progress.seconds[name] = progress.seconds.get(name, 0.0) + time.perf_counter() - began
    return progress


