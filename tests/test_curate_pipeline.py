"""The whole s1K pipeline offline: a few hundred local problems (synthetic families, GSM8K questions,
planted contamination), the embedded tiny model as teacher and as weaker model (through the
transformers backend), and a fake OpenAI-compatible server on loopback as domain classifier and
judge. Checks counts per stage, that decontamination finds exactly the planted overlaps (evaluation
sets and an earlier source), that the selection is reproducible by seed, that a rerun costs nothing,
and that the output loads into SFT."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s1.cli import app
from s1.curate import load_config, run_all, run_stage
from s1.curate.io import normalize, question_hash, read_jsonl
from s1.curate.select import S1_SYSTEM, S1K_COLUMNS
from s1.synthetic import generate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
DOMAIN_BY_FAMILY = {"addition": "97", "multiplication": "11", "sort": "06", "arith_chain": "91"}


# ---------------------------------------------------------------------------------------------- fake API


class FakeAPI:
    """Canned classifier and judge replies over real loopback HTTP; counts requests per role."""

    def __init__(self) -> None:
        self.calls = {"domain": 0, "judge": 0}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
                reply = api.reply(system, user)
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply},
                                                "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, system: str, user: str) -> str:
        if "classification rubric" in system.lower():
            self.calls["domain"] += 1
            question = user.split("## Question\n", 1)[1].split("\n\n## Classification rubric", 1)[0]
            if "MALFORMED" in question:
                return "This is clearly number theory."  # never ends in a code: asked 1 + 3 times, then no domain
            if question.startswith("What is") and "+" in question:
                code = "97"
            elif "*" in question:
                code = "11"
            elif question.startswith("Sort"):
                code = "06"
            else:
                code = "91" if len(question) < 120 else "90"
            return f"The question is about this subject.\n{code}"
        self.calls["judge"] += 1
        attempt = user.split("## Attempt\n", 1)[1].split("\n\n## Correct answer\n", 1)
        numbers = [re.findall(r"-?\d+", part) for part in attempt]
        same = bool(numbers[0]) and bool(numbers[1]) and numbers[0][-1] == numbers[1][-1]
        return "Comparing the final numbers.\n" + ("Yes" if same else "No")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------- pool


def _window(text: str, start: int, n: int) -> str:
    return " ".join(normalize(text).split(" ")[start : start + n])


def make_pool(tmp: Path) -> dict:
    """Local source files and what is planted in them."""
    synthetic = generate("addition", 90, seed=7, split="train", difficulty=1)
    for family in ("multiplication", "sort", "count_letter", "arith_chain"):
        synthetic += generate(family, 5, seed=7, split="train", difficulty=1)
    (tmp / "synthetic.jsonl").write_text("".join(json.dumps(it.to_dict()) + "\n" for it in synthetic))

    aime = [json.loads(x) for x in (DATA / "aime24.jsonl").read_text().splitlines()]
    math500 = [json.loads(x) for x in (DATA / "math500.jsonl").read_text().splitlines()]
    user_eval = [{"id": "u1", "problem": "A frog sits on a lily pad in a pond with twelve lily pads arranged "
                                         "in a circle and jumps to a random neighbour each minute"}]
    (tmp / "my_eval.jsonl").write_text(json.dumps(user_eval[0]) + "\n")
    contaminated = [
        f"Consider this. {_window(aime[3]['problem'], 2, 10)} Then give the remainder mod 7.",
        f"Warm-up: {_window(aime[10]['problem'], 0, 9)} and more.",
        f"{_window(math500[17]['problem'], 3, 8)} -- what do you get?",
        math500[42]["problem"],
        f"Variant: {_window(user_eval[0]['problem'], 4, 8)} and how many jumps?",
    ]
    near_misses = [  # only 7 consecutive words shared: not contamination
        f"zzqa zzqb {_window(aime[5]['problem'], 1, 7)} zzqc zzqd",
        f"zzqe {_window(math500[100]['problem'], 0, 7)} zzqf zzqg zzqh",
        f"zzqi {_window(user_eval[0]['problem'], 0, 7)} zzqj",
    ]
    first_two = [synthetic[0].question, synthetic[1].question]
    duplicates = list(first_two)  # the very same strings: s1's exact dedup
    gsm = [json.loads(x) for x in (DATA / "gsm8k_test.jsonl").read_text().splitlines()][:30]
    (tmp / "gsm_subset.jsonl").write_text("".join(json.dumps({"question": g["question"]}) + "\n" for g in gsm))
    long_gsm = [g["question"] for g in gsm if len(g["question"].split()) > 30][:2]
    (tmp / "keep.json").write_text(json.dumps(long_gsm))  # kept by gsm8k's cap, as s1's keep list would
    # 9 words of an earlier source's question, re-cased and re-spaced: a cross-source near-duplicate
    near_duplicates = [f"Revisit: {_window(q, 5, 9).upper()}   and explain." for q in long_gsm]
    malformed = "MALFORMED: Tom has 5 apples and buys 7 more apples at the market. How many apples does he have?"
    asy = "[asy] draw((0,0)--(1,1)); [/asy] Lena has 12 pencils and gives 5 pencils to Max. How many are left?"
    planted = [{"question": q, "answer": "0"} for q in [*contaminated, *near_misses, *duplicates, *near_duplicates,
                                                        malformed, asy]]
    (tmp / "planted.jsonl").write_text("".join(json.dumps(r) + "\n" for r in planted))
    return {"contaminated": [question_hash(q) for q in contaminated],
            "near_misses": [question_hash(q) for q in near_misses],
            "duplicates": [question_hash(q) for q in duplicates],
            "duplicate_of": [question_hash(q) for q in first_two],
            "near_duplicates": [question_hash(q) for q in near_duplicates],
            "near_duplicate_of": [question_hash(q) for q in long_gsm],
            "malformed": question_hash(malformed), "asy": question_hash(asy),
            "eval_sets": ["aime24", "aime24", "math500", "math500", "my_eval"]}


def write_config(tmp: Path, api_url: str, out: Path, seed: int = 1) -> Path:
    text = f"""
