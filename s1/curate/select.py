"""Stage 5, select: s1K's selection (s1's `filter.ipynb`), seeded and reproducible.

1. Quality: drop an item with any missing feature (no teacher trace, no domain, no trace length, or
   an ungraded correctness of any graded model: s1 drops every row with a None feature), then items
   whose question matches one of s1's formatting rules (Asymptote diagrams outside AIME, `![Image]`,
   `p1.`-style numbering, bold numbers).
2. Difficulty: drop questions that any model in `weak_models` solved.
3. Seeds, after the difficulty filter: the `seeds` rules (s1: teacher-correct GPQA and AIME items,
   and teacher-correct MATH items whose trace is longer than 5,600 tokens).
4. Diversity, until N items: a domain uniformly at random while fewer than `uniform_until` (700)
   are chosen, then a domain with the benchmarks' domain weights (s1: the domains of the hard GPQA
   and AIME items, GPQA scaled to half of AIME's total); then an item of that domain with probability
   proportional to 2^-rank, rank 0 being its longest trace. Candidates are every hard item, seeds
   included, as in s1: drawing a seed again uses a draw and adds nothing.

The draws are s1's NumPy calls (`choice` over domains, `choice` with rank weights) on a
`numpy.random.RandomState(seed)` in place of s1's unseeded global generator, over inputs in a fixed
order (pool order; domains sorted; benchmark domains in `benchmarks` order), so the same files and
seed give the same selection. The selection is written in pool order, as s1 filters its pool.

Output: s1K's columns (`solution, question, cot_type, source_type, metadata, cot,
thinking_trajectories, attempt`), the training `text` in the chosen format, and `id`, `domain`,
`trace_tokens`, `selected_by`; as JSONL, Parquet and/or a `datasets` dataset, plus `summary.json`
(counts per stage, per domain, a trace-length histogram).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1.curate.io import CurateError, Row, read_jsonl, write_dataset, write_json, write_jsonl, write_parquet
from s1.curate.table import Table
from s1.curate.traces import load_traces

OUTPUTS: tuple[str, ...] = ("jsonl", "parquet", "dataset")
S1K_COLUMNS: tuple[str, ...] = ("solution", "question", "cot_type", "source_type", "metadata", "cot",
                                "thinking_trajectories", "attempt")
S1_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
SELECTED = "selected"
SUMMARY = "summary.json"


def _regex(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise CurateError(f"{where}: {pattern!r} is not a valid regular expression ({e})") from None


@dataclass(frozen=True)
class QualityRule:
    """Drop an item whose `field` matches `pattern`. `keep_if_source`: an item that matches this rule
    and whose source_type matches it is kept whatever other rule it fails (s1 keeps AIME questions with
    Asymptote diagrams)."""

    name: str
    pattern: re.Pattern
    field: str = "question"
    keep_if_source: re.Pattern | None = None

    @classmethod
    def make(cls, name: str, pattern: str, field: str = "question", keep_if_source: str | None = None) -> QualityRule:
        return cls(name, re.compile(pattern), field, re.compile(keep_if_source) if keep_if_source else None)

    @classmethod
    def from_table(cls, t: Table) -> QualityRule:
        name, pattern = t.str("name"), t.str("pattern")
        field, keep = t.str("field", "question", choices=("question", "solution")), t.str("keep_if_source", None)
        t.done()
        return cls(name, _regex(pattern, t.path("pattern")), field,
                   _regex(keep, t.path("keep_if_source")) if keep else None)

    def matches(self, item: Row) -> bool:
        return self.pattern.search(item.get(self.field) or "") is not None

    def rescues(self, item: Row) -> bool:
        return (self.keep_if_source is not None and self.matches(item)
                and self.keep_if_source.search(item.get("source_type") or "") is not None)


S1_QUALITY_RULES: tuple[QualityRule, ...] = (
    QualityRule.make("asymptote diagram", r"\[asy\]", keep_if_source=r"AIME"),
    QualityRule.make("image reference", r"!\[Image\]"),
    QualityRule.make("problem numbering", r"p[1-9]\d{0,2}\."),  # s1: any of "p1." ... "p999."
    QualityRule.make("bold number", r"\*\*(?=.*\d)[^\s\]]*\*\*"),
)


@dataclass(frozen=True)
class SeedRule:
    """Hard items taken before diversity sampling: from a source (regex on source_type), the teacher
    correct if `teacher_correct`, the trace longer than `longer_than` tokens if set."""

    source: re.Pattern
    teacher_correct: bool = True
    longer_than: int | None = None

    @classmethod
    def make(cls, source: str, teacher_correct: bool = True, longer_than: int | None = None) -> SeedRule:
        return cls(re.compile(source), teacher_correct, longer_than)

    @classmethod
    def from_table(cls, t: Table) -> SeedRule:
        out = cls(_regex(t.str("source"), t.path("source")), t.bool("teacher_correct", True),
                  t.int("longer_than", None, minimum=0))
        t.done()
        return out

    def takes(self, item: Row, feat: Row, teacher: str) -> bool:
        if self.source.search(item.get("source_type") or "") is None:
            return False
        if self.teacher_correct and (feat.get("correct") or {}).get(teacher) is not True:
            return False
        return self.longer_than is None or feat["trace_tokens"] > self.longer_than


@dataclass(frozen=True)
class Benchmark:
    """A benchmark whose domain mix weights the draws after `uniform_until`: its hard items' domain
    counts, scaled so that its total is `weight` times the heaviest benchmark's (s1: GPQA 0.5, AIME 1)."""

    source: re.Pattern
    weight: float = 1.0

    @classmethod
    def make(cls, source: str, weight: float = 1.0) -> Benchmark:
        return cls(re.compile(source), weight)

    @classmethod
    def from_table(cls, t: Table) -> Benchmark:
        out = cls(_regex(t.str("source"), t.path("source")), t.float("weight", 1.0, minimum=0.0))
        t.done()
        return out


