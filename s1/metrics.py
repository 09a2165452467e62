"""Metrics of the s1 paper and of sampling-based evaluation: pure functions over plain data.

Nothing here loads a model, reads a file or grades an answer. Callers grade first (the grader decides
which answers are equivalent) and pass booleans, canonical answer keys and token counts.

- `accuracy`, `accuracy_ci`: mean correctness and a percentile-bootstrap confidence interval.
- `pass_at_k`, `mean_pass_at_k`: the unbiased pass@k estimator of Chen et al. (2021).
- `majority_vote`, `maj_at_k`, `cov_at_k`: majority voting and coverage over the first k samples.
- `thinking_tokens`, `forced_thinking_tokens`, `total_thinking_tokens`, `generated_tokens`, `cap_hit`,
  `unclosed`, `no_answer`: the per-record figures, one definition each, that every report uses.
- `thinking_stats`: the per-run token statistics that s1's `eval/compute_sample_stats.py` prints.
- `SweepPoint`, `control`, `scaling`, `performance`, `sweep_metrics`: the paper's §3.2 metrics
  (Eq. 1-3) over a sweep of test-time compute settings.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from s1.records import Generation, SampleRecord

__all__ = [
    "SweepMetrics",
    "SweepPoint",
    "ThinkingStats",
    "accuracy",
    "accuracy_ci",
    "cap_hit",
    "control",
    "cov_at_k",
    "forced_thinking_tokens",
    "generated_tokens",
    "maj_at_k",
    "majority_vote",
    "mean_pass_at_k",
    "no_answer",
    "pass_at_k",
    "performance",
    "scaling",
    "sweep_metrics",
    "thinking_stats",
    "thinking_tokens",
    "total_thinking_tokens",
    "unclosed",
]


# -- accuracy ------------------------------------------------------------------------------------------
def _scores(correct: Sequence[bool | float], name: str = "correct") -> np.ndarray:
    values = np.asarray(list(correct), dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of booleans (or scores in [0, 1]), got {len(values)}")
    if np.isnan(values).any():
        raise ValueError(f"{name} must not contain NaN")
    return values


def accuracy(correct: Sequence[bool | float]) -> float:
    """Mean of `correct` (booleans, or per-question scores such as pass@k values)."""
    return float(_scores(correct).mean())


def accuracy_ci(
    correct: Sequence[bool | float], n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile-bootstrap confidence interval.

    `n_boot` resamples of len(correct) items with replacement; the bounds are the (1 - confidence) / 2
    and (1 + confidence) / 2 quantiles of the resampled means. Deterministic given `seed` (numpy's
    default generator). Works on booleans and on per-question scores alike.
    """
    values = _scores(correct)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = values.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 4_000_000 // n)  # bound the (chunk, n) index matrix to ~32 MB
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(values.mean()), float(low), float(high)


# -- pass@k --------------------------------------------------------------------------------------------
def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al., 2021, "Evaluating Large
    Language Models Trained on Code"): 1 - C(n-c, k) / C(n, k), the probability that k samples drawn
    without replacement from the n contain a correct one.

    Computed in the numerically stable product form 1 - prod_{i=n-c+1}^{n} (1 - k / i), which never
    forms the (huge) binomial coefficients. Requires 0 <= c <= n and 1 <= k <= n.
    """
    n = _check_count("n", n, 1)
    c = _check_count("c", c, 0)
    k = _check_count("k", k, 1)
    if c > n:
        raise ValueError(f"c (correct samples, {c}) must be <= n (samples, {n})")
    if k > n:
        raise ValueError(f"k ({k}) must be <= n (samples, {n}): pass@k needs at least k samples")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """Mean pass@k over questions, each given as (n samples, c correct)."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values:
        raise ValueError("mean_pass_at_k needs at least one question")
    return float(np.mean(values))


