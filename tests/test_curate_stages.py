"""Each curation stage on its own, with small local files and fake models (no model weights, no network
beyond loopback): sources and their config, decontamination, trace caching and sharding, the chat
client, domain and judge parsing, and the selection's quality / difficulty / diversity rules."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s1.curate import CurateError, load_config, parse_config, question_hash
from s1.curate.decontaminate import DecontamConfig, EvalFile, NgramIndex, build_index, decontaminate
from s1.curate.domains import MSC, parse_code, rubric
from s1.curate.featurize import gold_answer, parse_yes_no
from s1.curate.io import read_jsonl, write_jsonl
from s1.curate.llm import ChatModel, Completion, ModelSpec, Prompt
from s1.curate.select import (
    S1_QUALITY_RULES,
    SelectConfig,
    diversity_sample,
    histogram,
    pick_rank,
    quality_reason,
    select,
)
from s1.curate.sources import SourceSpec, build_items
from s1.curate.table import Table
from s1.curate.traces import TracesConfig, load_traces, run_traces

DATA = Path("/work/shared/data")


def source(**kw) -> SourceSpec:
    return SourceSpec.from_table(Table({"name": "src", "path": "unused.jsonl", **kw}, "sources[0]"))


# ---------------------------------------------------------------------------------------------- sources


def test_rows_become_the_pool_schema_with_templates_filters_and_transforms():
    rows = [
        {"passage": "A passage.", "q": "What is x?", "options": ["(A) 1", "(B) 2"], "sol": ["first", "second"],
         "lang": "EN", "subject": "Math", "year": 2001},
        {"passage": "", "q": "Which y?", "options": ["(A) 3"], "sol": ["only"], "lang": "ZH", "subject": "CS",
         "year": 2001},
        {"passage": None, "q": "Why z?\n\nAnswer:", "options": [], "sol": [], "lang": "EN", "subject": "CS",
         "year": 2030},
        {"passage": None, "q": "How w?\n\nAnswer:", "options": [], "sol": [], "lang": "EN", "subject": "CS",
         "year": 1999},
    ]
    spec = source(question="{passage}\n\n{q}\n{options}", solution="{sol[0]}", cot_type="science",
                  cot_type_from="subject", cot_type_map={"Math": "math", "CS": "coding"},
                  source_type="data/{subject}", filters=[{"field": "lang", "equals": "EN"},
                                                         {"field": "year", "max": 2020}],
                  transforms=[{"field": "question", "before": "\n\nAnswer:"}])
    result = build_items(spec, rows, seed=0)
    assert result.dropped == {"filter lang equals": 1, "filter year max": 1}
    first, last = result.items
    assert list(first) == ["id", "question", "solution", "cot_type", "source_type", "metadata"]
    assert first["question"] == "A passage.\n\nWhat is x?\n(A) 1\n(B) 2"
    assert first["id"] == question_hash(first["question"])
    assert (first["solution"], first["cot_type"], first["source_type"]) == ("first", "math", "data/Math")
    assert first["metadata"] == {"lang": "EN", "subject": "Math", "year": 2001}
    assert (last["question"], last["solution"], last["cot_type"]) == ("How w?", None, "coding")


def test_a_missing_column_is_an_error_naming_it():
    with pytest.raises(CurateError, match=r"no column 'problem' \(for question\)"):
        build_items(source(question="problem"), [{"question": "x"}], seed=0)
    with pytest.raises(CurateError, match=r"sources\[0\]: unknown key\(s\) questoin"):
        source(question="q", questoin="q")
    with pytest.raises(CurateError, match=r"sources\[0\].filters\[0\]: give exactly one of"):
        source(question="q", filters=[{"field": "a"}])


def test_limit_is_a_seeded_sample():
    rows = [{"q": f"question {i}"} for i in range(50)]
    spec = source(question="q", limit=10)
    a, b, c = (build_items(spec, rows, seed=s) for s in (0, 0, 1))
    assert [x["id"] for x in a.items] == [x["id"] for x in b.items]
    assert [x["id"] for x in a.items] != [x["id"] for x in c.items]
    assert len(a.items) == 10 and a.dropped == {"limit": 40}


def test_gpqa_choices_are_shuffled_per_question_by_seed():
    rows = [{"Question": f"Which particle number {i}?", "Correct Answer": f"right {i}", "Explanation": "Because.",
             "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"} for i in range(20)]
    spec = source(question="Question", solution="Explanation",
                  choices={"correct": "Correct Answer",
                           "incorrect": ["Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]})
    items = build_items(spec, rows, seed=0).items
    letters = Counter()
    for i, it in enumerate(items):
        letter = it["metadata"]["answer"]
        letters[letter] += 1
        assert f"\n({letter}) right {i}\n" in it["question"] + "\n"
        assert it["question"].startswith(f"Which particle number {i}?\nAnswer Choices:\n(A) ")
        assert it["solution"] == f"Because.\n\nAnswer: {letter}"
    assert len(letters) > 1  # not always the same position
    reversed_items = build_items(spec, rows[::-1], seed=0).items[::-1]
    assert [x["question"] for x in reversed_items] == [x["question"] for x in items]  # order-independent
    other = build_items(spec, rows, seed=1).items
    assert [x["question"] for x in other] != [x["question"] for x in items]


def test_exclude_drops_questions_of_another_dataset(tmp_path):
    write_jsonl(tmp_path / "diamond.jsonl", [{"Question": "  Shared   question?"}])
    spec = source(question="Question", exclude=[{"path": str(tmp_path / "diamond.jsonl"), "field": "Question"}])
    result = build_items(spec, [{"Question": "shared question?"}, {"Question": "Other?"}], seed=0)
    assert [x["question"] for x in result.items] == ["Other?"]
    assert result.dropped == {"excluded": 1}


def test_shipped_s1k_config_lists_s1s_sixteen_sources():
    cfg = load_config("s1k", out_dir="unused")
    datasets = {s.hub_id for s in cfg.sources}
    assert len(datasets) == 16  # AGIEval is three tables over one dataset
    assert {"simplescaling/openaimath", "GAIR/OlympicArena", "TIGER-Lab/TheoremQA", "AI-MO/NuminaMath-CoT",
            "KbsdJames/Omni-MATH", "OpenDFM/SciEval", "Hothan/OlympiadBench", "daman1209arora/jeebench",
            "baber/agieval", "simplescaling/s1-prob", "Idavidrein/gpqa", "0xharib/xword1",
            "codegenning/usacobench_formatted", "simplescaling/s1-teasers", "livecodebench/code_generation_lite",
            "qq8933/AIME_1983_2024"} == datasets
    assert cfg.traces is not None and cfg.select.weak_models == ("qwen7b", "qwen32b")


def test_config_errors_name_the_field():
    base = {"out_dir": "o", "models": {"t": {"kind": "backend"}}, "traces": {"teacher": "t"},
            "featurize": {"domain_field": "cot_type"}}
    parse_config(base)
    with pytest.raises(CurateError, match="traces.teacher names model 'r1'"):
        parse_config({**base, "traces": {"teacher": "r1"}})
    with pytest.raises(CurateError, match="models.t.kind must be one of backend, chat"):
        parse_config({**base, "models": {"t": {"kind": "grpc"}}})
    with pytest.raises(CurateError, match="select.weak_models w must be graded models"):
        parse_config({**base, "select": {"weak_models": ["w"]}})
    with pytest.raises(CurateError, match="featurize: give exactly one of domain_model"):
        parse_config({**base, "featurize": {}})


# ---------------------------------------------------------------------------------------------- decontaminate


def test_an_eight_word_overlap_is_found_and_seven_is_not():
    index = NgramIndex(8)
    index.add("bench", "b1", "Let   ABC be a triangle with AB = 5 and BC = 7. Find the area.")
    hit = index.find("Homework: let abc be a TRIANGLE with ab = 5, then stop")
    assert hit is not None and (hit.eval_set, hit.eval_id) == ("bench", "b1")
    assert hit.ngram == "let abc be a triangle with ab ="
    assert index.find("Homework: let abc be a triangle with ab stop") is None  # 7 words only
    assert index.find("let abc be a triangle with ab, = 5") is None  # punctuation is part of a word
    short = NgramIndex(8)
    short.add("bench", "b2", "What is 2 + 2?")
    assert short.find("what is 2 +   2?").ngram == "(identical question)"


def test_dedup_keeps_the_first_and_reports_why():
    pool = [{"id": "a", "question": "Same Question", "source_type": "s1"},
            {"id": "b", "question": "same   question", "source_type": "s2"},
            {"id": "c", "question": "Other", "source_type": "s1"}]
    kept, removed = decontaminate(pool, NgramIndex(8))
    assert [x["id"] for x in kept] == ["a", "c"]
    assert removed == [{"id": "b", "source_type": "s2", "reason": "duplicate", "duplicate_of": "a",
                        "duplicate_source": "s1", "question": "same   question"}]


def test_eval_sets_come_from_tasks_and_files_and_a_missing_one_is_loud(tmp_path):
    write_jsonl(tmp_path / "mine.jsonl", [{"problem": "one two three four five six seven eight nine"}])
    cfg = DecontamConfig(eval_tasks=("aime24", "gpqa_diamond"), eval_data_dir=str(DATA),
                         eval_files=(EvalFile("mine", str(tmp_path / "mine.jsonl"), "problem"),))
    with pytest.raises(CurateError, match="evaluation set 'gpqa_diamond' could not be loaded"):
        build_index(cfg)
    index, sets = build_index(DecontamConfig(**{**cfg.__dict__, "skip_unavailable": True}))
    assert sets["aime24"]["items"] == 30 and sets["mine"]["items"] == 1 and "skipped" in sets["gpqa_diamond"]
    assert index.find("zero one two three four five six seven eight").eval_set == "mine"


# ---------------------------------------------------------------------------------------------- traces


class FakeModel:
    """Answers `<question> done`; fails on questions containing 'boom' while `fail` is set."""

    def __init__(self, name: str = "fake", fail: bool = False):
        self.name, self.fail, self.seen = name, fail, []

    def complete(self, prompts: list[Prompt]) -> list[Completion]:
        self.seen += [p.id for p in prompts]
        return [Completion(error="exploded") if self.fail and "boom" in p.text else
                Completion(thinking=f"think {p.text}", text=f"Answer: {p.text} done") for p in prompts]


def _pool(tmp_path: Path, n: int = 12) -> list[dict]:
    items = [{"id": question_hash(q), "question": q, "solution": None, "cot_type": "math", "source_type": "t",
              "metadata": {}} for q in [f"q{i}" for i in range(n)] + ["boom"]]
    write_jsonl(tmp_path / "clean.jsonl", items)
    return items


def test_traces_are_cached_by_question_and_failures_retried(tmp_path):
    pool = _pool(tmp_path)
    cfg = TracesConfig(teacher="fake", chunk_size=5)
    model = FakeModel(fail=True)
    report = run_traces(cfg, {"fake": lambda: model}, tmp_path)
    assert report["models"]["fake"] | {"example_errors": None} == {
        "items": 13, "cached": 0, "generated": 13, "failed_now": 1, "failed_total": 1, "example_errors": None}
    assert load_traces(tmp_path, "fake")[question_hash("boom")]["error"] == "exploded"
    model.fail, model.seen = False, []
    report = run_traces(cfg, {"fake": lambda: model}, tmp_path)
    assert model.seen == [question_hash("boom")]  # only the failure is asked again
    assert report["models"]["fake"]["failed_total"] == 0
    assert len(load_traces(tmp_path, "fake")) == len(pool)

    def unbuildable():
        raise AssertionError("nothing is pending, so no model is built")

    assert run_traces(cfg, {"fake": unbuildable}, tmp_path)["models"]["fake"]["generated"] == 0


def test_an_interrupted_run_resumes_after_the_last_written_chunk(tmp_path):
    _pool(tmp_path)
    cfg = TracesConfig(teacher="fake", chunk_size=4)

    class Dies(FakeModel):
        def complete(self, prompts):
            if len(self.seen) >= 8:
                raise KeyboardInterrupt
            return super().complete(prompts)

    with pytest.raises(KeyboardInterrupt):
        run_traces(cfg, {"fake": Dies}, tmp_path)
    assert len(load_traces(tmp_path, "fake")) == 8
    with (tmp_path / "traces" / "fake.jsonl").open("a") as fh:
        fh.write('{"id": "torn')  # a write cut off mid-line
    survivor = FakeModel()
    with pytest.warns(UserWarning, match="torn"):
        run_traces(cfg, {"fake": lambda: survivor}, tmp_path)
    assert len(survivor.seen) == 5 and len(load_traces(tmp_path, "fake")) == 13


def test_shards_split_the_work_and_readers_merge_them(tmp_path):
    pool = _pool(tmp_path, 30)
    cfg = TracesConfig(teacher="fake")
    seen = []
    for i in range(3):
        model = FakeModel()
        run_traces(cfg, {"fake": lambda m=model: m}, tmp_path, shard=(i, 3))
        seen.append(set(model.seen))
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and all(seen)
    assert set().union(*seen) == {it["id"] for it in pool}
    assert len(list((tmp_path / "traces").glob("fake.shard-*-of-3.jsonl"))) == 3
    assert len(load_traces(tmp_path, "fake")) == len(pool)


# ---------------------------------------------------------------------------------------------- chat client


class Server:
    """A loopback OpenAI-compatible server whose replies a test scripts."""

    def __init__(self, handler):
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, data = handler(body)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat(url: str, **kw) -> ChatModel:
    return ChatModel(ModelSpec(name="api", kind="chat", base_url=url, model="m", **kw))


def test_chat_reads_reasoning_fields_and_think_blocks_with_bounded_concurrency():
    def handler(body):
        time.sleep(0.05)
        text = body["messages"][-1]["content"]
        if text == "r1":
            message = {"content": "42", "reasoning_content": "I reason."}
        else:
            message = {"content": "<think>\nSteps.\n</think>\n\nThe answer is 7."}
        return 200, {"choices": [{"message": message, "finish_reason": "stop"}],
                     "usage": {"completion_tokens": 9}}

    server = Server(handler)
    try:
        out = chat(server.url, concurrency=3).complete([Prompt(str(i), "r1" if i == 0 else "x") for i in range(12)])
    finally:
        server.close()
    assert (out[0].thinking, out[0].text) == ("I reason.", "42")
    assert (out[1].thinking, out[1].text, out[1].output_tokens) == ("Steps.", "The answer is 7.", 9)
    assert 1 < server.max_in_flight <= 3


def test_chat_retries_server_errors_and_records_failures():
    calls = Counter()

    def handler(body):
        text = body["messages"][-1]["content"]
        calls[text] += 1
        if text == "flaky" and calls[text] == 1:
            return 503, {"error": "busy"}
        if text == "bad":
            return 400, {"error": "bad request"}
        return 200, {"choices": [{"message": {"content": "ok"}}]}

    server = Server(handler)
    try:
        flaky, bad = chat(server.url, max_retries=2).complete([Prompt("1", "flaky"), Prompt("2", "bad")])
    finally:
        server.close()
    assert (flaky.text, flaky.error) == ("ok", None) and calls["flaky"] == 2
    assert bad.error.startswith("HTTP 400") and calls["bad"] == 1  # a client error is not retried


# ---------------------------------------------------------------------------------------------- parsing


def test_domain_codes_are_parsed_strictly():
    assert len(MSC) == 61 and "00" not in MSC and "01" not in MSC
    assert all(f"* Code: {code}" in rubric() for code in MSC)
    assert parse_code("Reasoning...\n11") == ("11", None)
    assert parse_code("Reasoning...\n**05**\n") == ("05", None)
    assert parse_code("It is 11.\nCode: 11")[0] is None
    assert parse_code("so 11 number theory")[0] is None
    assert parse_code("reasoning\n99") == (None, "code 99 is not one of the 61 MSC classes")
    assert parse_code("")[0] is None


def test_judge_replies_and_gold_answers():
    assert parse_yes_no("The attempt matches.\nYes") == (True, "judge: Yes")
    assert parse_yes_no("Wrong final value.\n**No**") == (False, "judge: No")
    assert parse_yes_no("Yes, mostly, but the last step is wrong")[0] is None
    assert gold_answer({"solution": "So $x = \\boxed{\\frac{1}{2}}$.", "metadata": {}}) == "\\frac{1}{2}"
    assert gold_answer({"solution": "Long explanation.\n\nAnswer: C", "metadata": {}}) == "C"
    assert gold_answer({"solution": "ELEPHANT", "metadata": {}}) == "ELEPHANT"
    assert gold_answer({"solution": "A long proof\nover lines.", "metadata": {}}) is None
    assert gold_answer({"solution": "x", "metadata": {"answer": 17}}) == "17"


def test_correctness_is_math_verify_first_then_the_judge(tmp_path):
    from s1.curate.featurize import FeaturizeConfig, grade_attempts

    pool = [
        {"id": "math", "question": "1/2 + 1/2?", "solution": "It is $\\boxed{1}$.", "metadata": {}},
        {"id": "wrong", "question": "2 + 2?", "solution": "$\\boxed{4}$", "metadata": {}},
        {"id": "proof", "question": "Prove it.", "solution": "A proof\nin lines.", "metadata": {}},
        {"id": "gpqa", "question": "Q\nAnswer Choices:\n(A) x\n(B) y", "solution": "Answer: B",
         "metadata": {"answer": "B", "correct_letter": "B"}},
        {"id": "none", "question": "Q?", "solution": "s", "metadata": {}},
    ]
    attempts = {"math": "Answer: 2/2", "wrong": "Answer: 5", "proof": "By induction.", "gpqa": "The answer is (B)"}
    traces = {"m": {k: {"attempt": v, "error": None} for k, v in attempts.items()}}

    class Judge:
        name, asked = "j", []

        def complete(self, prompts):
            self.asked += [p.id.split(":")[1] for p in prompts]
            return [Completion(text="Checked.\n" + ("Yes" if "induction" in p.text else "No")) for p in prompts]

    cfg = FeaturizeConfig(domain_field="cot_type")
    correct, how, calls = grade_attempts(pool, traces, None, tmp_path, cfg)
    assert {k: v["m"] for k, v in correct.items()} == {"math": True, "wrong": False, "proof": None, "gpqa": True,
                                                       "none": None}
    assert how["math"]["m"].startswith("math-verify") and how["none"]["m"] == "no attempt"
    judge = Judge()
    correct, how, calls = grade_attempts(pool, traces, judge, tmp_path, cfg)
    assert sorted(judge.asked) == ["proof", "wrong"] and calls == 2  # what math-verify credited is not asked
    assert (correct["proof"]["m"], correct["wrong"]["m"], correct["math"]["m"]) == (True, False, True)
    assert how["wrong"]["m"].endswith("judge: No")
    grade_attempts(pool, traces, judge, tmp_path, cfg)
    assert len(judge.asked) == 2  # cached


# ---------------------------------------------------------------------------------------------- select


def test_rank_weights_halve_with_each_rank():
    rng = random.Random(0)
    counts = Counter(pick_rank(rng, 50) for _ in range(20000))
    assert 0.47 < counts[0] / 20000 < 0.53 and 0.22 < counts[1] / 20000 < 0.28
    assert 0.11 < counts[2] / 20000 < 0.14
    assert {pick_rank(rng, 1) for _ in range(100)} == {0}


def _features(domains: dict[str, int]) -> tuple[list[dict], dict[str, dict]]:
    pool, feats = [], {}
    for d, n in domains.items():
        for k in range(n):
            item_id = f"{d}-{k:03d}"
            pool.append({"id": item_id, "question": f"question {item_id}", "source_type": f"src/{d}",
                         "solution": None})
            feats[item_id] = {"id": item_id, "domain": d, "trace_tokens": 10 * k + 1, "correct": {"weak": False}}
    return pool, feats


def test_diversity_samples_domains_uniformly_and_prefers_long_traces():
    pool, feats = _features({"big": 200, "small": 10, "mid": 40})
    chosen = diversity_sample(pool, feats, 30, random.Random(0))
    by_domain = Counter(feats[x["id"]]["domain"] for x in chosen)
    assert all(6 <= c <= 14 for c in by_domain.values()), by_domain  # ~10 each, not 200:10:40
    big = sorted((feats[x["id"]]["trace_tokens"] for x in chosen if x["id"].startswith("big")), reverse=True)
    assert min(big) > 10 * 170  # all from the longest traces of the big domain
    everything = diversity_sample(pool, feats, 1000, random.Random(0))
    assert len(everything) == 250 and len({x["id"] for x in everything}) == 250


def test_select_is_reproducible_and_applies_quality_seeds_and_difficulty():
    pool, feats = _features({"a": 30, "b": 30, "seedsrc": 3})
    pool.append({"id": "asy", "question": "[asy] draw. [/asy]", "source_type": "src/a", "solution": None})
    feats["asy"] = {"id": "asy", "domain": "a", "trace_tokens": 5, "correct": {}}
    pool.append({"id": "aime-asy", "question": "[asy] draw. [/asy]", "source_type": "AIME", "solution": None})
    feats["aime-asy"] = {"id": "aime-asy", "domain": "a", "trace_tokens": 5, "correct": {}}
    for k in range(5):
        feats[f"b-{k:03d}"]["correct"]["weak"] = True
    feats["a-000"]["domain"] = None
    teacher = {x["id"]: {"thinking": "t", "attempt": "a", "error": None} for x in pool}
    teacher["a-001"] = {"thinking": "", "attempt": "", "error": "timeout"}
    cfg = SelectConfig(n=20, weak_models=("weak",), seed_sources=("^src/seedsrc$",))
    picked, steps = select(pool, feats, teacher, cfg, seed=3, teacher_name="t")
    again, _ = select(pool, feats, teacher, cfg, seed=3, teacher_name="t")
    other, _ = select(pool, feats, teacher, cfg, seed=4, teacher_name="t")
    ids = [x["id"] for x, _ in picked]
    assert ids == [x["id"] for x, _ in again] and ids != [x["id"] for x, _ in other]
    assert steps["quality"]["dropped"] == {"missing domain": 1, "teacher trace failed": 1,
                                           "format: asymptote diagram": 1}
    assert [how for _, how in picked[:3]] == ["seed"] * 3 and ids[:3] == ["seedsrc-000", "seedsrc-001", "seedsrc-002"]
    assert steps["difficulty"]["dropped"] == {"solved by weak": 5}
    assert not {f"b-{k:03d}" for k in range(5)} & set(ids)
    assert steps["quality"]["output"] == len(pool) - 3  # the AIME item may draw with Asymptote
    assert len(ids) == 20


def test_quality_rules_follow_s1():
    trace = {"thinking": "t", "attempt": "a", "error": None}
    feat = {"domain": "11", "trace_tokens": 3}

    def why(question, source="x"):
        return quality_reason({"question": question, "source_type": source}, trace, feat, S1_QUALITY_RULES)

    assert why("Plain question?") is None
    assert why("See ![Image](fig.png) above") == "format: image reference"
    assert why("p1. Find x. p2. Find y.") == "format: problem numbering"
    assert why("Compute **12** apples") == "format: bold number"
    assert why("[asy] ... [/asy]", source="qq8933/AIME_1983_2024") is None


def test_histogram_covers_every_value():
    values = [1, 2, 3, 10, 50, 99, 100]
    bins = histogram(values, 4)
    assert sum(b["count"] for b in bins) == len(values)
    assert bins[0]["lo"] == 1 and bins[-1]["hi"] > 100
    assert histogram([], 4) == [] and histogram([5, 5], 3) == [{"lo": 5, "hi": 6, "count": 2}]


def test_sft_loader_reads_both_layouts(tmp_path):
    from s1.train.sft import curated_record, load_records

    assert curated_record({"question": "q", "thinking_trajectories": ["t"], "attempt": "42"})["answer"] == "Answer: 42"
    assert curated_record({"question": "q", "thinking_trajectories": ["t"], "attempt": "Final Answer: 4"})[
        "answer"] == "Final Answer: 4"
    assert curated_record({"question": "q", "thinking": "t", "answer": "x"}) == {"question": "q", "thinking": "t",
                                                                                 "answer": "x"}
    with pytest.raises(ValueError, match="missing"):
        curated_record({"question": "q"})
    write_jsonl(tmp_path / "s.jsonl", [{"question": "q", "thinking_trajectories": ["t"], "attempt": "1"}])
    assert load_records(str(tmp_path / "s.jsonl")) == [{"question": "q", "thinking": "t", "answer": "Answer: 1"}]
    assert read_jsonl(tmp_path / "s.jsonl")[0]["attempt"] == "1"
