"""Stage 4, featurize: what selection needs to know about each question, as s1's `featurization.py`
computes it.

- correctness of every graded model's attempt (the teacher's and the weaker models'): by default s1's
  way, the judge (Claude 3.5 Sonnet in s1) asked on every attempt whose question has a solution, with
  s1's grading prompt, its verdict read from the reply's last line ("Yes" / "No" exactly); a question
  without a solution gets no grade (None), as in s1. With `math_verify_first`, math-verify (GPQA-style
  items: their letter) grades first and only what it does not credit goes to the judge (fewer calls).
  Without a judge, math-verify alone grades.
- domain: one of s1's 61 MSC classes, from an LLM classifier shown s1's rubric and prompts
  (`s1.curate.domains`); or, without a classifier, a pool column named by `domain_field`.
- trace length: the teacher's thinking in tokens of a named tokenizer (s1: Qwen2.5-32B-Instruct's).

A reply s1 would not accept (no Yes/No last line, no two-digit ending) is asked again, up to
`invalid_retries` times (s1 asks until it gets one); what stays unreadable is no feature (None), and
selection drops items with a missing feature. LLM replies are cached by prompt
(`cache/domain-<model>.jsonl`, `cache/judge-<model>.jsonl`), so a rerun calls nothing it already has.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import s1.curate.protocol as protocol
from s1.curate.domains import classify_prompt, domain_name, parse_code, reply_ends_in_code, system_prompt
from s1.curate.io import Appender, CurateError, Row, question_hash, read_cache, read_jsonl, write_json, write_jsonl
from s1.curate.llm import Prompt, TextModel
from s1.curate.table import Table
from s1.curate.traces import load_traces

FEATURES = "features.jsonl"
REPORT = "featurize.json"
CACHE_DIR = "cache"
VERDICTS = ("Yes", "No")


def judge_prompt(question: str, attempt: str, solution: str, template: str = protocol.GRADING_USER) -> str:
    return protocol.text(template).format(question=question, attempt=attempt, solution=solution)


def judge_verdict(reply: str | None) -> bool | None:
    """s1's reading: the reply's last line is exactly "Yes" or "No"; anything else is no verdict."""
    last = (reply or "").split("\n")[-1]
    return last == "Yes" if last in VERDICTS else None


@dataclass(frozen=True)
class FeaturizeConfig:
    graded: tuple[str, ...] | None = None
    judge: str | None = None
    math_verify_first: bool = False
    domain_model: str | None = None
    domain_field: str | None = None
    tokenizer: str | None = None
    math_timeout: float = 5.0
    chunk_size: int = 64
    invalid_retries: int = 3
    judge_system: str = protocol.GRADING_SYSTEM
    judge_user: str = protocol.GRADING_USER
    domain_system: str = protocol.DOMAIN_SYSTEM
    domain_user: str = protocol.DOMAIN_USER
    rubric: str = protocol.MSC

    @classmethod
    def from_table(cls, t: Table) -> FeaturizeConfig:
        out = cls(graded=t.strs("graded", None), judge=t.str("judge", None),
                  math_verify_first=t.bool("math_verify_first", False), domain_model=t.str("domain_model", None),
                  domain_field=t.str("domain_field", None), tokenizer=t.str("tokenizer", None),
                  math_timeout=t.float("math_timeout", 5.0, minimum=0.1), chunk_size=t.int("chunk_size", 64, minimum=1),
                  invalid_retries=t.int("invalid_retries", 3, minimum=0),
                  judge_system=t.str("judge_system", protocol.GRADING_SYSTEM),
                  judge_user=t.str("judge_user", protocol.GRADING_USER),
                  domain_system=t.str("domain_system", protocol.DOMAIN_SYSTEM),
                  domain_user=t.str("domain_user", protocol.DOMAIN_USER), rubric=t.str("rubric", protocol.MSC))
        if (out.domain_model is None) == (out.domain_field is None):
            raise CurateError(f"{t.where}: give exactly one of domain_model (an LLM classifier, [models.<name>]) or "
                              f"domain_field (a pool column such as cot_type)")
        for key in ("judge_system", "judge_user", "domain_system", "domain_user", "rubric"):
            if not protocol.path_of(getattr(out, key)).is_file():
                raise CurateError(f"{t.path(key)}: no such file {getattr(out, key)!r} (a shipped s1 file or a path)")
        t.done()
        return out


# ---------------------------------------------------------------------------------------------- gold


def gold_answer(item: Row) -> str | None:
    """The short gold answer to verify against: the source's answer column, else the solution's last
    \\boxed{}, else its `Answer:` line, else the whole solution when it is one short line."""
    from s1.grading.extract import find_answer, last_boxed

    meta = item.get("metadata") or {}
    if meta.get("answer") not in (None, ""):
        return str(meta["answer"]).strip()
    solution = (item.get("solution") or "").strip()
    if not solution:
        return None
    boxed = last_boxed(solution)
    if boxed:
        return boxed.strip()
    found = find_answer(solution)
    if found is not None:
        return found.text
    return solution if "\n" not in solution and len(solution) <= 40 else None


# ---------------------------------------------------------------------------------------------- LLM calls


def cached_calls(model: TextModel, prompts: list[Prompt], path: Path, chunk_size: int,
                 valid: Callable[[str], bool] = lambda reply: True, retries: int = 0) -> tuple[dict[str, Row], int]:
    """(replies per prompt id, how many calls were made now). A cached reply is reused when it is not a
    failure and `valid` accepts it; the rest are asked in chunks and appended to the cache. A reply that
    is not valid is asked again, up to `retries` more times over all runs (each cache row counts its
    `tries`; s1 re-asks until it gets a valid reply); a failed call is asked again on every run."""
    cache = read_cache([path], key="id")
    calls = 0
    for _ in range(retries + 1):
        pending = [p for p in prompts if p.id not in cache or _needs_asking(cache[p.id], valid, retries)]
        if not pending:
            break
        with Appender(path) as out:
            for start in range(0, len(pending), chunk_size):
                chunk = pending[start : start + chunk_size]
                rows = [{"id": p.id, "reply": c.text, "error": c.error, "tries": _tries(cache.get(p.id), c.error)}
                        for p, c in zip(chunk, model.complete(chunk), strict=True)]
                out.add(rows)
                cache.update({r["id"]: r for r in rows})
        calls += len(pending)
    return {p.id: cache[p.id] for p in prompts}, calls


def _tries(previous: Row | None, error: str | None) -> int:
    """Answers received so far for a prompt (a failed call is not an answer)."""
    before = (previous or {}).get("tries", 1 if previous and previous.get("error") is None else 0)
    return before + (error is None)


def _needs_asking(row: Row, valid: Callable[[str], bool], retries: int) -> bool:
    if row.get("error") is not None:
        return True
    return not valid(row.get("reply") or "") and row.get("tries", 1) <= retries


def _usable(row: Row, valid: Callable[[str], bool]) -> bool:
    return row.get("error") is None and valid(row.get("reply") or "")


def classify_domains(pool: list[Row], model: TextModel, out_dir: Path, cfg: FeaturizeConfig) -> dict[str, tuple]:
    """(code, why) per item id from the LLM classifier (cached), with s1's prompts and rubric."""
    system = system_prompt(cfg.domain_system)
    prompts = [Prompt(it["id"], classify_prompt(it["question"], cfg.domain_user, cfg.rubric), system)
               for it in _unique(pool)]
    replies, _ = cached_calls(model, prompts, out_dir / CACHE_DIR / f"domain-{model.name}.jsonl", cfg.chunk_size,
                              valid=reply_ends_in_code, retries=cfg.invalid_retries)
    out = {}
    for item_id, r in replies.items():
        out[item_id] = (None, f"classifier error: {r['error']}") if r.get("error") else parse_code(r["reply"],
                                                                                                  cfg.rubric)
    return out