# -- majority voting and coverage ----------------------------------------------------------------------
def _first_k(k: int, size: int, what: str) -> int:
    k = _check_count("k", k, 1)
    if k > size:
        raise ValueError(f"k ({k}) must be <= the number of {what} ({size})")
    return k


def majority_vote(answers: Sequence[Hashable | None], k: int | None = None) -> int | None:
    """Index of the sample whose answer wins the vote among the first k (all when k is None).

    Votes are counted per answer; `None` (no answer extracted) never votes. On a tie the answer that
    appeared first wins, and the returned index is that answer's first appearance. Returns None when
    all of the first k answers are None.
    """
    k = len(answers) if k is None else _first_k(k, len(answers), "answers")
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, answer in enumerate(answers[:k]):
        if answer is None:
            continue
        counts[answer] = counts.get(answer, 0) + 1
        first.setdefault(answer, i)
    if not counts:
        return None
    # max() keeps the first maximal item; dicts iterate in first-appearance order.
    winner = max(counts, key=counts.__getitem__)
    return first[winner]


def maj_at_k(
    answers: Sequence[Hashable | None],
    correct: Sequence[bool],
    k: int,
    canonical: Sequence[Hashable | None] | None = None,
) -> bool:
    """maj@k: whether the majority answer among the FIRST k samples is correct.

    This is the s1 / lm-evaluation-harness convention (vote over samples 1..k), not the expectation
    over all k-subsets of the n samples. `correct[i]` is the grade of sample i. The grader's
    equivalence classes decide what counts as the same answer: pass them as `canonical` (one hashable
    key per sample, None for no answer), and the vote runs over those keys instead of `answers`.
    Ties go to the answer that appeared first; `None` never wins unless all are None, which is wrong.
    The winner's correctness is the grade of its first appearance.
    """
    keys = answers if canonical is None else canonical
    if len(correct) != len(answers) or len(keys) != len(answers):
        raise ValueError(
            f"answers ({len(answers)}), correct ({len(correct)})"
            + ("" if canonical is None else f" and canonical ({len(canonical)})")
            + " must have the same length"
        )
    k = _first_k(k, len(answers), "samples")
    winner = majority_vote(keys, k)
    return False if winner is None else bool(correct[winner])


def cov_at_k(correct: Sequence[bool], k: int) -> bool:
    """cov@k (coverage): whether any of the FIRST k samples is correct."""
    k = _first_k(k, len(correct), "samples")
    return any(bool(c) for c in correct[:k])


# -- per-record figures: one definition each, used by report, stats, plot and compare ----------------------
def thinking_tokens(gen: Generation) -> int:
    """Sampled thinking tokens: what the thinking budget counts, so the x-axis of a scaling curve and what
    Control checks against the budget (budget forcing's Control is 100% by construction)."""
    return gen.thinking_tokens


def forced_thinking_tokens(gen: Generation) -> int:
    """Ignore strings forced into the thinking ("Wait"), reported in their own column."""
    return gen.thinking_forced_tokens


def total_thinking_tokens(gen: Generation) -> int:
    """Every token of the thinking phase, sampled and forced ignore strings: the count s1's script gets by
    tokenizing the thinking text ("avg total thinking tokens"), an extra column beside `thinking_tokens`."""
    return gen.thinking_tokens + gen.thinking_forced_tokens


def generated_tokens(gen: Generation) -> int:
    """Every token one generation produced: thinking and answer, sampled and forced (the compute a
    method spends, the x-axis of an equal-compute comparison). The prompt is not counted."""
    return total_thinking_tokens(gen) + gen.answer_tokens + gen.answer_forced_tokens


def cap_hit(gen: Generation) -> bool:
    """The budget ended the thinking (the cap string was forced)."""
    return gen.cap_hit


def unclosed(gen: Generation) -> bool:
    """The thinking never ended: neither the closer nor the cap appears (e.g. the engine's limit)."""
    return not gen.thinking_closed


