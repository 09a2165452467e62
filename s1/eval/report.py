"""Summaries of a run: per task and setting, accuracy with its CI and thinking-token statistics; per
task, the s1 paper's Control / Scaling / Performance over the budget sweep."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from s1.metrics import (
    SweepPoint,
    accuracy_ci,
    cap_hit,
    control,
    forced_thinking_tokens,
    maj_at_k,
    mean_pass_at_k,
    no_answer,
    performance,
    scaling,
    thinking_tokens,
    total_thinking_tokens,
    unclosed,
)
from s1.records import Generation, SampleRecord


@dataclass(frozen=True)
class SettingSummary:
    """One (task, setting) row of a report."""

    task: str
    setting: str
    budget: int | None  # the requested thinking cap (None: auto / unconstrained)
    num_ignore: int
    samples: int  # records, errors included
    errors: int  # failed samples (counted as wrong in `accuracy`)
    accuracy: float  # over every sample asked for
    ci_low: float
    ci_high: float
    thinking_tokens: float  # mean sampled thinking tokens of the successful records (what the budget counts)
    forced_tokens: float  # mean forced ignore-string tokens in the thinking
    total_thinking_tokens: float  # sampled + forced: s1's own count
    answer_tokens: float
    cap_hit: float  # share of successful records whose thinking was cut by the budget
    unclosed: float  # share whose thinking never ended (no closer, no cap)
    no_answer: float  # share of successful records whose grader found no answer
    pass_at_n: float | None  # with several samples per item
    maj_at_n: float | None
    n_per_item: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Failures:
    """The failed samples of a run: how many of all, and their errors grouped (most common first; a group
    is one message with its numbers ignored, shown by its first example)."""

    failed: int
    total: int
    groups: list[tuple[str, int]]

    def lines(self, most: int = 5) -> list[str]:
        out = [f"{self.failed} of {self.total} samples failed:"]
        out += [f"  {n} x {message}" for message, n in self.groups[:most]]
        if len(self.groups) > most:
            rest = self.groups[most:]
            out.append(f"  ... and {sum(n for _, n in rest)} more in {len(rest)} other groups")
        return out


def failures(records: Iterable[SampleRecord | Generation]) -> Failures:
    """Count and group the failed samples (a failed sample is wrong in `accuracy`; this says why)."""
    total, examples, counts = 0, {}, Counter()
    for r in records:
        total += 1
        error = r.generation.error if isinstance(r, SampleRecord) else r.error
        if error is not None:
            key = re.sub(r"\d+", "N", error)
            examples.setdefault(key, error)
            counts[key] += 1
    return Failures(sum(counts.values()), total, [(examples[k], n) for k, n in counts.most_common()])


@dataclass(frozen=True)
class SweepSummary:
    """The paper's sweep metrics for one task and one num_ignore value (a curve over budgets), computed
    from the settings that ran; `missing` counts settings left out because every sample failed."""

    task: str
    num_ignore: int
    points: int
    control: float | None
    scaling: float | None  # accuracy per doubling of thinking tokens (log2 x), in accuracy points
    performance: float | None
    missing: int = 0


def budget_and_ignores(record: SampleRecord) -> tuple[int | None, int]:
    """(the requested thinking cap, or None for auto / no cap; num_ignore) from a record's setting fields."""
    g = record.generation
    return (g.max_thinking_tokens if isinstance(g.max_thinking_tokens, int) else None), g.num_ignore


def summarize(records: Iterable[SampleRecord]) -> list[SettingSummary]:
    """One row per (task, setting), in first-seen order; accuracy counts failed samples as wrong."""
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for r in records:
        groups[r.task, r.generation.setting].append(r)
    rows = []
    for (task, setting), recs in groups.items():
        ok = [r for r in recs if r.generation.error is None]
        correct = [bool(r.correct) and r.generation.error is None for r in recs]
        mean, low, high = accuracy_ci(correct)
        by_item: dict[str, list[SampleRecord]] = defaultdict(list)
        for r in recs:
            by_item[r.generation.prompt_id].append(r)
        n = max(len(v) for v in by_item.values())
        pass_n = maj_n = None
        if n > 1:
            pass_n = mean_pass_at_k([(len(v), sum(bool(r.correct) for r in v)) for v in by_item.values()],
                                    min(len(v) for v in by_item.values()))
            maj_n = sum(
                maj_at_k([r.extracted for r in v], [bool(r.correct) for r in v], len(v)) for v in by_item.values()
            ) / len(by_item)
        budget, ignores = budget_and_ignores(recs[0])

        def share(flags: list[bool], ok: list[SampleRecord] = ok) -> float:
            return sum(flags) / len(ok) if ok else 0.0

        def average(values: list[int], ok: list[SampleRecord] = ok) -> float:
            return sum(values) / len(ok) if ok else 0.0

        rows.append(SettingSummary(
            task=task, setting=setting, budget=budget, num_ignore=ignores, samples=len(recs),
            errors=len(recs) - len(ok), accuracy=mean, ci_low=low, ci_high=high,
            thinking_tokens=average([thinking_tokens(r.generation) for r in ok]),
            forced_tokens=average([forced_thinking_tokens(r.generation) for r in ok]),
            total_thinking_tokens=average([total_thinking_tokens(r.generation) for r in ok]),
            answer_tokens=average([r.generation.answer_tokens for r in ok]),
            cap_hit=share([cap_hit(r.generation) for r in ok]),
            unclosed=share([unclosed(r.generation) for r in ok]),
            no_answer=share([no_answer(r) for r in ok]),
            pass_at_n=pass_n, maj_at_n=maj_n, n_per_item=n,
        ))
    return rows


