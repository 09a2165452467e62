"""Per-source subsampling, after decontamination, as s1's `collect_data.py` does it.

s1 shuffles every source with `datasets.Dataset.shuffle(seed=42)` once it is decontaminated, and for
a source it caps (crosswords: 1,000) takes the first N of that order, less the questions of its keep
list, plus those. `s1_order` reproduces that shuffle (a NumPy `default_rng(seed).permutation`, which
is what `datasets` draws), so the same items in the same order give s1's sample.

SciEval is capped by s1's quota sampler (`select_examples_scieval`): a quota per task and per
SocraticQA topic, filled in one pass over the shuffled source. `quota_sample` reproduces it as
written, including two quirks that shape the result: every item's topic is among "the topics" (they
are collected over all tasks), so every item can fill a topic quota and each such pick also counts
against SocraticQA's quota; and an item that fills both a topic and a task quota is taken twice (the
final exact dedup keeps one copy, so fewer than N distinct items can come out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from s1.curate.io import CurateError, Row
from s1.curate.table import Table

METHODS = ("first", "quota")


@dataclass(frozen=True)
class Sample:
    """How a capped source is cut to its limit: `first` (s1's default) or `quota` (s1's SciEval sampler,
    by the metadata fields `by` (tasks), `sub_by` (topics) and `sub_of` (the task the topic quotas count
    against))."""

    method: str = "first"
    by: str | None = None
    sub_by: str | None = None
    sub_of: str | None = None

    @classmethod
    def from_table(cls, t: Table) -> Sample:
        out = cls(method=t.str("method", "first", choices=METHODS), by=t.str("by", None),
                  sub_by=t.str("sub_by", None), sub_of=t.str("sub_of", None))
        if out.method == "quota" and None in (out.by, out.sub_by, out.sub_of):
            raise CurateError(f"{t.where}: method 'quota' needs by, sub_by and sub_of (metadata fields and a task)")
        t.done()
        return out


def s1_order(items: list[Row], seed: int | None) -> list[Row]:
    """The items in `datasets.Dataset.shuffle(seed=seed)` order; unchanged when seed is None."""
    if seed is None:
        return list(items)
    import numpy as np

    return [items[i] for i in np.random.default_rng(seed).permutation(len(items))]


def subsample(items: list[Row], limit: int | None, sample: Sample, keep: frozenset[str],
              seed: int | None) -> list[Row]:
    """A decontaminated source as s1 keeps it: shuffled, then (with a limit) cut by `sample`'s method.
    May hold an item twice (s1's keep list and quota sampler can repeat one); the exact dedup that
    ends decontamination keeps the first."""
    if limit is None:
        return s1_order(items, seed)
    if sample.method == "quota":
        return quota_sample(items, limit, keep, seed, sample)
    shuffled = s1_order(items, seed)
    kept = [it for it in shuffled if it["question"] in keep]
    return shuffled[: max(0, limit - len(kept))] + kept


def _meta(item: Row, key: str) -> Any:
    return (item.get("metadata") or {}).get(key)


def quota_sample(items: list[Row], limit: int, keep: frozenset[str], seed: int | None, sample: Sample) -> list[Row]:
    """s1's `select_examples_scieval` (see the module docstring for what it does beyond a plain quota)."""
    by, sub_by, sub_of = sample.by or "", sample.sub_by or "", sample.sub_of or ""
    if not items:
        return []
    kept = [it for it in items if it["question"] in keep]
    n = limit - len(kept)
    tasks = {_meta(it, by) for it in items}
    task_quota = {task: math.ceil(n / len(tasks)) for task in tasks}
    if sub_of not in task_quota:
        raise CurateError(f"sample.sub_of: no item has {by} = {sub_of!r} (values: {sorted(map(str, tasks))})")
    topics = {_meta(it, sub_by) for it in items}
    topic_quota = {topic: math.ceil(task_quota[sub_of] / len(topics)) for topic in topics}
    chosen: list[Row] = []
    for it in s1_order(items, seed):
        topic, task = _meta(it, sub_by), _meta(it, by)
        if topic in topics and topic_quota[topic] > 0:
            chosen.append(it)
            topic_quota[topic] -= 1
            task_quota[sub_of] -= 1
        if task_quota[task] > 0:
            chosen.append(it)
            task_quota[task] -= 1
        if len(chosen) == n:
            break
    return chosen + kept
