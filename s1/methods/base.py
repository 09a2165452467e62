"""What every test-time scaling method gets and gives back, so all share one signature:

    run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None

`work` holds the items still missing per setting label (a resumed comparison redoes only those), how
many items to run at a time, where finished records go (`emit`), and the records already stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from s1.forcing.request import Request
from s1.records import RecordKey, SampleRecord
from s1.tasks import Control, TaskItem, build_prompt

Work = list[tuple[str, TaskItem]]  # (task, item) pairs


@dataclass
class MethodWork:
    """A method's share of a comparison run.

    pending: per setting label, the (task, item) pairs with records still missing. chunk_items: items
    per engine batch. emit: stores finished records. stored: the records already stored (a resume).
    done: the keys already stored.
    """

    pending: dict[str, Work]
    chunk_items: int
    emit: Callable[[list[SampleRecord]], None]
    stored: Callable[[], Iterable[SampleRecord]]
    done: set[RecordKey]

    def chunks(self, work: Work, size: int | None = None) -> list[Work]:
        step = max(1, size or self.chunk_items)
        return [work[i : i + step] for i in range(0, len(work), step)]

    def union(self, labels: Iterable[str] | None = None) -> Work:
        """Items pending under any of `labels` (all by default), each once, in order."""
        seen: dict[tuple[str, str], tuple[str, TaskItem]] = {}
        for label in self.pending if labels is None else labels:
            for task, item in self.pending.get(label, []):
                seen.setdefault((task, item.id), (task, item))
        return list(seen.values())


def request_for(item: TaskItem, system: str | None, control: Control | None = None, sample: int = 0) -> Request:
    """The request that asks `item` (with a control sentence, when given)."""
    return Request(item.id, messages=build_prompt(item, control), system=system, sample_index=sample)


def with_meta(records: list[SampleRecord], **meta: Any) -> list[SampleRecord]:
    """The records with `meta` added to each generation's."""
    return [replace(r, generation=replace(r.generation, meta={**r.generation.meta, **meta})) for r in records]
