"""Stage 1, collect: every configured source into one pool file (`pool.jsonl`) and a report.

Sources are read in config order and their items appended in row order, so the pool (and every
later stage) is the same on every run with the same config and seed. Duplicates across sources are
kept here and reported by the decontaminate stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s1.curate.io import CurateError, write_json, write_jsonl
from s1.curate.sources import SourceSpec, build_items, load_source_rows

POOL = "pool.jsonl"
REPORT = "collect.json"


def collect(sources: list[SourceSpec], seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All sources' items in order, and a per-source report (rows read, items kept, drops by reason)."""
    if not sources:
        raise CurateError("sources: the config lists no sources ([[sources]] tables)")
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CurateError(f"sources: names must be unique; repeated: {', '.join(dup)}")
    pool: list[dict[str, Any]] = []
    per_source: dict[str, Any] = {}
    for spec in sources:
        result = build_items(spec, load_source_rows(spec), seed)
        pool += result.items
        per_source[spec.name] = result.report()
    report = {"stage": "collect", "seed": seed, "items": len(pool), "sources": per_source}
    return pool, report


def run_collect(sources: list[SourceSpec], seed: int, out_dir: str | Path) -> dict[str, Any]:
    """Write `pool.jsonl` and `collect.json` into `out_dir`; returns the report."""
    pool, report = collect(sources, seed)
    out = Path(out_dir)
    write_jsonl(out / POOL, pool)
    write_json(out / REPORT, report)
    return report