S1_SEEDS: tuple[SeedRule, ...] = (
    SeedRule.make(r"^Idavidrein/gpqa$"),
    SeedRule.make(r"^qq8933/AIME_1983_2024$"),
    SeedRule.make(r"openaimath", longer_than=5600),
)
S1_BENCHMARKS: tuple[Benchmark, ...] = (  # s1's order: GPQA's domains first, then AIME's
    Benchmark.make(r"^Idavidrein/gpqa$", 0.5),
    Benchmark.make(r"^qq8933/AIME_1983_2024$", 1.0),
)


@dataclass(frozen=True)
class SelectConfig:
    n: int = 1000
    seed: int | None = None
    weak_models: tuple[str, ...] = ()
    require_complete: bool = True
    seeds: tuple[SeedRule, ...] = S1_SEEDS
    uniform_until: int = 700
    benchmarks: tuple[Benchmark, ...] = S1_BENCHMARKS
    quality_rules: tuple[QualityRule, ...] = S1_QUALITY_RULES
    format: str = "s1"
    chat_template: str | None = None
    system: str | None = S1_SYSTEM
    outputs: tuple[str, ...] = ("jsonl", "parquet")
    histogram_bins: int = 10

    @classmethod
    def from_table(cls, t: Table) -> SelectConfig:
        from s1.forcing.formats import PRESETS

        for old in ("seed_sources", "require_teacher_correct"):
            if t.has(old):
                raise CurateError(f"{t.path(old)}: replaced by [[select.seeds]] tables (source, teacher_correct, "
                                  f"longer_than), taken after the difficulty filter as s1 takes them; see "
                                  f"docs/curation.md")
        rules, seeds, benchmarks = t.tables("quality_rules"), t.tables("seeds"), t.tables("benchmarks")
        out = cls(n=t.int("n", 1000, minimum=1), seed=t.int("seed", None), weak_models=t.strs("weak_models", ()),
                  require_complete=t.bool("require_complete", True),
                  seeds=tuple(SeedRule.from_table(r) for r in seeds) if t.has("seeds") else S1_SEEDS,
                  uniform_until=t.int("uniform_until", 700, minimum=0),
                  benchmarks=(tuple(Benchmark.from_table(b) for b in benchmarks) if t.has("benchmarks")
                              else S1_BENCHMARKS),
                  quality_rules=tuple(QualityRule.from_table(r) for r in rules) if t.has("quality_rules")
                  else S1_QUALITY_RULES,
                  format=t.str("format", "s1", choices=tuple(PRESETS)), chat_template=t.str("chat_template", None),
                  system=t.str("system", S1_SYSTEM), outputs=t.strs("outputs", ("jsonl", "parquet")),
                  histogram_bins=t.int("histogram_bins", 10, minimum=1))
        bad = [o for o in out.outputs if o not in OUTPUTS]
        if bad:
            raise CurateError(f"{t.path('outputs')}: unknown output(s) {', '.join(bad)}; allowed: {', '.join(OUTPUTS)}")
        t.done()
        return out