def _unique(pool: list[Row]) -> list[Row]:
    seen: dict[str, Row] = {}
    for it in pool:
        seen.setdefault(it["id"], it)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------- correctness


def grade_attempts(pool: list[Row], traces: dict[str, dict[str, Row]], judge: TextModel | None, out_dir: Path,
                   cfg: FeaturizeConfig, seconds: dict[str, float] | None = None,
                   ) -> tuple[dict[str, dict[str, bool | None]], dict[str, dict[str, str]], int]:
    """(correct[id][model], how[id][model], judge calls) for every graded model's attempt; `seconds`
    receives the time spent verifying and judging."""
    seconds = seconds if seconds is not None else {}
    started = time.perf_counter()
    correct: dict[str, dict[str, bool | None]] = {it["id"]: {} for it in pool}
    how: dict[str, dict[str, str]] = {it["id"]: {} for it in pool}
    to_judge: list[tuple[str, str, Row, str]] = []  # (model, attempt, item, why it was not settled before)
    to_verify: list[tuple[str, Row, str]] = []
    for model, recs in traces.items():
        for it in _unique(pool):
            rec = recs.get(it["id"])
            attempt = rec.get("attempt") if rec and rec.get("error") is None else None
            if not attempt:
                correct[it["id"]][model], how[it["id"]][model] = None, "no attempt"
            elif judge is not None and not cfg.math_verify_first:
                if it.get("solution"):
                    to_judge.append((model, attempt, it, "judged (s1: every attempt)"))
                else:  # s1 gives no grade without a solution (and selection then drops the item)
                    correct[it["id"]][model], how[it["id"]][model] = None, "no solution to judge against"
            else:
                to_verify.append((model, it, attempt))
    _verify(to_verify, judge, cfg, correct, how, to_judge)
    seconds["verify"] = time.perf_counter() - started
    started = time.perf_counter()
    calls = 0
    if judge is not None and to_judge:
        # keyed by model, question and attempt: a regenerated attempt is judged afresh
        system = protocol.text(cfg.judge_system)
        prompts = [Prompt(f"{model}:{it['id']}:{question_hash(attempt)[:8]}",
                          judge_prompt(it["question"], attempt, it["solution"], cfg.judge_user), system)
                   for model, attempt, it, _ in to_judge]
        replies, calls = cached_calls(judge, prompts, out_dir / CACHE_DIR / f"judge-{judge.name}.jsonl",
                                      cfg.chunk_size, valid=lambda r: judge_verdict(r) is not None,
                                      retries=cfg.invalid_retries)
        for (model, _, it, first), p in zip(to_judge, prompts, strict=True):
            r = replies[p.id]
            if r.get("error"):
                verdict, why = None, f"judge error: {r['error']}"
            else:
                verdict = judge_verdict(r["reply"])
                why = {True: "judge: Yes", False: "judge: No", None: "judge reply has no Yes/No last line"}[verdict]
            correct[it["id"]][model] = verdict
            how[it["id"]][model] = f"{first}; {why}"
    seconds["judge"] = time.perf_counter() - started
    return correct, how, calls