def sweep_summaries(rows: list[SettingSummary]) -> list[SweepSummary]:
    """Control / Scaling / Performance per task and num_ignore, over that curve's budgets. A setting whose
    samples all failed has no thinking-token average: it is left out and counted as missing."""
    curves: dict[tuple[str, int], list[SettingSummary]] = defaultdict(list)
    for row in rows:
        curves[row.task, row.num_ignore].append(row)
    out = []
    for (task, ignores), curve in curves.items():
        ran = [r for r in curve if r.errors < r.samples]
        points = [SweepPoint(r.thinking_tokens, r.accuracy, budget=r.budget, label=r.setting) for r in ran]
        positive = [p for p in points if p.thinking_tokens > 0]
        slope = scaling(positive, log2_tokens=True) if len(positive) >= 2 else None
        out.append(SweepSummary(task, ignores, len(points), control(points) if points else None,
                                None if slope is None else 100 * slope, performance(points) if points else None,
                                missing=len(curve) - len(ran)))
    return out


@dataclass(frozen=True)
class CategorySummary:
    """Accuracy of one category (e.g. MathVista's answer_type=float, or one skill) under one setting."""

    task: str
    setting: str
    field: str  # question_type, answer_type, skills, ...
    category: str
    samples: int
    accuracy: float
    cap_hit: float
    unclosed: float


def category_summaries(records: Iterable[SampleRecord]) -> list[CategorySummary]:
    """Per (task, setting, category) rows from the categories `s1 eval` stores in each record's
    `meta["categories"]` (an item with several skills counts in each). Empty when no record has any."""
    groups: dict[tuple[str, str, str, str], list[SampleRecord]] = defaultdict(list)
    for r in records:
        for field, values in (r.generation.meta.get("categories") or {}).items():
            for value in values:
                groups[r.task, r.generation.setting, field, str(value)].append(r)
    rows = []
    for (task, setting, field, value), recs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3])):
        ok = [r.generation for r in recs if r.generation.error is None]
        rows.append(CategorySummary(
            task, setting, field, value, len(recs),
            accuracy=sum(bool(r.correct) and r.generation.error is None for r in recs) / len(recs),
            cap_hit=sum(g.cap_hit for g in ok) / len(ok) if ok else 0.0,
            unclosed=sum(not g.thinking_closed for g in ok) / len(ok) if ok else 0.0,
        ))
    return rows


