"""Stage 3, traces: each configured model's reasoning trace and attempt for every pool question.

The teacher's traces become the training data; the other models' attempts (weaker models) feed the
difficulty filter. Results are cached by question hash in append-only files
(`traces/<model>.jsonl`), written chunk by chunk (fsync'd), so an interrupted run resumes where it
stopped and a rerun costs nothing. A failed generation is stored with its error and counted; it is
retried on the next run unless `retry_failed = false`.

Many workers: `shard = (i, n)` gives worker i the questions whose hash falls in its share; each
writes `traces/<model>.shard-<i>-of-<n>.jsonl`, and every reader merges all files of a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s1.curate.io import Appender, CurateError, Row, read_cache, read_jsonl, write_json
from s1.curate.llm import Prompt, TextModel
from s1.curate.table import Table

TRACES_DIR = "traces"
REPORT = "traces.json"


@dataclass(frozen=True)
class TracesConfig:
    teacher: str
    models: tuple[str, ...] = ()
    prompt: str = "{question}"
    system: str | None = None
    retry_failed: bool = True
    chunk_size: int = 64

    @classmethod
    def from_table(cls, t: Table) -> TracesConfig:
        out = cls(teacher=t.str("teacher"), models=t.strs("models", ()), prompt=t.str("prompt", "{question}"),
                  system=t.str("system", None), retry_failed=t.bool("retry_failed", True),
                  chunk_size=t.int("chunk_size", 64, minimum=1))
        if "{question}" not in out.prompt:
            raise CurateError(f"{t.path('prompt')} must contain {{question}}, got {out.prompt!r}")
        if out.teacher in out.models:
            raise CurateError(f"{t.path('models')} must not repeat the teacher {out.teacher!r}")
        t.done()
        return out

    @property
    def all_models(self) -> tuple[str, ...]:
        return (self.teacher, *self.models)


def trace_files(out_dir: str | Path, model: str) -> list[Path]:
    """Every cache file of `model` (unsharded and shards)."""
    d = Path(out_dir) / TRACES_DIR
    return sorted([*d.glob(f"{model}.jsonl"), *d.glob(f"{model}.shard-*.jsonl")])


def load_traces(out_dir: str | Path, model: str) -> dict[str, Row]:
    """The latest trace record per question id for `model`."""
    return read_cache(trace_files(out_dir, model))


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return count == 1 or int(item_id, 16) % count == index


def _record(item_id: str, model: str, c: Any) -> Row:
    return {"id": item_id, "model": model, "thinking": c.thinking, "attempt": c.text, "error": c.error,
            "thinking_tokens": c.thinking_tokens, "output_tokens": c.output_tokens,
            "finish_reason": c.finish_reason, "wall_time_s": round(c.wall_time_s, 3)}


def generate_traces(pool: list[Row], model_name: str, make_model: Callable[[], TextModel], cfg: TracesConfig,
                    out_dir: str | Path, shard: tuple[int, int] = (0, 1),
                    on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Generate what the cache lacks for one model; the model is built only if something is pending."""
    cached = load_traces(out_dir, model_name)
    mine = [it for it in pool if in_shard(it["id"], shard)]
    seen: set[str] = set()
    pending = []
    for it in mine:
        rec = cached.get(it["id"])
        done = rec is not None and (rec.get("error") is None or not cfg.retry_failed)
        if not done and it["id"] not in seen:
            seen.add(it["id"])
            pending.append(it)
    failed = 0
    if pending:
        model = make_model()
        suffix = "" if shard == (0, 1) else f".shard-{shard[0]}-of-{shard[1]}"
        with Appender(Path(out_dir) / TRACES_DIR / f"{model_name}{suffix}.jsonl") as cache:
            for start in range(0, len(pending), cfg.chunk_size):
                chunk = pending[start : start + cfg.chunk_size]
                prompts = [Prompt(it["id"], cfg.prompt.replace("{question}", it["question"]), cfg.system)
                           for it in chunk]
                completions = model.complete(prompts)
                records = [_record(it["id"], model_name, c) for it, c in zip(chunk, completions, strict=True)]
                failed += sum(r["error"] is not None for r in records)
                cache.add(records)
                if on_chunk:
                    on_chunk(len(chunk))
    latest = load_traces(out_dir, model_name)
    errors = [latest[it["id"]]["error"] for it in mine if it["id"] in latest and latest[it["id"]]["error"]]
    return {"items": len(mine), "cached": len(mine) - len(pending), "generated": len(pending),
            "failed_now": failed, "failed_total": len(errors), "example_errors": sorted(set(errors))[:3]}


def run_traces(cfg: TracesConfig, models: dict[str, Callable[[], TextModel]], out_dir: str | Path,
               shard: tuple[int, int] = (0, 1), on_chunk: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Traces for the teacher and every listed model over `clean.jsonl`; writes `traces.json`."""
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise CurateError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    missing = [m for m in cfg.all_models if m not in models]
    if missing:
        raise CurateError(f"traces: model(s) {', '.join(missing)} are not defined; add [models.<name>] tables "
                          f"(defined: {', '.join(models) or 'none'})")
    pool = read_jsonl(Path(out_dir) / "clean.jsonl")
    per_model = {}
    for name in cfg.all_models:
        per_model[name] = generate_traces(pool, name, models[name], cfg, out_dir, shard,
                                          (lambda n, m=name: on_chunk(m, n)) if on_chunk else None)
    report = {"stage": "traces", "teacher": cfg.teacher, "shard": f"{index}/{count}", "models": per_model}
    write_json(Path(out_dir) / (REPORT if count == 1 else f"traces.shard-{index}-of-{count}.json"), report)
    return report