# ---------------------------------------------------------------------------------------------- selection


def missing_feature(trace: Row | None, feat: Row | None, graded: tuple[str, ...], complete: bool) -> str | None:
    """Why an item lacks what selection needs, or None. `complete` (s1): every graded model's
    correctness must be known too."""
    if trace is None:
        return "missing teacher trace"
    if trace.get("error"):
        return "teacher trace failed"
    if not (trace.get("thinking") or "").strip():
        return "missing trace"
    if not (trace.get("attempt") or "").strip():
        return "missing attempt"
    if feat is None:
        return "missing features"
    if feat.get("domain") is None:
        return "missing domain"
    if feat.get("trace_tokens") is None:
        return "missing trace length"
    if complete:
        correct = feat.get("correct") or {}
        ungraded = [m for m in graded if correct.get(m) is None]
        if ungraded:
            return f"ungraded: {ungraded[0]}"
    return None


def format_reason(item: Row, rules: tuple[QualityRule, ...]) -> str | None:
    """The first formatting rule the question fails, unless a rule it matches rescues it."""
    failed = next((r for r in rules if r.matches(item)), None)
    if failed is None or any(r.rescues(item) for r in rules):
        return None
    return f"format: {failed.name}"


def quality_reason(item: Row, trace: Row | None, feat: Row | None, rules: tuple[QualityRule, ...],
                   graded: tuple[str, ...] = (), complete: bool = True) -> str | None:
    """Why an item fails quality, or None. Missing features come first, then the formatting rules."""
    return missing_feature(trace, feat, graded, complete) or format_reason(item, rules)


def benchmark_weights(hard: list[Row], features: dict[str, Row],
                      benchmarks: tuple[Benchmark, ...]) -> tuple[list[str], list[float]]:
    """(domains, probabilities) of the benchmark phase, built as s1 builds them: per benchmark a Counter
    of its hard items' domains, scaled by `int(count * ratio)`, summed in order (a Counter sum, which
    drops domains whose scaled count is 0)."""
    counts = [Counter(features[it["id"]]["domain"] for it in hard if b.source.search(it.get("source_type") or ""))
              for b in benchmarks]
    present = [(b, c) for b, c in zip(benchmarks, counts, strict=True) if c]
    if not present:
        return [], []
    ref_b, ref_c = max(present, key=lambda bc: bc[0].weight)  # the first of the heaviest
    scaled = [Counter({d: int(v * (b.weight / ref_b.weight * sum(ref_c.values()) / sum(c.values())))
                       for d, v in c.items()}) for b, c in present]
    total = scaled[0]
    for c in scaled[1:]:
        total = total + c  # s1's `gpqa_domain + aime_domain`: the first one's keys first
    total = +total
    domains = list(total)
    weights = [float(total[d]) / sum(total.values()) for d in domains]
    return domains, weights


def rank_weights(lengths: list[int]) -> Any:
    """s1's length preference: rank 0 = longest, probability proportional to 2^-rank (numpy's argsort
    of argsort, as s1 computes the ranks)."""
    import numpy as np

    values = np.array(lengths)
    ranks = len(values) - 1 - np.argsort(np.argsort(values))
    weights = np.power(2.0, -ranks)
    return weights / weights.sum()


def diversity_sample(hard: list[Row], features: dict[str, Row], chosen: dict[str, str], n: int,
                     uniform_until: int, benchmarks: tuple[Benchmark, ...], rng: Any) -> Counter:
    """Add draws to `chosen` (id -> how) until it holds n items or no candidate is left; returns the
    counts per phase."""
    import numpy as np

    by_domain: dict[str, dict[str, int]] = {}
    for it in hard:
        by_domain.setdefault(features[it["id"]]["domain"], {})[it["id"]] = int(features[it["id"]]["trace_tokens"])
    domains = sorted(by_domain)
    bench_domains, bench_weights = benchmark_weights(hard, features, benchmarks)
    weights = np.array(bench_weights)
    counts: Counter = Counter()
    while len(chosen) < n and domains:
        if len(chosen) < uniform_until or not bench_domains:
            phase, domain = "uniform", str(rng.choice(domains, size=1)[0])
        else:
            phase, domain = "benchmark", str(rng.choice(bench_domains, size=1, p=weights)[0])
        items = by_domain[domain]
        ids = list(items)
        pick = str(rng.choice(ids, p=rank_weights(list(items.values()))))
        counts[phase if pick not in chosen else f"{phase} (seed drawn again)"] += 1
        chosen.setdefault(pick, "diversity")
        del items[pick]
        if not items:
            domains.remove(domain)
            if domain in bench_domains:
                weights = np.delete(weights, bench_domains.index(domain))
                weights = weights / weights.sum() if weights.size else weights
                bench_domains.remove(domain)
    return counts


