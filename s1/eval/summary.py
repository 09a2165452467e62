"""A comparison run's curves: accuracy against compute per method, from its stored records.

Compute is what a method generated per question (thinking and answer tokens, forced ones included;
never the prompt): one generation for budget forcing and control prompts, the first k samples for
majority voting and best-of-k, the whole tree for REBASE, every attempt for rejection sampling.
Majority voting and best-of-N are computed here from the stored samples, so one N-sample run gives
every k = 1, 2, 4, ..., N (voting over the FIRST k samples, the s1 / lm-evaluation-harness convention).
Each method is a curve with the s1 paper's Control / Scaling / Performance. `pass@k` (unbiased, over
all N samples: an oracle that knows which answer is right) is a reference line, not a method; its
compute is k times the question's mean sample.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import mean

from s1.eval.report import budget_and_ignores
from s1.methods.best_of_n import best_of_n, weighted_best_of_n
from s1.methods.control import control_bounds
from s1.methods.verifiers import aggregate
from s1.methods.voting import vote_sizes, weighted_vote
from s1.metrics import SweepPoint, control, generated_tokens, pass_at_k, scaling, total_thinking_tokens
from s1.records import SampleRecord
from s1.tasks import Control

PASS_AT_K = "pass@k (oracle)"


@dataclass(frozen=True)
class MethodPoint:
    """One compute setting of one method on one task."""

    task: str
    method: str  # the curve, e.g. "majority voting", "best-of-N (confidence)", "REBASE (confidence)"
    setting: str  # e.g. "think<=16", "k=4", "W=4"
    tokens: float  # mean generated tokens per question
    thinking: float  # mean thinking tokens per question
    accuracy: float
    items: int
    a_min: float | None = None  # what the setting asked for (Control, Eq. 1), in `unit`
    a_max: float | None = None
    measured: float | None = None  # what it got, in `unit`
    unit: str = "tokens"
    note: str = ""


@dataclass(frozen=True)
class MethodCurve:
    task: str
    method: str
    points: tuple[MethodPoint, ...]
    control: float | None  # share of points within what they asked for; None: nothing asked
    scaling: float | None  # accuracy points per doubling of thinking tokens (average pairwise slope)
    performance: float  # best accuracy
    reference: bool = False


def _correct(r: SampleRecord) -> bool:
    return bool(r.correct) and r.generation.error is None


def _mean(values: Sequence[float]) -> float:
    return float(mean(values)) if values else 0.0


def _budget_forcing(task: str, recs: list[SampleRecord]) -> list[MethodPoint]:
    by_setting: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in recs:
        by_setting[r.generation.setting].append(r)
    out = []
    for setting, rs in by_setting.items():
        ok = [r.generation for r in rs if r.generation.error is None]
        budget, ignores = budget_and_ignores(rs[0])
        thinking = _mean([total_thinking_tokens(g) for g in ok])
        out.append(MethodPoint(task, "budget forcing", setting, _mean([generated_tokens(g) for g in ok]), thinking,
                               _mean([_correct(r) for r in rs]), len(rs), None,
                               None if budget is None else float(budget), thinking,
                               note=f"num_ignore={ignores}" if ignores else ""))
    return out


def _sampled(task: str, recs: list[SampleRecord], how: str) -> list[MethodPoint]:
    """Majority voting, best-of-N and weighted best-of-N per verifier, and pass@k, at every k."""
    by_item: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in recs:
        by_item[r.generation.prompt_id].append(r)
    groups = [sorted(v, key=lambda r: r.generation.sample_index) for v in by_item.values()]
    n = min(len(g) for g in groups)
    verifiers = sorted({name for r in recs for name in r.generation.meta.get("scores", {})})
    curves: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # name -> per k (acc, tok, think)
    ks = vote_sizes(None, n)
    for k in ks:
        picks: dict[str, list[bool]] = defaultdict(list)
        tokens, thinking = [], []
        for g in groups:
            first = g[:k]
            ok = [r.generation.error is None for r in first]
            right = [_correct(r) for r in first]
            keys = [r.generation.meta.get("canonical", r.extracted) if o else None for r, o in zip(first, ok,
                                                                                                     strict=True)]
            tokens.append(sum(generated_tokens(r.generation) for r in first))
            thinking.append(sum(total_thinking_tokens(r.generation) for r in first))
            winner = weighted_vote(keys)
            picks["majority voting"].append(winner is not None and right[winner])
            for v in verifiers:
                agg = [aggregate(r.generation.meta.get("scores", {}).get(v, []), how) if o else None
                       for r, o in zip(first, ok, strict=True)]
                best = best_of_n(agg)
                weighted = weighted_best_of_n(keys, agg)
                picks[f"best-of-N ({v})"].append(best is not None and right[best])
                picks[f"weighted best-of-N ({v})"].append(weighted is not None and right[weighted])
        for name, flags in picks.items():
            curves[name].append((_mean(flags), _mean(tokens), _mean(thinking)))
        curves[PASS_AT_K].append((
            _mean([pass_at_k(len(g), sum(_correct(r) for r in g), k) for g in groups]),
            _mean([k * _mean([generated_tokens(r.generation) for r in g]) for g in groups]),
            _mean([k * _mean([total_thinking_tokens(r.generation) for r in g]) for g in groups])))
    return [MethodPoint(task, name, f"k={k}", tok, think, acc, len(groups))
            for name, values in curves.items() for k, (acc, tok, think) in zip(ks, values, strict=True)]


def _per_setting(task: str, recs: list[SampleRecord], method: str) -> list[MethodPoint]:
    """REBASE or rejection sampling: one point per setting, compute from the records' meta."""
    by_setting: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in recs:
        by_setting[r.generation.setting].append(r)
    out = []
    for setting, rs in by_setting.items():
        metas = [r.generation.meta for r in rs]
        tokens = _mean([m.get("generated_tokens", generated_tokens(r.generation)) for m, r in zip(metas, rs,
                                                                                                strict=True)])
        thinking = _mean([m.get("thinking_tokens", total_thinking_tokens(r.generation)) for m, r in zip(metas, rs,
                                                                                                      strict=True)])
        acc = _mean([_correct(r) for r in rs])
        if method == "rebase":
            name = f"REBASE ({metas[0].get('verifier', '?')})"
            widths = [max(m.get("widths") or [0]) for m in metas]
            out.append(MethodPoint(task, name, setting.split(":", 1)[-1], tokens, thinking, acc, len(rs),
                                   note=f"max live width {max(widths)}"))
        else:
            budget = float(metas[0].get("budget", 0))
            kept = _mean([total_thinking_tokens(r.generation) for r in rs if r.generation.error is None])
            share = _mean([bool(m.get("accepted")) for m in metas])
            attempts = _mean([m.get("attempts", 1) for m in metas])
            out.append(MethodPoint(task, "rejection sampling", setting.split(":", 1)[-1], tokens, thinking, acc,
                                   len(rs), None, budget, kept,
                                   note=f"accepted {share:.0%}, {attempts:.1f} attempts"))
    return out


