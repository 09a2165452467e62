"""Throughput of the curation pipeline on a 10K-question local pool (teacher calls excluded).

Builds a pool of `--pool` questions from local files (GSM8K test questions from the shared data and
synthetic word problems / arithmetic, plus a few planted copies of MATH-500 text), evaluation sets
of `--eval` items (AIME 2024 + 2025 and MATH-500 from the shared data, topped up with MathVista
questions as a user-named file), and writes teacher and weaker-model traces directly (the teacher is
what a real run spends its time on; it is excluded here). Then it runs every stage as `s1 curate`
does, with a loopback OpenAI-compatible fake as domain classifier and judge, and prints items/s per
stage and the process's peak RSS after each stage (math-verify's worker processes not included).

Then decontamination alone: index build + scan for pool x eval sizes, to show the cost grows with the
text, not with pool x eval; and a naive all-pairs n-gram check on a sample, extrapolated, to compare.

Then cross-source dedup (s1's: every source checked against everything kept from the sources before
it) on pools of 15K, 30K and 60K items in 16 sources, each size in a fresh process: seconds, peak RSS,
the index's size, and the planted near-duplicates found. Items are 60-120 words drawn from the words
of the shared benchmark files (so unplanted items share no 8-gram by accident); 1% carry ten words of
an item of an earlier source.

    python benchmarks/curate_throughput.py                  # 10K x 1K, then 15K / 30K / 60K cross-source
    python benchmarks/curate_throughput.py --pool 2000 --keep /tmp/curate-bench
    python benchmarks/curate_throughput.py --skip-pipeline --cross-sizes 15000,30000,60000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from s1.curate import STAGES, load_config, run_stage
from s1.curate.decontaminate import DecontamConfig, decontaminate
from s1.curate.io import normalize, question_hash, read_jsonl, write_jsonl
from s1.curate.ngrams import NgramIndex
from s1.curate.pipeline import model_factories
from s1.synthetic import generate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
CODES = ("11", "05", "51", "60", "97", "26", "91", "92")


def rss_mb() -> float:
    """This process's peak resident set (MB): Linux's VmHWM (not inherited across fork + exec, as ru_maxrss
    is), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FakeAPI:
    """Canned classifier / judge replies on loopback, fixed by a hash of the prompt."""

    def __init__(self) -> None:
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                h = int(hashlib.md5(user.encode()).hexdigest()[:8], 16)
                if "Classification rubric" in user:
                    reply = f"Reasoning.\n{CODES[h % len(CODES)]}"
                else:
                    reply = "Reasoning.\n" + ("Yes" if h % 4 == 0 else "No")
                raw = json.dumps({"choices": [{"message": {"content": reply}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def build_sources(work: Path, pool: int, n_eval: int) -> dict:
    """Local source files for `pool` questions and a user eval file topping the eval sets up to `n_eval`."""
    gsm = [json.loads(x) for x in (DATA / "gsm8k_test.jsonl").read_text().splitlines()]
    gsm = gsm[: min(len(gsm), pool // 4)]
    math500 = [json.loads(x) for x in (DATA / "math500.jsonl").read_text().splitlines()]
    rest = pool - len(gsm) - 20
    families = ("arith_chain", "addition", "multiplication", "sort")
    synthetic = []
    for k, fam in enumerate(families):
        n = rest // len(families) + (1 if k < rest % len(families) else 0)
        synthetic += generate(fam, n, seed=11, split="train", difficulty=2)
    rows = [{"question": it.question, "answer": it.answer, "thinking": it.thinking, "family": it.family}
            for it in synthetic]
    rng = random.Random(0)
    long_enough = [m for m in math500 if len(normalize(m["problem"]).split(" ")) >= 12]
    for m in rng.sample(long_enough, 20):  # planted: 12 words of a MATH-500 problem inside a new question
        words = normalize(m["problem"]).split(" ")
        start = rng.randrange(len(words) - 11)
        rows.append({"question": "Practice: " + " ".join(words[start : start + 12]) + " Explain.", "answer": "0",
                     "thinking": "Planted.", "family": "planted"})
    write_jsonl(work / "synthetic.jsonl", rows)
    write_jsonl(work / "gsm8k.jsonl", gsm)
    vista = list(json.loads((DATA / "mathvista_testmini.json").read_text()).values())
    extra = max(0, n_eval - 560)
    write_jsonl(work / "eval_extra.jsonl", [{"id": v["pid"], "question": v["question"]} for v in vista[:extra]])
    return {"gsm8k": gsm, "synthetic": rows}


def write_config(work: Path, api_url: str) -> Path:
    cfg = f"""
out_dir = "{work / 'out'}"
seed = 0
[[sources]]
name = "synthetic"
path = "{work / 'synthetic.jsonl'}"
question = "question"
solution = "answer"
answer = "answer"
source_type = "synthetic/{{family}}"
[[sources]]
name = "gsm8k"
path = "{work / 'gsm8k.jsonl'}"
question = "question"
solution = "answer"
answer = "answer"
transforms = [{{ field = "answer", after_last = "####" }}]
[decontaminate]
eval_tasks = ["aime24", "aime25", "math500"]
eval_data_dir = "{DATA}"
eval_sets = [{{ name = "mathvista", path = "{work / 'eval_extra.jsonl'}", field = "question" }}]
[models.teacher]
kind = "chat"
base_url = "{api_url}"
model = "never-called"
[models.weak]
kind = "chat"
base_url = "{api_url}"
model = "never-called"
[models.api]
kind = "chat"
base_url = "{api_url}"
model = "fake"
concurrency = 16
[traces]
teacher = "teacher"
models = ["weak"]
[featurize]
judge = "api"
domain_model = "api"
chunk_size = 512
[select]
n = 1000
weak_models = ["weak"]
outputs = ["jsonl", "parquet"]
"""
    path = work / "curate.toml"
    path.write_text(cfg)
    return path


def write_traces(work: Path, clean: list[dict], sources: dict) -> None:
    """Teacher and weak-model traces as the traces stage would have cached them."""
    by_q = {r["question"]: r for r in sources["synthetic"]}
    by_q.update({g["question"].strip(): {"thinking": g["answer"].rsplit("####", 1)[0],
                                         "answer": g["answer"].rsplit("####", 1)[1].strip()} for g in sources["gsm8k"]})
    rng = random.Random(1)
    teacher, weak = [], []
    for it in clean:
        src = by_q.get(it["question"], {"thinking": "Some thought.", "answer": "0"})
        base = {"id": it["id"], "error": None, "thinking_tokens": None, "output_tokens": None,
                "finish_reason": "stop", "wall_time_s": 0.0}
        teacher.append({**base, "model": "teacher", "thinking": src["thinking"], "attempt": f"Answer: {src['answer']}"})
        guess = src["answer"] if rng.random() < 0.3 else str(rng.randrange(1000))
        weak.append({**base, "model": "weak", "thinking": "Quick.", "attempt": f"Answer: {guess}"})
    write_jsonl(work / "out" / "traces" / "teacher.jsonl", teacher)
    write_jsonl(work / "out" / "traces" / "weak.jsonl", weak)


def pipeline(work: Path, pool: int, n_eval: int) -> list[tuple[str, int, float, float]]:
    api = FakeAPI()
    try:
        sources = build_sources(work, pool, n_eval)
        cfg = load_config(write_config(work, api.url))
        models = model_factories(cfg)
        rows = []
        for stage in STAGES:
            if stage == "traces":
                write_traces(work, read_jsonl(cfg.out_dir / "clean.jsonl"), sources)
            items = len(read_jsonl(cfg.out_dir / ("pool.jsonl" if stage == "decontaminate" else "clean.jsonl"))) \
                if stage != "collect" else pool
            start = time.perf_counter()
            report = run_stage(cfg, stage, models=models)
            seconds = time.perf_counter() - start
            rows.append((stage, items, seconds, rss_mb()))
            if stage == "decontaminate":
                print(f"decontaminate (20 planted): {report['input']} -> {report['kept']} ({report['contaminated']} "
                      f"contaminated, {report['near_duplicates']} near-duplicates, "
                      f"{report['duplicates']} duplicates; {report['eval_ngrams']} eval n-grams from "
                      f"{sum(v.get('items', 0) for v in report['eval_sets'].values())} eval items)")
            if stage == "featurize":
                print(f"featurize: judge calls {report['judge_calls']}, domains {report['domains']['classified']}; "
                      "seconds " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
            if stage == "select":
                print(f"select: {report['selected']} selected")
        return rows
    finally:
        api.close()


def decontam_scaling(texts: list[str], evals: list[str]) -> list[tuple[int, int, float, float]]:
    """(pool, eval, build s, scan s) for growing sizes."""
    out = []
    for n_pool, n_eval in ((len(texts) // 4, len(evals)), (len(texts) // 2, len(evals)), (len(texts), len(evals)),
                           (len(texts), len(evals) // 4)):
        start = time.perf_counter()
        index = NgramIndex(8)
        index.add_many("eval", [(str(i), e) for i, e in enumerate(evals[:n_eval])])
        built = time.perf_counter() - start
        start = time.perf_counter()
        hits = sum(hit is not None for hit in index.find_many(texts[:n_pool]))
        out.append((n_pool, n_eval, built, time.perf_counter() - start, hits))
    return out


def _grams(text: str, n: int = 8) -> set[str]:
    words = normalize(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def naive_pairs_seconds(texts: list[str], evals: list[str], sample: int = 50) -> float:
    """All-pairs n-gram set intersection (eval n-grams precomputed per item), extrapolated to the full pool."""
    eval_sets = [_grams(e) for e in evals]
    start = time.perf_counter()
    for t in texts[:sample]:
        grams = _grams(t)
        any(grams & s for s in eval_sets)
    return (time.perf_counter() - start) / sample * len(texts)


# ---------------------------------------------------------------------------------------------- cross-source


def cross_source_pool(size: int, sources: int = 16, planted_share: float = 0.01, seed: int = 0) -> tuple[list, int]:
    """`size` items over `sources` sources (s1 has 16), and how many carry ten words of an earlier source's item."""
    bank_texts = [json.loads(x)["question"] for x in (DATA / "gsm8k_test.jsonl").read_text().splitlines()]
    bank_texts += [json.loads(x)["problem"] for x in (DATA / "math500.jsonl").read_text().splitlines()]
    vocab = sorted({w for t in bank_texts for w in normalize(t).split()})
    rng = random.Random(seed)
    pool, planted = [], set()
    per_source = size // sources
    for k in range(size):
        source = f"source{min(k // per_source, sources - 1):02d}"
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(60, 120)))
        if k >= per_source and rng.random() < planted_share:  # ten words of a kept item of an earlier source
            origin = rng.randrange(0, (k // per_source) * per_source)
            while origin in planted:  # a planted item is removed itself: copying it would plant nothing
                origin = rng.randrange(0, (k // per_source) * per_source)
            words = pool[origin]["question"].split()
            start = rng.randrange(len(words) - 10)
            text = text + " " + " ".join(words[start : start + 10]).upper()
            planted.add(k)
        pool.append({"id": f"{k:06d}", "question": text, "source_type": source, "source": source, "group": source})
    return pool, len(planted)


def cross_source_child(size: int) -> dict:
    """One size, measured in this (fresh) process: the s1 loop over the sources against the shared eval sets."""
    from s1.tasks import load_task

    pool, planted = cross_source_pool(size)
    before = rss_mb()
    start = time.perf_counter()
    index = NgramIndex(8)
    for task in ("aime24", "aime25", "math500"):
        index.add_many(task, [(it.id, it.question) for it in load_task(task, DATA)])
    cfg = DecontamConfig(eval_sets=(), keep_questions=None, shuffle_seed=42)
    kept, removed, _ = decontaminate(pool, index, cfg)
    seconds = time.perf_counter() - start
    near = sum(r["reason"] == "near-duplicate" for r in removed)
    words = sum(len(it["question"].split()) for it in pool)
    return {"pool": size, "words": words, "planted": planted, "near_duplicates": near, "kept": len(kept),
            "seconds": round(seconds, 2), "peak_rss_mb": round(rss_mb()), "rss_growth_mb": round(rss_mb() - before),
            "index_mb": round(index.nbytes / 2**20, 1), "ngrams": len(index)}


def cross_source_scaling(sizes: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        out = subprocess.run([sys.executable, __file__, "--cross-source-child", str(size)], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=10_000)
    ap.add_argument("--eval", type=int, default=1_000)
    ap.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: a temporary one)")
    ap.add_argument("--skip-pipeline", action="store_true", help="only the cross-source dedup scaling")
    ap.add_argument("--cross-sizes", default="15000,30000,60000", help="pool sizes of the cross-source run")
    ap.add_argument("--cross-source-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cross_source_child is not None:
        print(json.dumps(cross_source_child(args.cross_source_child)))
        return
    if not args.skip_pipeline:
        run_pipeline_benchmark(args)
    sizes = [int(x) for x in args.cross_sizes.split(",") if x]
    print(f"\ncross-source dedup (s1: each of 16 sources against the eval sets and every earlier kept source), "
          f"one fresh process per size; python {sys.version.split()[0]}:")
    print("| pool | words | planted | found | kept | seconds | items/s | peak RSS MB | RSS growth MB | index MB |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in cross_source_scaling(sizes):
        print(f"| {r['pool']} | {r['words']} | {r['planted']} | {r['near_duplicates']} | {r['kept']} | {r['seconds']} "
              f"| {r['pool'] / r['seconds']:,.0f} | {r['peak_rss_mb']} | {r['rss_growth_mb']} | {r['index_mb']} |")


def run_pipeline_benchmark(args: argparse.Namespace) -> None:
    work = args.keep or Path(tempfile.mkdtemp(prefix="curate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"pool {args.pool} questions, eval {args.eval} items, work dir {work}; python {sys.version.split()[0]}")
    try:
        rows = pipeline(work, args.pool, args.eval)
        print("\n| stage | items in | seconds | items/s | peak RSS after (MB) |\n| --- | ---: | ---: | ---: | ---: |")
        for stage, items, seconds, rss in rows:
            print(f"| {stage} | {items} | {seconds:.2f} | {items / seconds:,.0f} | {rss:.0f} |")
        pool_texts = [r["question"] for r in read_jsonl(work / "out" / "pool.jsonl")]
        from s1.tasks import load_task

        evals = [it.question for t in ("aime24", "aime25", "math500") for it in load_task(t, DATA)]
        evals += [r["question"] for r in read_jsonl(work / "eval_extra.jsonl")]
        words = sum(len(t.split()) for t in pool_texts) / len(pool_texts)
        print(f"\ndecontamination alone (pool texts average {words:.0f} words; eval {len(evals)} items):")
        print("| pool | eval | index build s | scan s | hits |\n| ---: | ---: | ---: | ---: | ---: |")
        for n_pool, n_eval, built, scan, hits in decontam_scaling(pool_texts, evals):
            print(f"| {n_pool} | {n_eval} | {built:.3f} | {scan:.3f} | {hits} |")
        naive = naive_pairs_seconds(pool_texts, evals)
        print(f"naive all-pairs check (pool x eval set intersections), extrapolated to {len(pool_texts)} x "
              f"{len(evals)}: {naive:.1f} s")
        print(f"\nprocess peak RSS: {rss_mb():.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    _ = question_hash  # re-exported for interactive use of this script's outputs
    main()