def no_answer(record: SampleRecord) -> bool:
    """The grader found no answer in a successful sample (a failed sample is an error, not this)."""
    return record.generation.error is None and record.extracted is None


def _steps(thinking: str) -> int:
    """Reasoning steps approximated by newline-separated lines, as s1's script does."""
    text = thinking.strip("\n")
    return len(text.split("\n")) if text.strip() else 0


@dataclass(frozen=True)
class ThinkingStats:
    """What s1's `eval/compute_sample_stats.py` prints, computed from `Generation` records.

    Token statistics cover the successful samples only (`samples - errors`); `errors` are counted apart.
    Every figure a report also shows uses the same definition (`thinking_tokens`, `cap_hit`, `unclosed`,
    `no_answer`); the `total` figures are s1's own count (sampled + forced ignore strings), as its script
    prints them. Averages are None when no sample succeeded.
    """

    samples: int  # every record, errors included ("# samples")
    errors: int  # records with `error` set; left out of everything below
    avg_steps: float | None  # "avg steps": newline-separated lines of thinking
    avg_thinking_tokens: float | None  # sampled thinking tokens (what the budget counts)
    max_thinking_tokens: int | None
    avg_forced_thinking_tokens: float | None  # forced ignore strings
    avg_total_thinking_tokens: float | None  # "avg total thinking tokens" (s1's count: sampled + forced)
    min_total_thinking_tokens: int | None  # "min total thinking tokens"
    max_total_thinking_tokens: int | None  # "max total thinking tokens"
    avg_answer_tokens: float | None  # "avg total answer tokens" (sampled answer tokens)
    avg_total_tokens: float | None  # "avg total tokens": thinking + answer, forced tokens included
    too_many_thinking_tokens: int | None  # "samples w/ too many thinking tokens": sampled > budget
    cap_hit: int  # samples whose thinking was cut by the budget (`cap_hit`)
    truncated: int  # "samples w/ too many tokens": finish_reason == "length" (answer or context cut)
    without_answer: int | None  # "samples w/o answer" (`no_answer`; needs the grades)
    without_thinking: int  # "samples w/o thinking": zero sampled thinking tokens
    thinking_unclosed: int  # `unclosed`
    ignores_applied: int  # total ignore strings forced across samples
    sorted_thinking_tokens: tuple[int, ...]  # "sorted total thinking tokens" (s1's count)
    sorted_correct: tuple[bool, ...] | None  # "sorted correct": grades in that order, when given

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable lines, labelled like s1's script where a field mirrors one of its prints."""

        def fmt(value: Any) -> str:
            return "n/a" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))

        out = [
            f"# samples: {self.samples}",
            f"errors: {self.errors}",
            f"avg steps: {fmt(self.avg_steps)}",
            f"avg thinking tokens (sampled, what the budget counts): {fmt(self.avg_thinking_tokens)}",
            f"avg forced thinking tokens (ignore strings): {fmt(self.avg_forced_thinking_tokens)}",
            f"min total thinking tokens: {fmt(self.min_total_thinking_tokens)}",
            f"max total thinking tokens: {fmt(self.max_total_thinking_tokens)}",
            f"avg total thinking tokens: {fmt(self.avg_total_thinking_tokens)}",
            f"avg total answer tokens: {fmt(self.avg_answer_tokens)}",
            f"avg total tokens: {fmt(self.avg_total_tokens)}",
        ]
        if self.too_many_thinking_tokens is not None:
            out.append(f"samples w/ too many thinking tokens: {self.too_many_thinking_tokens}")
        out += [
            f"samples w/ cap hit: {self.cap_hit}",
            f"samples w/ unclosed thinking: {self.thinking_unclosed}",
            f"samples w/ too many tokens: {self.truncated}",
            f"samples w/o answer: {fmt(self.without_answer)}",
            f"samples w/o thinking: {self.without_thinking}",
        ]
        return out