def _control(task: str, recs: list[SampleRecord], baseline: float | None) -> list[MethodPoint]:
    by_setting: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in recs:
        by_setting[r.generation.setting].append(r)
    out = []
    for setting, rs in by_setting.items():
        meta = rs[0].generation.meta
        ok = [r.generation for r in rs if r.generation.error is None]
        ctl = Control.parse(meta["control"])
        thinking = _mean([total_thinking_tokens(g) for g in ok])
        a_min = a_max = None
        unit = "tokens"
        measured: float | None = thinking
        if ctl.kind != "class" or baseline is not None:
            a_min, a_max, unit = control_bounds(ctl, baseline)
            if unit == "steps":
                measured = _mean([g.meta.get("steps", 0) for g in ok])
        out.append(MethodPoint(task, meta["group"], setting.split(":", 1)[-1], _mean([generated_tokens(g) for g in ok]),
                               thinking, _mean([_correct(r) for r in rs]), len(rs), a_min, a_max, measured, unit))
    return out


def method_points(records: Iterable[SampleRecord], how: str = "mean") -> list[MethodPoint]:
    """Every method's points, per task; `how` aggregates verifier step scores for best-of-N."""
    by_task: dict[str, dict[str, list[SampleRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_task[r.task][r.generation.meta.get("method", "budget_forcing")].append(r)
    out: list[MethodPoint] = []
    for task, methods in by_task.items():
        bf = _budget_forcing(task, methods["budget_forcing"]) if methods.get("budget_forcing") else []
        unforced = [p for p in bf if p.a_max is None and not p.note] or sorted(
            [p for p in bf if not p.note], key=lambda p: -(p.a_max or 0))[:1]
        out += bf
        if methods.get("sample"):
            out += _sampled(task, methods["sample"], how)
        for name in ("rebase", "rejection"):
            if methods.get(name):
                out += _per_setting(task, methods[name], name)
        if methods.get("control"):
            out += _control(task, methods["control"], unforced[0].thinking if unforced else None)
    return out


def method_curves(points: Sequence[MethodPoint]) -> list[MethodCurve]:
    """Points grouped into one curve per (task, method), ordered by compute, with Control (over the
    points that asked for a bound), Scaling (accuracy points per doubling of thinking tokens, the
    paper's x; answers forced after a tiny budget can ramble, which would bend a generated-token x)
    and Performance (best accuracy)."""
    groups: dict[tuple[str, str], list[MethodPoint]] = defaultdict(list)
    for p in points:
        groups[p.task, p.method].append(p)
    out = []
    for (task, method), pts in groups.items():
        pts = sorted(pts, key=lambda p: p.tokens)
        bounded = [SweepPoint(p.measured or 0.0, p.accuracy, p.a_max, p.a_min) for p in pts
                   if (p.a_max is not None or p.a_min is not None) and p.measured is not None]
        positive = [SweepPoint(p.thinking, p.accuracy) for p in pts if p.thinking > 0]
        slope = scaling(positive, log2_tokens=True) if len(positive) >= 2 else None
        out.append(MethodCurve(task, method, tuple(pts), control(bounded) if bounded else None,
                               None if slope is None else 100 * slope, max(p.accuracy for p in pts),
                               reference=method == PASS_AT_K))
    return out


@dataclass(frozen=True)
class ComputeLevel:
    """The best accuracy each method reaches with at most `tokens` generated tokens per question."""

    task: str
    tokens: float
    best: dict[str, float]  # method -> best accuracy within the level (methods that reach it)
    winners: tuple[str, ...]  # the methods with the highest of those accuracies (several on a tie)


def equal_compute(curves: Sequence[MethodCurve], levels: Sequence[float] | None = None) -> list[ComputeLevel]:
    """Which method wins at which compute: per task and level (default: powers of two over the range
    the methods span), each method's best accuracy among its points within the level."""
    out = []
    for task in dict.fromkeys(c.task for c in curves):
        mine = [c for c in curves if c.task == task and not c.reference]
        tokens = [p.tokens for c in mine for p in c.points if p.tokens > 0]
        if not tokens:
            continue
        marks = list(levels) if levels else _powers_of_two(min(tokens), max(tokens))
        for level in marks:
            best = {c.method: max(p.accuracy for p in c.points if p.tokens <= level)
                    for c in mine if any(p.tokens <= level for p in c.points)}
            top = max(best.values(), default=None)
            out.append(ComputeLevel(task, float(level), best, tuple(m for m, a in best.items() if a == top)))
    return out


def _powers_of_two(low: float, high: float) -> list[float]:
    level = 1.0
    while level * 2 <= low:
        level *= 2
    out = [level]
    while out[-1] < high:
        out.append(out[-1] * 2)
    return out
