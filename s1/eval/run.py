"""`s1 eval`: tasks -> prompts -> a budget sweep on a backend -> grades -> the run store.

Work is done in chunks of items; each chunk is generated (one shared-prefix sweep over every
setting), graded and appended to the run store before the next starts, so a killed run loses at
most the chunk in flight and `resume` redoes exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from s1.backends.base import Backend
from s1.eval.store import RunStore, differing_keys, items_hash, stored_manifest
from s1.forcing.policy import AUTO, Budget, BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Request
from s1.forcing.sequence import check_fits, thinking_budget
from s1.forcing.sweep import run_sweep
from s1.grading.records import grade_records
from s1.records import RecordKey, SampleRecord
from s1.tasks import Control, TaskItem, build_prompt, check_scope, get_task
from s1.tasks.mathvista_images import item_categories, item_images

LATER_FIELDS = frozenset({"repetition_penalty", "presence_penalty", "frequency_penalty", "min_tokens_after_ignore",
                          "protocol", "protocol_overrides"})


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides an evaluation's results (stored in the run manifest)."""

    model: str | None = None
    backend: str = "hf"
    tasks: tuple[str, ...] = ("synthetic",)
    data_dir: str | None = None
    limit: int | None = None
    budgets: tuple[Budget, ...] = (AUTO,)
    num_ignore: tuple[int, ...] = (0,)
    ignore_strings: tuple[str, ...] | None = None
    min_thinking_tokens: int = 0
    max_answer_tokens: int | str = 1024
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    control: str | None = None
    format: str = "auto"
    system: str | None = None
    grader_timeout: float = 5.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    min_tokens_after_ignore: int = 0
    protocol: str | None = None  # a reference's protocol (`s1.forcing.protocols`): its own round loop
    protocol_overrides: tuple[str, ...] = ()  # settings given explicitly over the protocol's

    def __post_init__(self) -> None:
        check_scope(self.tasks, self.limit)
        if not self.budgets:
            raise ValueError("budgets: give at least one budget (an integer >= 1 or 'auto')")
        for b in self.budgets:
            if b != AUTO and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
                raise ValueError(f"budgets: each budget must be an integer >= 1 or 'auto', got {b!r}")
        if not self.num_ignore or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in self.num_ignore):
            raise ValueError(f"num_ignore: give integers >= 0, got {self.num_ignore!r}")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {self.samples!r}")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("samples > 1 needs temperature > 0 (greedy samples would all be identical)")
        if self.control is not None:
            Control.parse(self.control)
        self.settings()  # every policy validates

    def settings(self) -> list[BudgetPolicy]:
        """One policy per (budget, num_ignore), budgets outermost; labels name them in the run store."""
        sampling = SamplingSettings(temperature=self.temperature, top_p=self.top_p, seed=self.seed,
                                    repetition_penalty=self.repetition_penalty,
                                    presence_penalty=self.presence_penalty, frequency_penalty=self.frequency_penalty)
        return [
            BudgetPolicy(max_thinking_tokens=b, num_ignore=k, ignore_strings=self.ignore_strings,
                         min_thinking_tokens=self.min_thinking_tokens, max_answer_tokens=self.max_answer_tokens,
                         min_tokens_after_ignore=self.min_tokens_after_ignore, thinking=sampling,
                         protocol=self.protocol)
            for b in self.budgets for k in self.num_ignore
        ]

    def parameters(self) -> dict[str, Any]:
        """The result-changing parameters, as the manifest stores them (model/backend/tasks apart). Settings
        added since manifests were first written are recorded when they differ from their default, so a run
        written before them still resumes."""
        skip = {"model", "backend", "tasks", "seed"}
        defaults = EvalConfig.__dataclass_fields__
        return {k: v for k, v in asdict(self).items()
                if k not in skip and not (k in LATER_FIELDS and v == defaults[k].default)}


@dataclass
class EvalProgress:
    """Counts for progress display and the final summary."""

    total: int = 0
    done_before: int = 0
    generated: int = 0
    errors: int = 0
    think_seconds: float = 0.0
    branch_seconds: float = 0.0