def render_categories(rows: list[CategorySummary], console: Any = None) -> None:
    """Print per-category accuracy: one row per category, one column per setting."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:
        console = Console(width=200, file=console.file)
    settings = list(dict.fromkeys(r.setting for r in rows))
    cells: dict[tuple[str, str, str], dict[str, CategorySummary]] = defaultdict(dict)
    for r in rows:
        cells[r.task, r.field, r.category][r.setting] = r
    table = Table(title="accuracy per category (n; cap hit / unclosed at the last setting)", title_justify="left")
    for name in ("task", "field", "category"):
        table.add_column(name, no_wrap=True)
    for name in ("n", *(s.replace("think<=", "<=").replace(",ignore", " +i") for s in settings), "cap hit",
                 "unclosed"):
        table.add_column(name, justify="right")
    for (task, field, category), by_setting in cells.items():
        last = by_setting[next(s for s in reversed(settings) if s in by_setting)]
        table.add_row(task, field, category, str(last.samples),
                      *[f"{by_setting[s].accuracy:.3f}" if s in by_setting else "-" for s in settings],
                      f"{last.cap_hit:.0%}", f"{last.unclosed:.0%}")
    console.print(table)


def render(rows: list[SettingSummary], sweeps: list[SweepSummary], console: Any = None) -> None:
    """Print the report tables with rich."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the tables into 80 columns
        console = Console(width=160, file=console.file)
    several = any(r.n_per_item > 1 for r in rows)
    table = Table(title="accuracy vs thinking", title_justify="left")
    for name in ("task", "setting", "n", "failed", "accuracy", "95% CI", "thinking tok", "forced tok", "answer tok",
                 "cap hit", "unclosed", "no answer"):
        table.add_column(name, justify="left" if name in ("task", "setting") else "right")
    if several:
        table.add_column("pass@n", justify="right")
        table.add_column("maj@n", justify="right")
    for r in rows:
        cells = [r.task, r.setting, str(r.samples), str(r.errors), f"{r.accuracy:.3f}",
                 f"{r.ci_low:.3f}-{r.ci_high:.3f}", f"{r.thinking_tokens:.1f}", f"{r.forced_tokens:.1f}",
                 f"{r.answer_tokens:.1f}", f"{r.cap_hit:.0%}", f"{r.unclosed:.0%}", f"{r.no_answer:.0%}"]
        if several:
            cells += ["-" if r.pass_at_n is None else f"{r.pass_at_n:.3f}",
                      "-" if r.maj_at_n is None else f"{r.maj_at_n:.3f}"]
        table.add_row(*cells)
    console.print(table)
    if sweeps:
        sweep_table = Table(title="budget sweep (s1 paper, Eq. 1-3)", title_justify="left")
        for name in ("task", "num_ignore", "points", "missing", "Control", "Scaling", "Performance"):
            sweep_table.add_column(name, justify="left" if name == "task" else "right")
        for s in sweeps:
            sweep_table.add_row(s.task, str(s.num_ignore), str(s.points), str(s.missing),
                                "-" if s.control is None else f"{s.control:.0%}",
                                "-" if s.scaling is None else f"{s.scaling:.1f}",
                                "-" if s.performance is None else f"{s.performance:.3f}")
        console.print(sweep_table)
        console.print("Columns: docs/evaluation.md#reading-a-report. thinking tok = sampled thinking tokens "
                      "(what the budget counts); Scaling = accuracy points per doubling of thinking tokens.")


def render_methods(curves: list[Any], levels: list[Any], console: Any = None) -> None:
    """Print a comparison run (`s1.methods.summary`): every method's points, each method's Control /
    Scaling / Performance, and the best accuracy per method within each compute level."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:
        console = Console(width=200, file=console.file)
    several = len({c.task for c in curves}) > 1
    points = Table(title="methods: accuracy vs compute (tokens generated per question)", title_justify="left")
    for name in ([*(["task"] if several else []), "method", "setting", "n", "tokens/q", "thinking/q", "accuracy",
                  "note"]):
        points.add_column(name, justify="right" if name in ("n", "tokens/q", "thinking/q", "accuracy") else "left")
    for c in curves:
        for p in c.points:
            points.add_row(*([p.task] if several else []), p.method, p.setting, str(p.items), f"{p.tokens:.1f}",
                           f"{p.thinking:.1f}", f"{p.accuracy:.3f}", p.note)
    console.print(points)
    summary = Table(title="per method (s1 paper, Eq. 1-3)", title_justify="left")
    for name in [*(["task"] if several else []), "method", "points", "Control", "Scaling", "Performance"]:
        summary.add_column(name, justify="left" if name in ("task", "method") else "right")
    for c in curves:
        summary.add_row(*([c.task] if several else []), c.method + (" (reference)" if c.reference else ""),
                        str(len(c.points)), "-" if c.control is None else f"{c.control:.0%}",
                        "-" if c.scaling is None else f"{c.scaling:.1f}", f"{c.performance:.3f}")
    console.print(summary)
    console.print("Control: share of settings whose thinking (tokens, or steps for step-conditional) stays within "
                  "what they asked for; Scaling: accuracy points per doubling of thinking tokens.")
    if levels:
        for task in dict.fromkeys(lv.task for lv in levels):
            mine = [lv for lv in levels if lv.task == task]
            title = "best accuracy within a compute budget (tokens generated per question)"
            table = Table(title=f"{title}: {task}" if several else title, title_justify="left")
            table.add_column("method")
            for lv in mine:
                table.add_column(f"<={lv.tokens:g}", justify="right")
            for m in dict.fromkeys(m for lv in mine for m in lv.best):
                table.add_row(m, *[f"{lv.best[m]:.3f}" if m in lv.best else "-" for lv in mine])
            table.add_row("[bold]best[/]", *[" = ".join(lv.winners) or "-" for lv in mine])
            console.print(table)
