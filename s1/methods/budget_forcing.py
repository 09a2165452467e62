"""Budget forcing as a compared method: a greedy shared-prefix sweep over thinking budgets and ignore counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from s1.forcing.sweep import run_sweep
from s1.grading.records import grade_records
from s1.methods.base import MethodWork, request_for, with_meta
from s1.methods.verifiers import Verifier
from s1.records import SampleRecord

if TYPE_CHECKING:
    from s1.backends.base import Backend
    from s1.methods.config import CompareConfig


def run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None:
    settings = config.bf_settings()
    for chunk in work.chunks(work.union()):
        result = run_sweep(backend, [request_for(item, config.system) for _, item in chunk], settings)
        records: list[SampleRecord] = []
        for n, (task, item) in enumerate(chunk):
            gens = result.generations[n * len(settings) : (n + 1) * len(settings)]
            records += grade_records(task, item, gens, config.grader_timeout)
        work.emit(with_meta(records, method="budget_forcing"))