def parse_budgets(text: str) -> tuple[Budget, ...]:
    """`256,512,auto` -> (256, 512, 'auto'), with an error naming the bad entry."""
    out: list[Budget] = []
    for part in (p.strip() for p in text.split(",")):
        if part == AUTO:
            out.append(AUTO)
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"budgets: {part!r} is not an integer or 'auto'") from None
        if value < 1:
            raise ValueError(f"budgets: each budget must be an integer >= 1 or 'auto', got {value}")
        out.append(value)
    return tuple(out)


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise ValueError(f"{name}: values must be >= 0, got {text!r}")
    return values


class RunScope(Protocol):
    """What `s1 eval` and `s1 compare` configs share: which items, of which tasks, on which model."""

    model: str | None
    backend: str
    tasks: tuple[str, ...]
    data_dir: str | None
    limit: int | None
    seed: int
    format: str

    def parameters(self) -> dict[str, Any]: ...


def load_items(config: RunScope) -> dict[str, list[TaskItem]]:
    return {name: get_task(name).load(config.data_dir, limit=config.limit, seed=config.seed) for name in config.tasks}


def scope_manifest(config: RunScope, items: dict[str, list[TaskItem]], format_name: str | None = None
                   ) -> dict[str, Any]:
    """The manifest fields every run shares: model, backend, tasks, parameters, seeds, dataset hashes. Known
    before the model loads, so a run directory can be chosen (or refused) first."""
    return {
        "model": config.model or "tiny (embedded default)",
        "backend": config.backend,
        "tasks": list(config.tasks),
        "parameters": config.parameters(),
        "seeds": {"sampling": config.seed, "tasks": config.seed},
        "datasets": {name: items_hash((it.id, it.question, it.gold) for it in task_items)
                     for name, task_items in items.items()},
        "reasoning_format": format_name or config.format,
    }


def manifest_for(config: EvalConfig, items: dict[str, list[TaskItem]], format_name: str | None = None
                 ) -> dict[str, Any]:
    return {**scope_manifest(config, items, format_name), "settings": [p.label() for p in config.settings()]}


def choose_run_dir(base: Path, manifest: dict[str, Any]) -> tuple[Path, bool]:
    """Where a run with `manifest` goes when the user named no directory: `base` (or `base-2`, `base-3`, ...)
    holding a run with the same identity, to resume (True); else the first such name not taken (False)."""
    for n in range(1, 10_000):
        run_dir = base if n == 1 else base.with_name(f"{base.name}-{n}")
        stored = stored_manifest(run_dir)
        if stored is None and not RunStore.exists(run_dir):
            return run_dir, False
        if stored is not None and not differing_keys(stored, manifest):
            return run_dir, True
    raise RuntimeError(f"no free run directory next to {base}")


def check_fit(config: EvalConfig, backend: Backend, items: dict[str, list[TaskItem]]) -> None:
    """Refuse, before anything is generated, a setting that cannot fit the model's context for every prompt
    (a sweep thinks once at its largest setting, so one impossible budget would fail them all). The
    message names the setting, the context, the longest prompt and the fix."""
    if backend.context_length is None:
        return
    control = Control.parse(config.control) if config.control else None
    problems: dict[str, str] = {}
    for task_items in items.values():
        first = [_requests(item, config, control)[0] for item in task_items]
        for policy, label in zip(resolved_settings(config, backend, task_items, control),
                                 [p.label() for p in config.settings()], strict=True):
            longest = max((n for n in backend.prompt_tokens(first, policy) if n is not None), default=None)
            if longest is None or label in problems:
                continue
            tokens = backend.forcing_tokens(policy)
            try:
                budget = thinking_budget(policy, tokens, backend.context_length, longest)
                check_fits(policy, tokens, backend.context_length, longest, budget)
            except PolicyError as exc:
                problems[label] = f"{label}: {exc}"
    if problems:
        raise PolicyError("settings that cannot run on this model: " + "; ".join(problems.values()) + ". Use "
                          "budgets that fit (or 'auto', which fits each prompt) or a smaller --max-answer-tokens")


