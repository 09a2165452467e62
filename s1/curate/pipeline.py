"""Running the stages: each one alone (from the previous stage's files) or all in order.

    collect -> pool.jsonl -> decontaminate -> clean.jsonl -> traces -> traces/<model>.jsonl
            -> featurize -> features.jsonl -> select -> selected.{jsonl,parquet} + summary.json
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from s1.curate.collect import run_collect
from s1.curate.config import CurateConfig
from s1.curate.decontaminate import run_decontaminate
from s1.curate.featurize import run_featurize
from s1.curate.io import CurateError
from s1.curate.llm import TextModel, build_model
from s1.curate.select import run_select
from s1.curate.traces import run_traces

STAGES: tuple[str, ...] = ("collect", "decontaminate", "traces", "featurize", "select")


def model_factories(cfg: CurateConfig) -> dict[str, Callable[[], TextModel]]:
    """A builder per configured model; each model is built at most once, and only when a stage needs it."""
    built: dict[str, TextModel] = {}

    def factory(name: str) -> Callable[[], TextModel]:
        def make() -> TextModel:
            if name not in built:
                built[name] = build_model(cfg.models[name])
            return built[name]
        return make

    return {name: factory(name) for name in cfg.models}


def run_stage(cfg: CurateConfig, stage: str, *, shard: tuple[int, int] = (0, 1),
              models: dict[str, Callable[[], TextModel]] | None = None,
              on_progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Run one stage; returns its report (also written next to its output)."""
    if stage not in STAGES:
        raise CurateError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    models = models if models is not None else model_factories(cfg)
    if stage == "collect":
        return run_collect(list(cfg.sources), cfg.seed, cfg.out_dir)
    if stage == "decontaminate":
        return run_decontaminate(cfg.decontaminate, cfg.out_dir, cfg.sources)
    cfg.need("traces")
    assert cfg.traces is not None
    if stage == "traces":
        return run_traces(cfg.traces, models, cfg.out_dir, shard, on_progress)
    if stage == "featurize":
        cfg.need("featurize")
        assert cfg.featurize is not None
        graded = cfg.featurize.graded or cfg.traces.all_models
        return run_featurize(cfg.featurize, cfg.traces.teacher, graded, models, cfg.out_dir)
    return run_select(cfg.select, cfg.traces.teacher, cfg.select_seed, cfg.out_dir)


def run_all(cfg: CurateConfig, stages: tuple[str, ...] = STAGES,
            on_stage: Callable[[str, dict[str, Any]], None] | None = None,
            on_progress: Callable[[str, int], None] | None = None) -> dict[str, dict[str, Any]]:
    """Every stage in order with one set of models (each loaded once); returns the reports."""
    models = model_factories(cfg)
    reports = {}
    for stage in stages:
        reports[stage] = run_stage(cfg, stage, models=models, on_progress=on_progress)
        if on_stage:
            on_stage(stage, reports[stage])
    return reports


def report_lines(stage: str, r: dict[str, Any]) -> list[str]:
    """A few human lines per stage report (the CLI prints them)."""
    if stage == "collect":
        lines = [f"collect: {r['items']} items from {len(r['sources'])} sources"]
        for name, s in r["sources"].items():
            drops = ", ".join(f"{k} {v}" for k, v in s["dropped"].items())
            lines.append(f"  {name}: {s['rows']} rows -> {s['items']} items"
                         + (f" (dropped: {drops})" if drops else ""))
        return lines
    if stage == "decontaminate":
        skipped = [k for k, v in r["eval_sets"].items() if "skipped" in v]
        lines = [f"decontaminate: {r['input']} -> {r['kept']}",
                 f"  {r['contaminated']} contaminated, {r['near_duplicates']} near-duplicates, {r['duplicates']} "
                 f"duplicates, {r['sampled_out']} capped",
                 f"  {r['ngram']}-grams of {len(r['eval_sets'])} eval sets"
                 + (" and of every earlier source" if r.get("cross_source") else "")]
        if r["by_eval_set"]:
            lines.append("  by eval set: " + ", ".join(f"{k} {v}" for k, v in r["by_eval_set"].items()))
        if skipped:
            lines.append(f"  skipped (unavailable): {', '.join(skipped)}")
        return lines
    if stage == "traces":
        return [f"traces ({r['shard']}):"] + [
            f"  {m}: {v['items']} items, {v['generated']} generated, {v['cached']} cached, {v['failed_total']} failed"
            for m, v in r["models"].items()]
    if stage == "featurize":
        d = r["domains"]
        lines = [f"featurize: {r['items']} items; domains {d['classified']} classified, {d['unclassified']} not; "
                 f"judge calls {r['judge_calls']}"]
        lines += [f"  correct {m}: {c['true']} yes, {c['false']} no, {c['unknown']} unknown"
                  for m, c in r["correct"].items()]
        return lines
    s = r["stages"]["select"]
    q, d = s["quality"], s["difficulty"]
    lines = [f"select: {r['selected']} of n={r['n']} (seed {r['seed']})",
             f"  quality: {q['input']} -> {q['output']} {q['dropped'] or ''}",
             f"  difficulty: {d['input']} -> {d['output']} {d['dropped'] or ''}",
             f"  seeds (hard items by the seed rules): {s['seeds']['selected']}",
             f"  diversity: {s['diversity']['selected']} from {len(r['per_domain'])} domains; draws "
             f"{s['diversity']['draws'] or '{}'}",
             "  trace tokens: " + ", ".join(f"{k} {v}" for k, v in r["trace_tokens"].items()),
             "  files: " + ", ".join(r.get("files", []))]
    return lines