def _verify(jobs: list[tuple[str, Row, str]], judge: TextModel | None, cfg: FeaturizeConfig, correct: dict,
            how: dict, to_judge: list) -> None:
    """math-verify (GPQA-style items: their letter) on each attempt; what it does not credit goes to the
    judge when there is one."""
    from s1.grading import grade_choice, grade_math_many

    math_jobs: list[tuple[str, Row, str, str]] = []  # every model's at once: the worker pool stays busy
    for model, it, attempt in jobs:
        letter = (it.get("metadata") or {}).get("correct_letter")
        gold = gold_answer(it)
        if letter:
            v = grade_choice(attempt, letter)
            _settle(it, model, attempt, v.correct, f"choice: {v.reason}", judge, correct, how, to_judge)
        elif gold is not None:
            math_jobs.append((model, it, attempt, gold))
        else:
            _settle(it, model, attempt, None, "no gold answer", judge, correct, how, to_judge)
    verdicts = grade_math_many([(a, g) for _, _, a, g in math_jobs], cfg.math_timeout) if math_jobs else []
    for (model, it, attempt, _), v in zip(math_jobs, verdicts, strict=True):
        _settle(it, model, attempt, v.correct, f"math-verify: {v.reason}", judge, correct, how, to_judge)


def _settle(it: Row, model: str, attempt: str, verdict: bool | None, why: str, judge: TextModel | None,
            correct: dict, how: dict, to_judge: list) -> None:
    """Record a verifier's verdict, or queue the attempt for the judge when it was not credited."""
    if verdict is not True and judge is not None and it.get("solution"):
        to_judge.append((model, attempt, it, why))
    correct[it["id"]][model], how[it["id"]][model] = verdict, why


# ---------------------------------------------------------------------------------------------- lengths


def load_tokenizer(name: str | None) -> Any:
    """A `tokenizers` tokenizer (light and fast to import): a model directory's tokenizer.json, a
    tokenizer.json file, or a Hub id; None is the embedded tiny model's."""
    from tokenizers import Tokenizer

    from s1.models import resolve_model

    path = Path(resolve_model(name)).expanduser()
    try:
        if path.is_dir():
            return Tokenizer.from_file(str(path / "tokenizer.json"))
        if path.is_file():
            return Tokenizer.from_file(str(path))
        return Tokenizer.from_pretrained(str(name))
    except Exception as exc:  # tokenizers raises plain Exceptions for missing files and Hub errors
        raise CurateError(f"featurize.tokenizer: cannot load tokenizer {name!r} ({exc}); give a model directory "
                          f"with tokenizer.json, a tokenizer.json file or a Hub id") from None