def _requests(item: TaskItem, config: EvalConfig, control: Control | None) -> list[Request]:
    prompt = build_prompt(item, control)
    images = item_images(item)  # MathVista: the figure goes before the question (S1-M)
    return [Request(item.id, messages=prompt, system=config.system, sample_index=s, images=images)
            for s in range(config.samples)]


def pending_work(config: EvalConfig, items: dict[str, list[TaskItem]], done: set[RecordKey]
                 ) -> tuple[list[tuple[str, TaskItem]], EvalProgress]:
    """The (task, item) pairs with a sample still missing from `done`, and the totals."""
    labels = [p.label() for p in config.settings()]
    progress = EvalProgress()
    work: list[tuple[str, TaskItem]] = []
    for task, task_items in items.items():
        for item in task_items:
            keys = [RecordKey(task, item.id, s, label) for s in range(config.samples) for label in labels]
            progress.total += len(keys)
            missing = sum(k not in done for k in keys)
            progress.done_before += len(keys) - missing
            if missing:
                work.append((task, item))
    return work, progress


def evaluate(config: EvalConfig, backend: Backend, store: RunStore, items: dict[str, list[TaskItem]],
             chunk_items: int = 16, on_chunk: Callable[[int], None] | None = None,
             on_start: Callable[[EvalProgress], None] | None = None, retry_failed: bool = True) -> EvalProgress:
    """Run every pending (task, item, sample, setting) and store it; returns the counts. A sample whose
    stored record failed is pending again unless `retry_failed` is off. `on_start` sees the totals (and
    what the store already had) before any work; `on_chunk` each chunk's new samples."""
    check_fit(config, backend, items)
    settings = config.settings()
    labels = [p.label() for p in settings]
    control = Control.parse(config.control) if config.control else None
    done = store.done_keys(include_failed=not retry_failed)
    work, progress = pending_work(config, items, done)
    if on_start:
        on_start(progress)
    for task in items:
        task_work = [(t, item) for t, item in work if t == task]
        policies = resolved_settings(config, backend, [item for _, item in task_work], control)
        for start in range(0, len(task_work), chunk_items):
            chunk = task_work[start : start + chunk_items]
            requests = [r for _, item in chunk for r in _requests(item, config, control)]
            result = run_sweep(backend, requests, policies, labels)
            progress.think_seconds += result.think_seconds
            progress.branch_seconds += result.branch_seconds
            per_item = config.samples * len(settings)
            records: list[SampleRecord] = []
            for n, (task_name, item) in enumerate(chunk):
                gens = result.generations[n * per_item : (n + 1) * per_item]
                categories = item_categories(item)
                if categories:  # per-category accuracy in reports (MathVista: question / answer type, skills)
                    gens = [replace(g, meta={**g.meta, "categories": categories}) for g in gens]
                records += grade_records(task_name, item, gens, config.grader_timeout)
            fresh = [r for r in records if r.key not in done]
            store.append(fresh)
            done.update(r.key for r in fresh)
            progress.generated += len(fresh)
            progress.errors += sum(r.generation.error is not None for r in fresh)
            if on_chunk:
                on_chunk(len(fresh))
    return progress


def resolved_settings(config: EvalConfig, backend: Backend, task_items: list[TaskItem],
                      control: Control | None) -> list[BudgetPolicy]:
    """The sweep's policies for one task. Under `--protocol s1`, `auto` is s1's formula over the longest
    prompt of the task (the reproducible stand-in for the lm-eval batch it was computed over); the setting
    keeps its label `think<=auto`."""
    settings = config.settings()
    if config.protocol != "s1" or not task_items:
        return settings
    requests = [_requests(item, config, control)[0] for item in task_items]
    return [backend.resolve_protocol(requests, p) for p in settings]


def run_dir_default(config: EvalConfig) -> Path:
    name = (config.model or "tiny").rstrip("/").split("/")[-1].replace(".gguf", "")
    return Path("runs") / f"{name}-{'-'.join(config.tasks)}"