def thinking_stats(
    generations: Sequence[Generation],
    budget: int | None = None,
    correct: Sequence[bool] | None = None,
    answerless: Sequence[bool] | None = None,
) -> ThinkingStats:
    """Token statistics over one setting's records, mirroring s1's `eval/compute_sample_stats.py`.

    `budget` enables `too_many_thinking_tokens` (samples whose sampled thinking exceeds it). `correct`
    (one grade per record) enables `sorted_correct`; `answerless` (one `no_answer` per record) enables
    `without_answer`. Errors are counted in `errors` and left out of every other figure.
    """
    for name, flags in (("correct", correct), ("answerless", answerless)):
        if flags is not None and len(flags) != len(generations):
            raise ValueError(f"{name} ({len(flags)}) must have one entry per generation ({len(generations)})")
    if budget is not None:
        _check_count("budget", budget, 0)
    ok = [i for i, g in enumerate(generations) if g.error is None]
    gens = [generations[i] for i in ok]
    sampled = [thinking_tokens(g) for g in gens]
    total = [total_thinking_tokens(g) for g in gens]

    def mean(xs: Sequence[int]) -> float | None:
        return float(np.mean(xs)) if xs else None

    order = sorted(range(len(gens)), key=lambda j: total[j])  # stable: ties keep record order
    return ThinkingStats(
        samples=len(generations),
        errors=len(generations) - len(gens),
        avg_steps=mean([_steps(g.thinking) for g in gens]),
        avg_thinking_tokens=mean(sampled),
        max_thinking_tokens=max(sampled) if sampled else None,
        avg_forced_thinking_tokens=mean([forced_thinking_tokens(g) for g in gens]),
        avg_total_thinking_tokens=mean(total),
        min_total_thinking_tokens=min(total) if total else None,
        max_total_thinking_tokens=max(total) if total else None,
        avg_answer_tokens=mean([g.answer_tokens for g in gens]),
        avg_total_tokens=mean([generated_tokens(g) for g in gens]),
        too_many_thinking_tokens=None if budget is None else sum(t > budget for t in sampled),
        cap_hit=sum(cap_hit(g) for g in gens),
        truncated=sum(g.finish_reason == "length" for g in gens),
        without_answer=None if answerless is None else sum(bool(answerless[i]) for i in ok),
        without_thinking=sum(t == 0 for t in sampled),
        thinking_unclosed=sum(unclosed(g) for g in gens),
        ignores_applied=sum(g.ignores_applied for g in gens),
        sorted_thinking_tokens=tuple(total[j] for j in order),
        sorted_correct=None if correct is None else tuple(bool(correct[ok[j]]) for j in order),
    )