def count_tokens(tokenizer: Any, texts: list[str], batch: int = 1024) -> list[int]:
    """Token counts without special tokens, in batches (the Rust tokenizer uses every core)."""
    out: list[int] = []
    for start in range(0, len(texts), batch):
        out += [len(e.ids) for e in tokenizer.encode_batch(texts[start : start + batch], add_special_tokens=False)]
    return out


# ---------------------------------------------------------------------------------------------- stage


def run_featurize(cfg: FeaturizeConfig, teacher: str, graded: tuple[str, ...],
                  models: dict[str, Callable[[], TextModel]], out_dir: str | Path) -> dict[str, Any]:
    """Read `clean.jsonl` and the traces; write `features.jsonl` and `featurize.json`."""
    out = Path(out_dir)
    for role, name in (("judge", cfg.judge), ("domain_model", cfg.domain_model)):
        if name is not None and name not in models:
            raise CurateError(f"featurize.{role}: model {name!r} is not defined (defined: {', '.join(models)})")
    pool = read_jsonl(out / "clean.jsonl")
    traces = {m: load_traces(out, m) for m in graded}
    if not any(traces.values()):
        raise CurateError(f"featurize: no traces found in {out / 'traces'}; run the traces stage first")
    judge = models[cfg.judge]() if cfg.judge else None
    seconds: dict[str, float] = {}
    correct, how, judge_calls = grade_attempts(pool, traces, judge, out, cfg, seconds)

    started = time.perf_counter()
    if cfg.domain_model is not None:
        domains = classify_domains(pool, models[cfg.domain_model](), out, cfg)
    else:
        domains = {it["id"]: _domain_from_field(it, cfg.domain_field or "") for it in pool}
    seconds["domains"] = time.perf_counter() - started
    started = time.perf_counter()

    teacher_recs = traces.get(teacher) or load_traces(out, teacher)
    with_trace = [it["id"] for it in _unique(pool)
                  if (r := teacher_recs.get(it["id"])) and r.get("error") is None and r.get("thinking")]
    lengths: dict[str, int] = {}
    if with_trace:
        tokenizer = load_tokenizer(cfg.tokenizer)
        lengths = dict(zip(with_trace, count_tokens(tokenizer, [teacher_recs[i]["thinking"] for i in with_trace]),
                           strict=True))
    seconds["lengths"] = time.perf_counter() - started
    rows = []
    for it in pool:
        code, why = domains[it["id"]]
        rows.append({"id": it["id"], "domain": code,
                     "domain_name": domain_name(code, cfg.rubric) if cfg.domain_model else code, "domain_why": why,
                     "trace_tokens": lengths.get(it["id"]), "correct": correct[it["id"]], "grading": how[it["id"]]})
    write_jsonl(out / FEATURES, rows)
    report = _report(rows, graded, judge_calls)
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    write_json(out / REPORT, report)
    return report


def _domain_from_field(item: Row, name: str) -> tuple[str | None, str | None]:
    value = item.get(name, (item.get("metadata") or {}).get(name))
    if value in (None, ""):
        return None, f"no {name!r} value"
    return str(value), None


def _report(rows: list[Row], graded: tuple[str, ...], judge_calls: int) -> dict[str, Any]:
    lengths = [r["trace_tokens"] for r in rows if r["trace_tokens"] is not None]
    why = Counter(r["domain_why"] for r in rows if r["domain"] is None)
    return {
        "stage": "featurize", "items": len(rows),
        "domains": {"classified": sum(r["domain"] is not None for r in rows),
                    "unclassified": sum(r["domain"] is None for r in rows),
                    "unclassified_reasons": dict(why.most_common(5)),
                    "per_domain": dict(Counter(r["domain"] for r in rows if r["domain"] is not None).most_common())},
        "correct": {m: {"true": sum(r["correct"].get(m) is True for r in rows),
                        "false": sum(r["correct"].get(m) is False for r in rows),
                        "unknown": sum(r["correct"].get(m) is None for r in rows)} for m in graded},
        "judge_calls": judge_calls,
        "trace_tokens": ({"items": len(lengths), "min": min(lengths), "median": statistics.median(lengths),
                          "mean": round(statistics.fmean(lengths), 1), "max": max(lengths)}
                         if lengths else {"items": 0}),
    }
