"""Stage 5, select: quality, difficulty and diversity, as s1 chose s1K, but seeded and reproducible.

1. Quality: drop items with a missing feature (no teacher trace or attempt, no domain, no length) and
   items whose question matches a formatting rule (s1's: Asymptote diagrams outside AIME, image
   references, `p1.`-style numbering, bold numbers).
2. Seeds: items from sources named in `seed_sources` (s1 kept such high-quality, benchmark-relevant
   sets whole) are taken first and skip the difficulty filter.
3. Difficulty: drop questions that any model in `weak_models` solved.
4. Diversity: until N items are chosen, pick a domain uniformly at random, then an item of it with
   probability proportional to 2^-rank, rank 0 being its longest remaining trace.

All randomness comes from one `random.Random(seed)` over inputs in a fixed order (pool order, domains
sorted, items ranked by length then id), so the same files and seed give the same selection.

Output: s1K's columns (`solution, question, cot_type, source_type, metadata, cot,
thinking_trajectories, attempt`), the training `text` in the chosen format, and `id`, `domain`,
`trace_tokens`, `selected_by`; as JSONL, Parquet and/or a `datasets` dataset, plus `summary.json`
(counts per stage, per domain, a trace-length histogram).
"""

from __future__ import annotations

import json
import math
import random
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


@dataclass(frozen=True)
class QualityRule:
    """Drop an item whose `field` matches `pattern`, unless its source_type matches `except_source`."""

    name: str
    pattern: re.Pattern
    field: str = "question"
    except_source: re.Pattern | None = None

    @classmethod
    def make(cls, name: str, pattern: str, field: str = "question", except_source: str | None = None) -> QualityRule:
        return cls(name, re.compile(pattern), field, re.compile(except_source) if except_source else None)

    @classmethod
    def from_table(cls, t: Table) -> QualityRule:
        name, pattern = t.str("name"), t.str("pattern")
        field, exc = t.str("field", "question", choices=("question", "solution")), t.str("except_source", None)
        t.done()
        try:
            return cls.make(name, pattern, field, exc)
        except re.error as e:
            raise CurateError(f"{t.where}: not a valid regular expression ({e})") from None

    def fails(self, item: Row) -> bool:
        text = item.get(self.field) or ""
        if self.except_source is not None and self.except_source.search(item.get("source_type") or ""):
            return False
        return self.pattern.search(text) is not None


S1_QUALITY_RULES: tuple[QualityRule, ...] = (
    QualityRule.make("asymptote diagram", r"\[asy\]", except_source=r"AIME"),
    QualityRule.make("image reference", r"!\[Image\]|!\[[^\]]*\]\([^)]*\)"),
    QualityRule.make("problem numbering", r"p[1-9]\d{0,2}\."),
    QualityRule.make("bold number", r"\*\*(?=.*\d)[^\s\]]*\*\*"),
)


@dataclass(frozen=True)
class SelectConfig:
    n: int = 1000
    seed: int | None = None
    weak_models: tuple[str, ...] = ()
    require_teacher_correct: bool = False
    seed_sources: tuple[str, ...] = ()
    quality_rules: tuple[QualityRule, ...] = S1_QUALITY_RULES
    format: str = "s1"
    chat_template: str | None = None
    system: str | None = S1_SYSTEM
    outputs: tuple[str, ...] = ("jsonl", "parquet")
    histogram_bins: int = 10

    @classmethod
    def from_table(cls, t: Table) -> SelectConfig:
        from s1.forcing.formats import PRESETS

        rules = t.tables("quality_rules")
        out = cls(n=t.int("n", 1000, minimum=1), seed=t.int("seed", None), weak_models=t.strs("weak_models", ()),
                  require_teacher_correct=t.bool("require_teacher_correct", False),
                  seed_sources=t.strs("seed_sources", ()),
                  quality_rules=tuple(QualityRule.from_table(r) for r in rules) if rules else S1_QUALITY_RULES,
                  format=t.str("format", "s1", choices=tuple(PRESETS)), chat_template=t.str("chat_template", None),
                  system=t.str("system", S1_SYSTEM), outputs=t.strs("outputs", ("jsonl", "parquet")),
                  histogram_bins=t.int("histogram_bins", 10, minimum=1))
        bad = [o for o in out.outputs if o not in OUTPUTS]
        if bad:
            raise CurateError(f"{t.path('outputs')}: unknown output(s) {', '.join(bad)}; allowed: {', '.join(OUTPUTS)}")
        for pattern in out.seed_sources:
            try:
                re.compile(pattern)
            except re.error as e:
                raise CurateError(f"{t.path('seed_sources')}: {pattern!r} is not a valid regular expression ({e})") \
                    from None
        t.done()
        return out