out_dir = "{out}"
seed = {seed}

[[sources]]
name = "synthetic"
path = "{tmp / 'synthetic.jsonl'}"
question = "question"
solution = "answer"
answer = "answer"
source_type = "synthetic/{{family}}"
filters = [{{ field = "family", not_in = ["count_letter"] }}]

[[sources]]
name = "gsm8k"
path = "{DATA / 'gsm8k_test.jsonl'}"
question = "question"
solution = "answer"
answer = "answer"
transforms = [{{ field = "answer", after_last = "####" }}]
limit = 24
include = [{{ path = "{tmp / 'gsm_subset.jsonl'}", field = "question" }}]

[[sources]]
name = "planted"
path = "{tmp / 'planted.jsonl'}"
question = "question"
solution = "answer"
source_type = "planted"

[decontaminate]
eval_tasks = ["aime24", "aime25", "math500", "gpqa_diamond"]
eval_data_dir = "{DATA}"
skip_unavailable = true
keep_questions = "{tmp / 'keep.json'}"
eval_sets = [{{ name = "my_eval", path = "{tmp / 'my_eval.jsonl'}", field = "problem" }}]

[models.tiny]
kind = "backend"
device = "cpu"
batch_size = 256
max_thinking_tokens = 40
max_answer_tokens = 8

[models.tiny_hasty]
kind = "backend"
device = "cpu"
batch_size = 256
max_thinking_tokens = 20
max_answer_tokens = 8

[models.api]
kind = "chat"
base_url = "{api_url}"
model = "fake"
concurrency = 4
max_retries = 0

[traces]
teacher = "tiny"
models = ["tiny_hasty"]
chunk_size = 256

[featurize]
judge = "api"
domain_model = "api"