# -- the s1 paper's sweep metrics (§3.2, Eq. 1-3) -----------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One evaluation run a ∈ A of a sweep over test-time compute.

    thinking_tokens: the run's average thinking tokens per sample (the x-axis; `a` in the paper).
    accuracy: f(a), in whatever unit the caller uses (fraction in [0, 1], or percent); Scaling and
        Performance come out in the same unit.
    budget: the requested maximum (a_max for this run), e.g. budget forcing's thinking cap; None when
        the run asked for no maximum.
    min_budget: the requested minimum (a_min for this run); None when none.
    label: the setting's name, for reports.
    """

    thinking_tokens: float
    accuracy: float
    budget: float | None = None
    min_budget: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("thinking_tokens", "accuracy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or math.isnan(value):
                raise ValueError(f"SweepPoint.{name} must be a number, got {value!r}")
        if self.thinking_tokens < 0:
            raise ValueError(f"SweepPoint.thinking_tokens must be >= 0, got {self.thinking_tokens!r}")

    @classmethod
    def from_generations(
        cls,
        generations: Sequence[Generation],
        correct: Sequence[bool],
        budget: float | None = None,
        min_budget: float | None = None,
        label: str = "",
    ) -> SweepPoint:
        """A point from one setting's records: mean `thinking_tokens` of the successful samples
        and accuracy over ALL samples (a failed sample counts as wrong; `correct` has one grade per
        record)."""
        if len(correct) != len(generations) or not generations:
            raise ValueError(
                f"need a non-empty list of generations with one grade each, got {len(generations)} "
                f"generations and {len(correct)} grades"
            )
        ok = [thinking_tokens(g) for g in generations if g.error is None]
        acc = float(np.mean([bool(c) and g.error is None for c, g in zip(correct, generations, strict=True)]))
        return cls(float(np.mean(ok)) if ok else 0.0, acc, budget, min_budget, label)


def control(points: Sequence[SweepPoint], a_min: float | None = None, a_max: float | None = None) -> float:
    """Control (Eq. 1): (1/|A|) Σ_{a∈A} 1(a_min <= a <= a_max), a fraction in [0, 1] (the paper
    reports it as a percentage: multiply by 100).

    `a` is each run's average thinking tokens. The bounds default to each run's own request
    (`point.min_budget`, `point.budget`); `a_min` / `a_max` given here override them for every run. A
    missing bound does not constrain (the paper "usually only constrain[s] a_max"): for budget forcing
    this is "thinking tokens <= the requested budget".
    """
    if not points:
        raise ValueError("control needs at least one sweep point")
    inside = 0
    for p in points:
        low = a_min if a_min is not None else p.min_budget
        high = a_max if a_max is not None else p.budget
        inside += (low is None or p.thinking_tokens >= low) and (high is None or p.thinking_tokens <= high)
    return inside / len(points)


def scaling(points: Sequence[SweepPoint], log2_tokens: bool = False) -> float | None:
    """Scaling (Eq. 2): the average slope of the piecewise-linear accuracy-vs-thinking-tokens curve,
    (1 / C(|A|, 2)) Σ_{a,b∈A, b>a} (f(b) - f(a)) / (b - a).

    Units: accuracy units per thinking token (the formula as written, x in tokens). The paper does not
    state the unit of the values it reports (Table 3: budget forcing 15, rejection sampling -35);
    its figures plot x on a log2 scale, and `log2_tokens=True` gives accuracy units per doubling of
    thinking tokens (x = log2(tokens)), the reading under which percent-accuracy slopes have that
    magnitude. Pairs with equal x have no slope and are skipped; the average is over the remaining
    pairs (C(|A|, 2) when all x differ). None with fewer than 2 points or no pair of distinct x.
    """
    if len(points) < 2:
        return None
    xs = [p.thinking_tokens for p in points]
    if log2_tokens:
        if min(xs) <= 0:
            raise ValueError("scaling(log2_tokens=True) needs every point's thinking_tokens > 0")
        xs = [math.log2(x) for x in xs]
    slopes = []
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if xs[i] == xs[j]:
                continue
            slopes.append((points[j].accuracy - points[i].accuracy) / (xs[j] - xs[i]))
    return float(np.mean(slopes)) if slopes else None


def performance(points: Sequence[SweepPoint]) -> float:
    """Performance (Eq. 3): max_{a∈A} f(a), the best accuracy over the sweep."""
    if not points:
        raise ValueError("performance needs at least one sweep point")
    return max(float(p.accuracy) for p in points)


@dataclass(frozen=True)
class SweepMetrics:
    control: float
    scaling: float | None
    performance: float
    runs: int  # |A|

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_metrics(
    points: Sequence[SweepPoint],
    a_min: float | None = None,
    a_max: float | None = None,
    log2_tokens: bool = False,
) -> SweepMetrics:
    """Control, Scaling and Performance of one sweep (see the three functions)."""
    return SweepMetrics(
        control=control(points, a_min, a_max),
        scaling=scaling(points, log2_tokens),
        performance=performance(points),
        runs=len(points),
    )
