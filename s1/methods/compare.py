"""`s1 compare`: every test-time scaling method on the same questions, into one run store.

Methods (each writes one record per (task, item, sample, setting), so a killed run resumes with
exactly what is missing, like `s1 eval`):

- `budget_forcing`: a greedy shared-prefix sweep over thinking budgets and ignore counts;
- `voting`: `samples` sampled solutions per question, each graded, mapped to its answer's
  equivalence class and scored by every verifier; majority voting and (weighted) best-of-N at
  k = 1, 2, 4, ... are computed from them at report time (`s1.methods.summary`);
- `rebase`: one REBASE tree per question and width;
- `rejection`: rejection sampling per budget;
- `control`: conditional-control prompts, alone and with budget forcing on top.

Grading is the task's grader throughout; a failed generation is stored with its error and counts as
wrong.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from s1.backends.base import Request
from s1.budget import AUTO, BudgetPolicy, SamplingSettings
from s1.evaluate import Budget, check_scope, grade_records, scope_manifest
from s1.methods.control import ControlRun, control_runs
from s1.methods.rebase import SELECTIONS, RebaseConfig, Tree, rebase_search, select_leaf
from s1.methods.rejection import rejection_sample
from s1.methods.steps import split_steps
from s1.methods.sweep import run_sweep
from s1.methods.verifiers import AGGREGATIONS, Candidate, Verifier, parse_verifier_spec
from s1.methods.voting import canonical_answers
from s1.records import Generation
from s1.runs import RecordKey, RunStore, SampleRecord
from s1.tasks import Control, TaskItem, build_prompt

METHODS: tuple[str, ...] = ("budget_forcing", "voting", "rebase", "rejection", "control")
KIND = "compare"  # the manifest's `kind`: reports recognise a comparison run by it


def _positive_ints(name: str, values: Sequence[Any]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name}: give integers >= 1, got {tuple(values)!r}")


@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides a comparison's results (stored in the run manifest)."""

    model: str | None = None
    backend: str = "hf"
    tasks: tuple[str, ...] = ("synthetic",)
    data_dir: str | None = None
    limit: int | None = None
    methods: tuple[str, ...] = METHODS
    format: str = "auto"
    system: str | None = None
    max_answer_tokens: int = 16
    seed: int = 0
    grader_timeout: float = 5.0
    # budget forcing: greedy, one shared-prefix sweep
    budgets: tuple[Budget, ...] = (8, 16, 24, 32, 48, AUTO)
    num_ignore: tuple[int, ...] = (0, 1, 2)
    # sampling: voting / best-of-N samples, REBASE steps, rejection attempts
    samples: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    sample_budget: Budget = 128
    verifiers: tuple[str, ...] = ("confidence",)
    aggregate: str = "mean"
    step_separator: str = "\n"
    step_tag: str = " ки"
    # REBASE
    rebase_widths: tuple[int, ...] = (2, 4, 8)
    rebase_temperature: float = 0.2
    rebase_select: str = "weighted"
    max_depth: int = 32
    max_step_tokens: int = 64
    rebase_thinking_tokens: int = 128
    # rejection sampling
    rejection_budgets: tuple[int, ...] = (24, 32, 48)
    max_attempts: int = 8
    # conditional control
    controls: tuple[str, ...] = ("tokens=16", "tokens=32", "steps=2", "steps=4", "class=short", "class=long")
    control_forcing: bool = True
    step_tokens: int = 12

    def __post_init__(self) -> None:
        check_scope(self.tasks, self.limit)
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise ValueError(f"methods must be among {', '.join(METHODS)}, got {', '.join(self.methods) or 'none'}")
        _positive_ints("samples", [self.samples])
        _positive_ints("rebase_widths", self.rebase_widths)
        _positive_ints("rejection_budgets", self.rejection_budgets)
        _positive_ints("max_attempts", [self.max_attempts])
        _positive_ints("step_tokens", [self.step_tokens])
        if self.temperature <= 0 and any(m in self.methods for m in ("voting", "rebase", "rejection")):
            raise ValueError("temperature must be > 0 for voting, rebase and rejection sampling "
                             "(greedy samples would all be identical)")
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {self.aggregate!r}")
        if self.rebase_select not in SELECTIONS:
            raise ValueError(f"rebase_select must be one of {', '.join(SELECTIONS)}, got {self.rebase_select!r}")
        if any(m in self.methods for m in ("voting", "rebase")):
            if not self.verifiers:
                raise ValueError("verifiers: voting's best-of-N and rebase need at least one verifier")
            for spec in self.verifiers:
                parse_verifier_spec(spec)
        for spec in self.controls:
            Control.parse(spec)
        self.bf_settings()
        self.sample_policy()
        self.rebase_config(self.rebase_widths[0])

    # -- settings --------------------------------------------------------------------------------
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(temperature=self.temperature, top_p=self.top_p, seed=self.seed)

    def bf_settings(self) -> list[BudgetPolicy]:
        """The budget-forcing curve: every budget without ignores, then the largest budget extended by
        each ignore count (suppressing the end of thinking only matters once the cap does not bind)."""
        top = AUTO if AUTO in self.budgets else max(int(b) for b in self.budgets)
        pairs = [(b, 0) for b in self.budgets] + [(top, k) for k in self.num_ignore if k]
        return [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=self.max_answer_tokens)
                for b, k in dict.fromkeys(pairs)]

    def sample_policy(self) -> BudgetPolicy:
        return BudgetPolicy(max_thinking_tokens=self.sample_budget, max_answer_tokens=self.max_answer_tokens,
                            thinking=self.sampling())

    def rebase_config(self, width: int) -> RebaseConfig:
        return RebaseConfig(width=width, temperature=self.rebase_temperature, separator=self.step_separator,
                            max_depth=self.max_depth, max_step_tokens=self.max_step_tokens,
                            max_thinking_tokens=self.rebase_thinking_tokens, max_answer_tokens=self.max_answer_tokens,
                            aggregate=self.aggregate, select=self.rebase_select)

    def control_runs(self) -> list[ControlRun]:
        return control_runs([Control.parse(c) for c in self.controls], self.control_forcing, self.step_tokens)

    def labels(self) -> dict[str, list[tuple[str, int]]]:
        """Per method, the (setting label, samples per item) it stores."""
        out: dict[str, list[tuple[str, int]]] = {}
        if "budget_forcing" in self.methods:
            out["budget_forcing"] = [(p.label(), 1) for p in self.bf_settings()]
        if "voting" in self.methods:
            out["voting"] = [(sample_label(self.sample_policy()), self.samples)]
        if "rebase" in self.methods:
            out["rebase"] = [(f"rebase:W={w}", 1) for w in self.rebase_widths]
        if "rejection" in self.methods:
            out["rejection"] = [(f"rejection:think<={b}", 1) for b in self.rejection_budgets]
        if "control" in self.methods:
            out["control"] = [(run.label, 1) for run in self.control_runs()]
        return out

    def parameters(self) -> dict[str, Any]:
        skip = {"model", "backend", "tasks", "seed"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def sample_label(policy: BudgetPolicy) -> str:
    """The setting label of the voting / best-of-N samples, e.g. `sample:think<=128`."""
    return f"sample:{policy.label()}"


def manifest_for(config: CompareConfig, backend: Any, items: dict[str, list[TaskItem]]) -> dict[str, Any]:
    return {"kind": KIND, **scope_manifest(config, backend, items),
            "settings": {m: [label for label, _ in labels] for m, labels in config.labels().items()}}


@dataclass
class CompareProgress:
    """Record counts (total, stored before, made now, failed) and seconds spent per method."""

    total: int = 0
    done_before: int = 0
    generated: int = 0
    errors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


Work = list[tuple[str, TaskItem]]


def run_compare(config: CompareConfig, backend: Any, store: RunStore, items: dict[str, list[TaskItem]],
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
    done = store.done_keys()
    progress = CompareProgress()
    pending: dict[str, dict[str, Work]] = {}
    for method, method_labels in labels.items():
        pending[method] = {}
        for label, n in method_labels:
            work: Work = []
            for task, task_items in items.items():
                for item in task_items:
                    keys = [RecordKey(task, item.id, s, label) for s in range(n)]
                    progress.total += len(keys)
                    missing = sum(k not in done for k in keys)
                    progress.done_before += len(keys) - missing
                    if missing:
                        work.append((task, item))
            pending[method][label] = work
    if on_start:
        on_start(progress)

    def emit(method: str, records: list[SampleRecord]) -> None:
        fresh = [r for r in records if r.key not in done]
        store.append(fresh)
        done.update(r.key for r in fresh)
        progress.generated += len(fresh)
        progress.errors += sum(r.generation.error is not None for r in fresh)
        if on_records:
            on_records(method, len(fresh))

    runners = {
        "budget_forcing": lambda: _budget_forcing(config, backend, pending["budget_forcing"], chunk_items, emit),
        "voting": lambda: _voting(config, backend, store, pending["voting"], verifiers, done, chunk_items, emit),
        "rebase": lambda: _rebase(config, backend, pending["rebase"], verifiers, chunk_items, emit),
        "rejection": lambda: _rejection(config, backend, pending["rejection"], chunk_items, emit),
        "control": lambda: _control(config, backend, pending["control"], chunk_items, emit),
    }
    for method in labels:
        began = time.perf_counter()
        runners[method]()
        progress.seconds[method] = progress.seconds.get(method, 0.0) + time.perf_counter() - began
    return progress


Emit = Callable[[str, list[SampleRecord]], None]


def _chunks(work: Work, size: int) -> list[Work]:
    return [work[i : i + size] for i in range(0, len(work), size)]


def _request(config: CompareConfig, item: TaskItem, control: Control | None = None, sample: int = 0) -> Request:
    return Request(item.id, messages=build_prompt(item, control), system=config.system, sample_index=sample)


def _with_meta(records: list[SampleRecord], **meta: Any) -> list[SampleRecord]:
    for r in records:
        r.generation.meta = {**r.generation.meta, **meta}
    return records


def _union(pending: dict[str, Work]) -> Work:
    """Items pending in any of the labels, each once, in order."""
    seen: dict[tuple[str, str], tuple[str, TaskItem]] = {}
    for work in pending.values():
        for task, item in work:
            seen.setdefault((task, item.id), (task, item))
    return list(seen.values())


def _budget_forcing(config: CompareConfig, backend: Any, pending: dict[str, Work], chunk_items: int,
                    emit: Emit) -> None:
    settings = config.bf_settings()
    for chunk in _chunks(_union(pending), chunk_items):
        result = run_sweep(backend, [_request(config, item) for _, item in chunk], settings)
        records: list[SampleRecord] = []
        for n, (task, item) in enumerate(chunk):
            gens = result.generations[n * len(settings) : (n + 1) * len(settings)]
            records += grade_records(task, item, gens, config.grader_timeout)
        emit("budget_forcing", _with_meta(records, method="budget_forcing"))


def _candidates(item: TaskItem, gens: Sequence[Any], separator: str) -> list[Candidate]:
    return [Candidate(item.question, g.thinking, g.answer, separator) for g in gens]


def _voting(config: CompareConfig, backend: Any, store: RunStore, pending: dict[str, Work],
            verifiers: Sequence[Verifier], done: set[RecordKey], chunk_items: int, emit: Emit) -> None:
    policy = config.sample_policy()
    label = sample_label(policy)
    work = pending.get(label, [])
    if not work:
        return
    wanted = {(task, item.id) for task, item in work}
    known: dict[tuple[str, str], list[str]] = defaultdict(list)  # canonical answers stored before a resume
    for r in store.records():
        if r.generation.setting == label and (r.task, r.generation.prompt_id) in wanted:
            canonical = r.generation.meta.get("canonical")
            if canonical is not None:
                known[r.task, r.generation.prompt_id].append(canonical)
    for chunk in _chunks(work, max(1, chunk_items // config.samples)):
        requests = [replace(_request(config, item, sample=s), setting=label)
                    for task, item in chunk for s in range(config.samples)
                    if RecordKey(task, item.id, s, label) not in done]
        gens = backend.generate(requests, policy)
        records: list[SampleRecord] = []
        for task, item in chunk:
            mine = [g for g in gens if g.prompt_id == item.id]
            graded = grade_records(task, item, mine, config.grader_timeout)
            ok = [r for r in graded if r.generation.error is None]
            canon = canonical_answers(item.grader, [r.generation.answer for r in ok], [r.extracted for r in ok],
                                      item.metadata, config.grader_timeout, known[task, item.id])
            scored = {v.name: v.score(_candidates(item, [r.generation for r in ok], config.step_separator))
                      for v in verifiers}
            for r in graded:
                r.generation.meta = {"method": "sample"}
            for j, r in enumerate(ok):
                r.generation.meta.update({
                    "canonical": canon[j],
                    "scores": {name: list(s[j].scores) for name, s in scored.items()},
                    "score_errors": {name: s[j].error for name, s in scored.items() if s[j].error},
                })
            records += graded
        emit("voting", records)


def _rebase(config: CompareConfig, backend: Any, pending: dict[str, Work], verifiers: Sequence[Verifier],
            chunk_items: int, emit: Emit) -> None:
    verifier = verifiers[0]
    for width in config.rebase_widths:
        label = f"rebase:W={width}"
        rc = config.rebase_config(width)
        for chunk in _chunks(pending.get(label, []), chunk_items):  # all trees of a chunk grow together
            requests = [replace(_request(config, item), setting=label) for _, item in chunk]
            trees = rebase_search(backend, requests, [item.question for _, item in chunk], verifier, rc,
                                  config.sampling())
            records = [_tree_record(config, task, item, tree, rc, verifier.name)
                       for (task, item), tree in zip(chunk, trees, strict=True)]
            emit("rebase", records)


def _tree_record(config: CompareConfig, task: str, item: TaskItem, tree: Tree, rc: RebaseConfig,
                 verifier: str) -> SampleRecord:
    """The chosen leaf's generation, graded, with the whole tree's cost and leaves in `meta`."""
    leaves = [n for n in tree.leaves if n.id in tree.answers]
    gens = [tree.answers[n.id] for n in leaves]
    graded = grade_records(task, item, gens, config.grader_timeout)
    ok = [(n, r) for n, r in zip(leaves, graded, strict=True) if r.generation.error is None]
    canon = canonical_answers(item.grader, [r.generation.answer for _, r in ok], [r.extracted for _, r in ok],
                              item.metadata, config.grader_timeout)
    canonical = {n.id: c for (n, _), c in zip(ok, canon, strict=True)}
    chosen = select_leaf(tree, canonical, rc.select, rc.aggregate)
    by_id = {n.id: r for n, r in zip(leaves, graded, strict=True)}
    label = f"rebase:W={rc.width}"
    if chosen is None:  # no leaf produced an answer: keep the first leaf's record, graded as it is
        record = graded[0] if graded else SampleRecord(task, _empty(tree, label), False, None,
                                                       "the search produced no leaf", item.gold)
    else:
        record = by_id[chosen]
    record.generation = replace(record.generation, setting=label, sample_index=0, meta={
        "method": "rebase", "width": rc.width, "verifier": verifier, "select": rc.select,
        "aggregate": rc.aggregate, "generated_tokens": tree.generated_tokens,
        "thinking_tokens": tree.thinking_tokens, "nodes": len(tree.nodes), "widths": tree.widths(),
        "chosen": chosen, "score_errors": sorted({n.error for n in tree.nodes if n.error}),
        "leaves": [{"node": n.id, "depth": n.depth, "capped": n.capped, "weight": tree.leaf_weight(n, rc.aggregate),
                    "canonical": canonical.get(n.id), "correct": bool(by_id[n.id].correct)} for n in leaves],
    })
    return record


def _empty(tree: Tree, label: str) -> Generation:
    return Generation.failed(tree.request.id, "the search produced no leaf", setting=label)


def _rejection(config: CompareConfig, backend: Any, pending: dict[str, Work], chunk_items: int,
               emit: Emit) -> None:
    base = config.sample_policy()
    for budget in config.rejection_budgets:
        label = f"rejection:think<={budget}"
        for chunk in _chunks(pending.get(label, []), chunk_items):
            results = rejection_sample(backend, [_request(config, item) for _, item in chunk], budget,
                                       config.max_attempts, base)
            records: list[SampleRecord] = []
            for (task, item), res in zip(chunk, results, strict=True):
                (record,) = grade_records(task, item, [replace(res.generation, setting=label)], config.grader_timeout)
                if not res.accepted and record.generation.error is None:
                    record.correct, record.extracted = False, None
                    record.reason = f"no attempt ended its thinking within {budget} tokens ({res.attempts} attempts)"
                record.generation.meta = {"method": "rejection", "budget": budget, "attempts": res.attempts,
                                          "accepted": res.accepted, "generated_tokens": res.generated_tokens,
                                          "thinking_tokens": res.thinking_tokens}
                records.append(record)
            emit("rejection", records)


def _control(config: CompareConfig, backend: Any, pending: dict[str, Work], chunk_items: int, emit: Emit) -> None:
    runs = config.control_runs()
    by_control: dict[str, list[ControlRun]] = defaultdict(list)
    for run in runs:
        by_control[run.control.label].append(run)
    plain = BudgetPolicy(max_thinking_tokens=max(config.budgets, key=lambda b: float("inf") if b == AUTO else b),
                         max_answer_tokens=config.max_answer_tokens)
    for group in by_control.values():
        work = _union({run.label: pending.get(run.label, []) for run in group})
        settings = [plain if run.cap is None else plain.replace(max_thinking_tokens=run.cap) for run in group]
        for chunk in _chunks(work, chunk_items):
            result = run_sweep(backend, [_request(config, item, group[0].control) for _, item in chunk], settings)
            records: list[SampleRecord] = []
            for n, (task, item) in enumerate(chunk):
                gens = result.generations[n * len(group) : (n + 1) * len(group)]
                gens = [replace(g, setting=run.label, meta={
                    "method": "control", "control": run.control.label, "cap": run.cap, "group": run.group,
                    "steps": len(split_steps(g.thinking, config.step_separator))})
                        for g, run in zip(gens, group, strict=True)]
                records += grade_records(task, item, gens, config.grader_timeout)
            emit("control", records)