[select]
n = 30
weak_models = ["tiny_hasty"]
uniform_until = 20
seeds = [{{ source = "^planted$", teacher_correct = false }}]
benchmarks = [{{ source = "^gsm8k$" }}]
chat_template = "{Path(__file__).resolve().parents[1] / 's1' / 'data' / 'tiny-reasoner'}"
outputs = ["jsonl", "parquet", "dataset"]
"""
    path = tmp / f"curate-{seed}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("curate")
    planted = make_pool(tmp)
    api = FakeAPI()
    out = tmp / "out"
    config = write_config(tmp, api.url, out)
    reports = run_all(load_config(config))
    calls_after_first = dict(api.calls)
    first_selection = (out / "selected.jsonl").read_bytes()
    rerun = run_all(load_config(config))
    yield {"tmp": tmp, "out": out, "config": config, "planted": planted, "reports": reports, "rerun": rerun,
           "api": api, "calls_after_first": calls_after_first, "first_selection": first_selection}
    api.close()


# ---------------------------------------------------------------------------------------------- tests


def test_counts_per_stage(run):
    r = run["reports"]
    src = r["collect"]["sources"]
    assert src["synthetic"] == {"origin": str(run["tmp"] / "synthetic.jsonl"), "rows": 110, "items": 105,
                                "dropped": {"filter family not_in": 5}}
    assert src["gsm8k"]["items"] == 30 and src["gsm8k"]["dropped"] == {"not included": 1319 - 30}
    assert src["planted"]["items"] == 14
    assert r["collect"]["items"] == 105 + 30 + 14
    d = r["decontaminate"]
    assert (d["input"], d["contaminated"], d["near_duplicates"], d["duplicates"]) == (149, 5, 2, 2)
    # gsm8k's cap (24) after decontamination: 22 of s1's shuffle + the 2 keep-listed questions, one of which
    # the 22 already held (s1 counts it twice, so 23 remain)
    assert d["by_group"]["gsm8k"] == {"input": 30, "sampled_out": 7, "kept": 23}
    assert d["kept"] == 149 - 5 - 2 - 2 - 7 == 133
    assert d["eval_sets"]["gpqa_diamond"].keys() == {"skipped"}  # not in the shared data: reported, not hidden
    for model in ("tiny", "tiny_hasty"):
        t = r["traces"]["models"][model]
        assert (t["items"], t["generated"], t["cached"], t["failed_total"]) == (133, 133, 0, 0)
    f = r["featurize"]
    assert f["items"] == 133
    assert f["domains"]["unclassified"] == 1  # the MALFORMED reply never ends in a code
    assert f["judge_calls"] == 2 * 133  # s1: the judge grades every attempt of every graded model
    s = r["select"]
    q = s["stages"]["select"]["quality"]
    assert q["dropped"] == {"missing domain": 1, "format: asymptote diagram": 1}
    assert q["output"] == 131
    assert s["selected"] == 30
    draws = s["stages"]["select"]["diversity"]["draws"]
    assert draws["benchmark"] == 10  # the 30 - 20 draws after uniform_until
    assert sum(b["count"] for b in s["length_histogram"]) == 30
    assert sum(v["selected"] for v in s["per_domain"].values()) == 30
    assert set(s["stages"]) == {"collect", "decontaminate", "traces", "featurize", "select"}


def test_decontamination_finds_the_planted_overlaps_and_nothing_else(run):
    removed = read_jsonl(run["out"] / "removed.jsonl")
    planted = run["planted"]
    contaminated = {r["id"]: r for r in removed if r["reason"] == "contaminated"}
    assert set(contaminated) == set(planted["contaminated"])
    assert [contaminated[i]["eval_set"] for i in planted["contaminated"]] == planted["eval_sets"]
    near = {r["id"]: r for r in removed if r["reason"] == "near-duplicate"}
    assert {i: near[i]["duplicate_of"] for i in near} == dict(zip(planted["near_duplicates"],
                                                                  planted["near_duplicate_of"], strict=True))
    assert {r["duplicate_source"] for r in near.values()} == {"gsm8k"}
    dups = {r["id"]: r["duplicate_of"] for r in removed if r["reason"] == "duplicate"}
    assert dups == dict(zip(planted["duplicates"], planted["duplicate_of"], strict=True))
    clean = {r["id"] for r in read_jsonl(run["out"] / "clean.jsonl")}
    assert set(planted["near_misses"]) <= clean


def test_difficulty_drops_exactly_what_the_weaker_model_solved(run):
    features = {f["id"]: f for f in read_jsonl(run["out"] / "features.jsonl")}
    selected = read_jsonl(run["out"] / "selected.jsonl")
    steps = run["reports"]["select"]["stages"]["select"]
    quality_dropped = {run["planted"]["malformed"], run["planted"]["asy"]}
    solved = [i for i, f in features.items() if f["correct"]["tiny_hasty"] is True and i not in quality_dropped]
    assert solved  # the hasty model (20 thinking tokens) does solve a few
    assert steps["difficulty"]["dropped"].get("solved by tiny_hasty", 0) == len(solved)
    assert all(features[r["id"]]["correct"]["tiny_hasty"] is not True for r in selected)  # seeds included (s1)
    assert run["reports"]["featurize"]["correct"]["tiny"]["true"] > 50


def test_selection_columns_text_and_seeds(run):
    rows = read_jsonl(run["out"] / "selected.jsonl")
    planted_kept = {r["id"] for r in read_jsonl(run["out"] / "clean.jsonl") if r["source_type"] == "planted"}
    features = {f["id"]: f for f in read_jsonl(run["out"] / "features.jsonl")}
    seeds = [r for r in rows if r["selected_by"] == "seed"]
    # planted items that pass quality and the difficulty filter are seeds (seeds come after that filter)
    hard_planted = {i for i in planted_kept - {run["planted"]["malformed"], run["planted"]["asy"]}
                    if features[i]["correct"]["tiny_hasty"] is not True}
    assert {r["id"] for r in seeds} == hard_planted
    clean_order = [r["id"] for r in read_jsonl(run["out"] / "clean.jsonl")]
    assert [r["id"] for r in rows] == [i for i in clean_order if i in {r["id"] for r in rows}]  # pool order (s1)
    for r in rows:
        assert list(r)[: len(S1K_COLUMNS)] == list(S1K_COLUMNS)
        assert r["cot"] is None and isinstance(r["thinking_trajectories"], list)
        assert isinstance(json.loads(r["metadata"]), dict)
        expected = f"<|im_start|>think\n{r['thinking_trajectories'][0].strip()}\n<|im_start|>answer\n"
        assert expected in r["text"]
        answer = r["attempt"] if "Answer:" in r["attempt"] else "Answer: " + r["attempt"]
        assert r["text"].endswith(answer.strip() + "<|im_end|>\n")
    domains = {r["domain"] for r in rows if r["selected_by"] == "diversity"}
    assert len(domains) >= 4  # uniform over domains, not proportional to the 90 additions


def test_same_seed_same_selection_other_seed_different(run, tmp_path):
    assert (run["out"] / "selected.jsonl").read_bytes() == run["first_selection"]  # the full rerun
    other = load_config(run["config"])
    from dataclasses import replace

    reseeded = replace(other, select=replace(other.select, seed=2, outputs=("jsonl",)), out_dir=run["out"])
    first_ids = [r["id"] for r in read_jsonl(run["out"] / "selected.jsonl")]
    run_stage(reseeded, "select")
    second_ids = [r["id"] for r in read_jsonl(run["out"] / "selected.jsonl")]
    assert second_ids != first_ids and len(second_ids) == len(first_ids)
    again = replace(other, select=replace(other.select, seed=2, outputs=("jsonl",)))
    run_stage(again, "select")
    assert [r["id"] for r in read_jsonl(run["out"] / "selected.jsonl")] == second_ids
    run_stage(other, "select")  # back to the config's seed for the other tests
    assert (run["out"] / "selected.jsonl").read_bytes() == run["first_selection"]


def test_rerun_reuses_every_cached_trace_and_reply(run):
    for model, t in run["rerun"]["traces"]["models"].items():
        assert (t["generated"], t["cached"]) == (0, 133), model
    assert run["api"].calls == run["calls_after_first"]
    assert run["calls_after_first"]["domain"] == 133 + 3  # the malformed reply was asked 3 more times, then kept
    assert run["rerun"]["featurize"]["judge_calls"] == 0


def test_output_loads_into_training(run):
    from transformers import AutoTokenizer

    from s1.forcing.formats import PRESETS
    from s1.models import TINY_MODEL_DIR
    from s1.train.sft import load_records, to_prompt_completion

    tok = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    rows = read_jsonl(run["out"] / "selected.jsonl")
    for path in ("selected.jsonl", "selected.parquet", "selected_dataset"):
        records = load_records(str(run["out"] / path))
        assert len(records) == len(rows)
        for rec, row in zip(records, rows, strict=True):
            pc = to_prompt_completion(rec, tok, PRESETS["s1"], system=S1_SYSTEM, layout="chat")
            assert pc["prompt"] + pc["completion"] == row["text"]


def test_cli_runs_the_pipeline_and_names_a_bad_field(run, tmp_path):
    result = CliRunner().invoke(app, ["curate", "run", str(run["config"])])  # everything cached by now
    assert result.exit_code == 0, result.output
    assert "tiny: 133 items, 0 generated, 133 cached, 0 failed" in result.output
    assert "decontaminate: 149 -> 133\n  5 contaminated, 2 near-duplicates, 2 duplicates, 7 capped" in result.output
    assert "select: 30 of n=30" in result.output
    assert (run["out"] / "selected.jsonl").read_bytes() == run["first_selection"]
    bad = tmp_path / "bad.toml"
    bad.write_text(run["config"].read_text().replace("n = 30", "n = 30\nsizes = 3"))
    result = CliRunner().invoke(app, ["curate", "select", str(bad)])
    assert result.exit_code == 2
    assert "select: unknown key(s) sizes" in result.output