# ---------------------------------------------------------------------------------------------- selection


def quality_reason(item: Row, trace: Row | None, feat: Row | None, rules: tuple[QualityRule, ...]) -> str | None:
    """Why an item fails quality, or None. Missing features come first, then the formatting rules."""
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
    for rule in rules:
        if rule.fails(item):
            return f"format: {rule.name}"
    return None


def pick_rank(rng: random.Random, n: int) -> int:
    """A rank in [0, n) drawn with probability proportional to 2^-rank (inverse CDF of one uniform)."""
    total = 1.0 - 2.0**-n
    u = rng.random() * total
    return min(n - 1, int(-math.log2(1.0 - u)))


def diversity_sample(candidates: list[Row], features: dict[str, Row], k: int, rng: random.Random) -> list[Row]:
    """Up to k items: a uniformly random domain, then an item of it by 2^-rank of trace length."""
    by_domain: dict[str, list[Row]] = {}
    for it in candidates:
        by_domain.setdefault(features[it["id"]]["domain"], []).append(it)
    for items in by_domain.values():
        items.sort(key=lambda it: (-features[it["id"]]["trace_tokens"], it["id"]))
    domains = sorted(by_domain)
    chosen: list[Row] = []
    while len(chosen) < k and domains:
        d = domains[rng.randrange(len(domains))]
        items = by_domain[d]
        chosen.append(items.pop(pick_rank(rng, len(items))))
        if not items:
            domains.remove(d)
    return chosen


def select(pool: list[Row], features: dict[str, Row], teacher: dict[str, Row], cfg: SelectConfig, seed: int,
           teacher_name: str) -> tuple[list[tuple[Row, str]], dict[str, Any]]:
    """[(item, how it was selected)] in selection order, and the per-step counts."""
    rng = random.Random(seed)
    dropped: Counter = Counter()
    passed = []
    for it in pool:
        why = quality_reason(it, teacher.get(it["id"]), features.get(it["id"]), cfg.quality_rules)
        if why is None:
            passed.append(it)
        else:
            dropped[why] += 1
    seed_res = [re.compile(p) for p in cfg.seed_sources]
    seeds = [it for it in passed if any(r.search(it["source_type"] or "") for r in seed_res)]
    seed_ids = {it["id"] for it in seeds}
    rest = [it for it in passed if it["id"] not in seed_ids]
    hard, easy = [], Counter()
    for it in rest:
        correct = features[it["id"]].get("correct") or {}
        solved_by = [m for m in cfg.weak_models if correct.get(m) is True]
        if solved_by:
            easy[f"solved by {solved_by[0]}"] += 1
        elif cfg.require_teacher_correct and correct.get(teacher_name) is not True:
            easy["teacher not correct"] += 1
        else:
            hard.append(it)
    if len(seeds) > cfg.n:
        keep = sorted(rng.sample(range(len(seeds)), cfg.n))
        seeds = [seeds[i] for i in keep]
    picked = diversity_sample(hard, features, cfg.n - len(seeds), rng)
    steps = {"quality": {"input": len(pool), "dropped": dict(dropped.most_common()), "output": len(passed)},
             "seeds": {"patterns": list(cfg.seed_sources), "selected": len(seeds)},
             "difficulty": {"input": len(rest), "dropped": dict(easy.most_common()), "output": len(hard)},
             "diversity": {"input": len(hard), "selected": len(picked)},
             "selected": len(seeds) + len(picked)}
    return [(it, "seed") for it in seeds] + [(it, "diversity") for it in picked], steps


# ---------------------------------------------------------------------------------------------- output


def training_text(question: str, thinking: str, attempt: str, fmt: Any, tokenizer: Any = None,
                  system: str | None = S1_SYSTEM) -> str:
    """The whole training example as one string: the chat prompt (the tokenizer's chat template, else
    ChatML as s1 used it) + `{think_open}{trace}\\n{think_close}Answer: {attempt}` + end of turn."""
    from s1.train.sft import curated_record, to_prompt_completion

    record = curated_record({"question": question, "thinking_trajectories": [thinking], "attempt": attempt})
    if tokenizer is not None:
        pc = to_prompt_completion(record, tokenizer, fmt, system=system)
        return pc["prompt"] + pc["completion"]
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    prompt = f"{head}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{fmt.think_open}"
    return prompt + record["thinking"].rstrip("\n") + "\n" + fmt.think_close + record["answer"] + "<|im_end|>"


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
        return {k: report[k] for k in ("input", "contaminated", "duplicates", "kept")}
    if name == "traces":
        return {m: {k: v[k] for k in ("items", "generated", "cached", "failed_total")}
                for m, v in report["models"].items()}
    return {"items": report["items"], "domains_classified": report["domains"]["classified"],
            "correct": report["correct"]}