def select(pool: list[Row], features: dict[str, Row], teacher: dict[str, Row], cfg: SelectConfig, seed: int,
           teacher_name: str) -> tuple[list[tuple[Row, str]], dict[str, Any]]:
    """[(item, how it was selected)] in pool order, and the per-step counts."""
    import numpy as np

    known = {m for f in features.values() for m in (f.get("correct") or {})}
    graded = tuple(m for m in dict.fromkeys([teacher_name, *cfg.weak_models]) if m in known)  # models featurize graded
    dropped: Counter = Counter()
    passed, seen = [], set()
    for it in pool:
        if it["id"] in seen:
            continue
        seen.add(it["id"])
        why = quality_reason(it, teacher.get(it["id"]), features.get(it["id"]), cfg.quality_rules, graded,
                             cfg.require_complete)
        if why is None:
            passed.append(it)
        else:
            dropped[why] += 1
    hard, easy = [], Counter()
    for it in passed:
        correct = features[it["id"]].get("correct") or {}
        solved_by = [m for m in cfg.weak_models if correct.get(m) is True]
        if solved_by:
            easy[f"solved by {solved_by[0]}"] += 1
        else:
            hard.append(it)
    chosen: dict[str, str] = {}
    for it in hard:
        if any(rule.takes(it, features[it["id"]], teacher_name) for rule in cfg.seeds):
            chosen[it["id"]] = "seed"
    seeds = len(chosen)
    if seeds > cfg.n:
        raise CurateError(f"select: the seed rules take {seeds} items, more than n = {cfg.n}")
    phases = diversity_sample(hard, features, chosen, cfg.n, cfg.uniform_until, cfg.benchmarks,
                              np.random.RandomState(seed))
    steps = {"quality": {"input": len(seen), "dropped": dict(dropped.most_common()), "output": len(passed)},
             "difficulty": {"input": len(passed), "dropped": dict(easy.most_common()), "output": len(hard)},
             "seeds": {"selected": seeds},
             "diversity": {"input": len(hard), "selected": len(chosen) - seeds, "draws": dict(phases)},
             "selected": len(chosen)}
    return [(it, chosen[it["id"]]) for it in hard if it["id"] in chosen], steps


# ---------------------------------------------------------------------------------------------- output


def training_text(question: str, thinking: str, attempt: str, fmt: Any, tokenizer: Any = None,
                  system: str | None = S1_SYSTEM) -> str:
    """The whole training example as s1's `tokenization.py` writes its `text`: the chat template (the
    tokenizer's, else ChatML as Qwen2.5's renders it) over the question and one assistant turn
    `{think_open}{trace}\n{think_close}{answer}`, the answer being `Answer: {attempt}` unless the attempt
    says "Answer:" already."""
    from s1.train.sft import chat_prompt_completion, curated_record

    record = curated_record({"question": question, "thinking_trajectories": [thinking], "attempt": attempt})
    if tokenizer is not None:
        pc = chat_prompt_completion(record, tokenizer, fmt, system=system)
        return pc["prompt"] + pc["completion"]
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    turn = fmt.think_open + record["thinking"] + "\n" + fmt.think_close + record["answer"]
    return f"{head}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{turn}<|im_end|>\n"


def output_row(item: Row, trace: Row, feat: Row, how: str, text: str) -> Row:
    row = {
        "solution": item.get("solution"), "question": item["question"], "cot_type": item.get("cot_type"),
        "source_type": item.get("source_type"), "metadata": json.dumps(item.get("metadata") or {}, ensure_ascii=False),
        "cot": None, "thinking_trajectories": [trace["thinking"]], "attempt": trace["attempt"], "text": text,
        "id": item["id"], "domain": feat["domain"], "domain_name": feat.get("domain_name"),
        "trace_tokens": feat["trace_tokens"], "selected_by": how,
    }
    return row


