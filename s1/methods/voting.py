"""Majority voting (self-consistency) over answers grouped by the grader's equivalence.

Raw strings undercount agreement: `143`, `143.` and `0143` are one answer to the synthetic grader, and
`1/2`, `0.5` and `\\frac{1}{2}` one answer to math-verify. So before a vote every sample's answer is
mapped to the representative of its equivalence class: an answer joins the first class whose
representative the grader would accept as the gold answer for it, else it starts a new class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from s1.forcing.policy import BudgetPolicy
from s1.grading import grade_many
from s1.grading.records import grade_records
from s1.methods.base import MethodWork, request_for
from s1.methods.verifiers import Candidate, Verifier
from s1.records import RecordKey, SampleRecord

if TYPE_CHECKING:
    from s1.backends.base import Backend
    from s1.methods.config import CompareConfig


def canonical_answers(grader: str, answers: Sequence[str | None], extracted: Sequence[str | None],
                      metadata: Mapping[str, Any] | None = None, timeout: float = 5.0,
                      known: Sequence[str] = ()) -> list[str | None]:
    """The representative of each sample's equivalence class (None where no answer was extracted).

    `answers` are the answer texts (what the grader reads), `extracted` what it extracted from each.
    `known` are representatives already in use for this question (e.g. from samples stored before a
    resume), tried first so that old and new samples share classes. Classes are formed in order: an
    answer is compared (by the grader, with the representative as gold) with every class so far.
    """
    if len(answers) != len(extracted):
        raise ValueError(f"answers ({len(answers)}) and extracted ({len(extracted)}) must have the same length")
    reps: list[str] = list(dict.fromkeys(known))
    out: list[str | None] = []
    for text, found in zip(answers, extracted, strict=True):
        if found is None:
            out.append(None)
            continue
        if found in reps:
            out.append(found)
            continue
        verdicts = grade_many(grader, [(text, rep, metadata) for rep in reps], timeout) if reps else []
        match = next((rep for rep, v in zip(reps, verdicts, strict=True) if v.correct), None)
        if match is None:
            reps.append(found)
            match = found
        out.append(match)
    return out


def weighted_vote(keys: Sequence[Hashable | None], weights: Sequence[float] | None = None,
                  k: int | None = None) -> int | None:
    """Index of the sample whose answer wins among the first k (all when None): the answer with the
    largest total weight (every weight 1: plain majority). `None` answers never vote; ties go to the
    answer seen first, and the index returned is that answer's first sample. None when nobody voted."""
    if weights is not None and len(weights) != len(keys):
        raise ValueError(f"weights ({len(weights)}) must match keys ({len(keys)})")
    k = len(keys) if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(keys):
        raise ValueError(f"k must be an integer in 1..{len(keys)}, got {k!r}")
    totals: dict[Hashable, float] = {}
    first: dict[Hashable, int] = {}
    for i in range(k):
        key = keys[i]
        if key is None:
            continue
        totals[key] = totals.get(key, 0.0) + (1.0 if weights is None else float(weights[i]))
        first.setdefault(key, i)
    if not totals:
        return None
    return first[max(totals, key=totals.__getitem__)]  # max keeps the first of equal totals


def vote_sizes(ks: Sequence[int] | None, n: int) -> list[int]:
    """The k of a maj@k curve: the given ones (each <= n), or 1, 2, 4, ... up to n, and n itself."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"samples must be an integer >= 1, got {n!r}")
    if ks is None:
        out = [1]
        while out[-1] * 2 <= n:
            out.append(out[-1] * 2)
        return sorted({*out, n})
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n]
    if bad:
        raise ValueError(f"vote sizes must be integers in 1..{n} (the samples per question), got {bad}")
    return sorted(set(ks))


def sample_label(policy: BudgetPolicy) -> str:
    """The setting label of the voting / best-of-N samples, e.g. `sample:think<=128`."""
    return f"sample:{policy.label()}"


def run(work: MethodWork, config: CompareConfig, backend: Backend, verifiers: Sequence[Verifier]) -> None:
    """`samples` sampled solutions per question, each graded, mapped to its answer's equivalence class
    (`canonical` in meta) and scored by every verifier; maj@k and best-of-k come from them at report time."""
    policy = config.sample_policy()
    label = sample_label(policy)
    pending = work.pending.get(label, [])
    if not pending:
        return
    wanted = {(task, item.id) for task, item in pending}
    known: dict[tuple[str, str], list[str]] = defaultdict(list)  # canonical answers stored before a resume
    for r in work.stored():
        if r.generation.setting == label and (r.task, r.generation.prompt_id) in wanted:
            canonical = r.generation.meta.get("canonical")
            if canonical is not None:
                known[r.task, r.generation.prompt_id].append(canonical)
    for chunk in work.chunks(pending, max(1, work.chunk_items // config.samples)):
        requests = [replace(request_for(item, config.system, sample=s), setting=label)
                    for task, item in chunk for s in range(config.samples)
                    if RecordKey(task, item.id, s, label) not in work.done]
        gens = backend.generate(requests, policy)
        records: list[SampleRecord] = []
        for task, item in chunk:
            mine = [g for g in gens if g.prompt_id == item.id]
            graded = grade_records(task, item, mine, config.grader_timeout)
            ok = [r for r in graded if r.generation.error is None]
            canon = canonical_answers(item.grader, [r.generation.answer for r in ok], [r.extracted for r in ok],
                                      item.metadata, config.grader_timeout, known[task, item.id])
            scored = {v.name: v.score([Candidate(item.question, r.generation.thinking, r.generation.answer,
                                                 config.step_separator) for r in ok])
                      for v in verifiers}
            facts = {id(r): {"canonical": canon[j], "scores": {name: list(s[j].scores) for name, s in scored.items()},
                             "score_errors": {name: s[j].error for name, s in scored.items() if s[j].error}}
                     for j, r in enumerate(ok)}
            records += [replace(r, generation=replace(r.generation, meta={"method": "sample", **facts.get(id(r), {})}))
                        for r in graded]
        work.emit(records)