def histogram(values: list[int], bins: int) -> list[dict[str, int]]:
    """Equal-width integer bins from min to max: [{lo, hi, count}] with lo <= v < hi (last bin closed)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    counts = Counter(min((v - lo) // width, bins - 1) for v in values)
    return [{"lo": lo + b * width, "hi": lo + (b + 1) * width, "count": counts.get(b, 0)}
            for b in range(min(bins, (hi - lo) // width + 1))]


def run_select(cfg: SelectConfig, teacher: str, seed: int, out_dir: str | Path) -> dict[str, Any]:
    """Read `clean.jsonl`, the teacher's traces and `features.jsonl`; write the selection and `summary.json`."""
    from s1.forcing.formats import get_format

    out = Path(out_dir)
    pool = read_jsonl(out / "clean.jsonl")
    features = {r["id"]: r for r in read_jsonl(out / "features.jsonl")}
    traces = load_traces(out, teacher)
    if not traces:
        raise CurateError(f"select: no traces of the teacher {teacher!r} in {out / 'traces'}; run the traces stage")
    unknown = [m for m in cfg.weak_models if not any(m in (f.get("correct") or {}) for f in features.values())]
    if unknown and features:
        raise CurateError(f"select.weak_models: no correctness features for {', '.join(unknown)}; list them in "
                          f"traces.models and rerun traces and featurize")
    chosen, steps = select(pool, features, traces, cfg, seed, teacher)
    fmt = get_format(cfg.format)
    tokenizer = None
    if cfg.chat_template is not None:
        from transformers import AutoTokenizer

        from s1.models import resolve_model

        try:
            tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.chat_template))
        except (OSError, ValueError) as exc:
            raise CurateError(f"select.chat_template: cannot load tokenizer {cfg.chat_template!r}: {exc}") from None
    rows = []
    for it, how in chosen:
        trace, feat = traces[it["id"]], features[it["id"]]
        text = training_text(it["question"], trace["thinking"], trace["attempt"], fmt, tokenizer, cfg.system)
        rows.append(output_row(it, trace, feat, how, text))
    files = write_outputs(rows, out, cfg.outputs)
    summary = build_summary(out, rows, steps, features, cfg, seed)
    summary["files"] = files
    write_json(out / SUMMARY, summary)
    return summary


def write_outputs(rows: list[Row], out: Path, outputs: tuple[str, ...]) -> list[str]:
    files = []
    if "jsonl" in outputs:
        write_jsonl(out / f"{SELECTED}.jsonl", rows)
        files.append(str(out / f"{SELECTED}.jsonl"))
    if "parquet" in outputs:
        write_parquet(out / f"{SELECTED}.parquet", rows)
        files.append(str(out / f"{SELECTED}.parquet"))
    if "dataset" in outputs:
        write_dataset(out / f"{SELECTED}_dataset", rows)
        files.append(str(out / f"{SELECTED}_dataset"))
    return files


def build_summary(out: Path, rows: list[Row], steps: dict[str, Any], features: dict[str, Row], cfg: SelectConfig,
                  seed: int) -> dict[str, Any]:
    """Counts per stage (from each stage's report), per domain, and the selected traces' lengths."""
    stages: dict[str, Any] = {}
    for name in ("collect", "decontaminate", "traces", "featurize"):
        path = out / f"{name}.json"
        if path.is_file():
            stages[name] = _brief(name, json.loads(path.read_text(encoding="utf-8")))
    stages["select"] = steps
    pool_domains = Counter(f["domain"] for f in features.values() if f.get("domain") is not None)
    picked = Counter(r["domain"] for r in rows)
    names = {f["domain"]: f.get("domain_name") for f in features.values() if f.get("domain") is not None}
    lengths = [r["trace_tokens"] for r in rows]
    return {
        "seed": seed, "n": cfg.n, "selected": len(rows), "stages": stages,
        "per_domain": {d: {"name": names.get(d), "featurized": pool_domains[d], "selected": picked.get(d, 0)}
                       for d in sorted(pool_domains)},
        "trace_tokens": ({"min": min(lengths), "median": statistics.median(lengths),
                          "mean": round(statistics.fmean(lengths), 1), "max": max(lengths)} if lengths else {}),
        "length_histogram": histogram(lengths, cfg.histogram_bins),
    }


def _brief(name: str, report: dict[str, Any]) -> dict[str, Any]:
    if name == "collect":
        return {"items": report["items"], "sources": {k: v["items"] for k, v in report["sources"].items()}}
    if name == "decontaminate":
        return {k: report.get(k) for k in ("input", "contaminated", "near_duplicates", "duplicates", "sampled_out",
                                            "kept")}
    if name == "traces":
        return {m: {k: v[k] for k in ("items", "generated", "cached", "failed_total")}
                for m, v in report["models"].items()}
    return {"items": report["items"], "domains_classified": report["domains"]["classified"],
            "correct": report["correct"]}
