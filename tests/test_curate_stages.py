"""Each curation stage on its own, with small local files and fake models (no model weights, no network
beyond loopback): sources and their config, decontamination, trace caching and sharding, the chat
client, domain and judge parsing, and the selection's quality rules. s1's selection algorithm, its
per-source sampling and cross-source dedup have their own files (test_curate_s1_*.py)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s1.curate import CurateError, load_config, parse_config, question_hash
from s1.curate.decontaminate import DecontamConfig, EvalSet, build_index, decontaminate
from s1.curate.domains import msc, parse_code, rubric
from s1.curate.featurize import gold_answer, judge_verdict
from s1.curate.io import read_jsonl, write_jsonl
from s1.curate.llm import ChatModel, Completion, ModelSpec, Prompt
from s1.curate.ngrams import NgramIndex
from s1.curate.select import S1_QUALITY_RULES, histogram, quality_reason
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
    assert list(first) == ["id", "question", "solution", "cot_type", "source_type", "metadata", "source", "group"]
    assert (first["source"], first["group"]) == ("src", "src")
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


def test_limit_is_applied_by_decontamination_not_collection():
    rows = [{"q": f"question {i}"} for i in range(50)]
    result = build_items(source(question="q", limit=10), rows, seed=0)
    assert len(result.items) == 50 and result.dropped == {}  # s1 caps a source after decontaminating it


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


def test_exclude_and_include_match_the_question_exactly_as_s1(tmp_path):
    write_jsonl(tmp_path / "diamond.jsonl", [{"Question": "Shared question?"}])
    spec = source(question="Question", exclude=[{"path": str(tmp_path / "diamond.jsonl"), "field": "Question"}])
    result = build_items(spec, [{"Question": "Shared question?"}, {"Question": "shared  question?"},
                                {"Question": "Other?"}], seed=0)
    assert [x["question"] for x in result.items] == ["shared  question?", "Other?"]  # s1's `in`: exact strings
    assert result.dropped == {"excluded": 1}
    write_jsonl(tmp_path / "subset.jsonl", [{"problem": "Kept?"}])
    (tmp_path / "keep.json").write_text(json.dumps(["Also kept?"]))
    spec = source(question="q", include=[{"path": str(tmp_path / "subset.jsonl"), "field": "problem"},
                                         {"questions": str(tmp_path / "keep.json")}])
    result = build_items(spec, [{"q": "Kept?"}, {"q": "Dropped?"}, {"q": "Also kept?"}], seed=0)
    assert [x["question"] for x in result.items] == ["Kept?", "Also kept?"] and result.dropped == {"not included": 1}


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
    # s1's knobs, each in the file: sources in s1's order, groups, caps, eval sets, weak models, selection
    assert [s.group_name for s in cfg.sources][:4] == ["MATH", "OlympicArena", "TheoremQA", "NuminaMath"]
    assert [s.name for s in cfg.sources if s.group_name == "AGIEval"] == ["AGIEval", "AGIEval-aqua_rat",
                                                                          "AGIEval-math"]
    by_name = {s.name: s for s in cfg.sources}
    assert by_name["crossword"].limit == 1000 and by_name["SciEval"].limit == 250
    assert by_name["SciEval"].sample.method == "quota" and not by_name["AIME"].decontaminate
    assert [q.hub_id or q.questions for q in by_name["NuminaMath"].include] == ["simplescaling/numinamath_500",
                                                                                 "s1_keep_questions.json"]
    d = cfg.decontaminate
    assert (d.ngram, d.cross_source, d.identical, d.shuffle_seed) == (8, True, False, 42)
    assert {e.hub_id for e in d.eval_sets} == {"AI-MO/aimo-validation-aime", "Idavidrein/gpqa",
                                               "simplescaling/openaimath", "livecodebench/code_generation_lite"}
    assert cfg.models["qwen7b"].temperature == 0.05 and cfg.models["qwen7b"].max_tokens is None
    assert cfg.featurize is not None and not cfg.featurize.math_verify_first
    sel = cfg.select
    assert (sel.n, sel.uniform_until, sel.require_complete) == (1000, 700, True)
    assert [(r.source.pattern, r.longer_than) for r in sel.seeds] == [
        ("^Idavidrein/gpqa$", None), ("^qq8933/AIME_1983_2024$", None), ("openaimath", 5600)]
    assert [(b.source.pattern, b.weight) for b in sel.benchmarks] == [("^Idavidrein/gpqa$", 0.5),
                                                                      ("^qq8933/AIME_1983_2024$", 1.0)]
    assert [(r.name, r.pattern.pattern, r.keep_if_source and r.keep_if_source.pattern) for r in sel.quality_rules] \
        == [(r.name, r.pattern.pattern, r.keep_if_source and r.keep_if_source.pattern) for r in S1_QUALITY_RULES]


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
    with pytest.raises(CurateError, match=r"select.seed_sources: replaced by \[\[select.seeds\]\]"):
        parse_config({**base, "select": {"seed_sources": ["^x$"]}})
    two = [{"name": "a", "path": "a.jsonl", "question": "q", "group": "g"},
           {"name": "b", "path": "b.jsonl", "question": "q", "group": "g", "limit": 5}]
    with pytest.raises(CurateError, match="group 'g', whose limit is set by its first source 'a'"):
        parse_config({**base, "sources": two})


# ---------------------------------------------------------------------------------------------- decontaminate


def test_an_eight_word_overlap_is_found_and_seven_is_not():
    index = NgramIndex(8)
    index.add("bench", "b1", "Let   ABC be a triangle with AB = 5 and BC = 7. Find the area.")
    hit = index.find("Homework: let abc be a TRIANGLE with ab = 5, then stop")
    assert hit is not None and (hit.source, hit.item_id) == ("bench", "b1")
    assert hit.ngram == "let abc be a triangle with ab ="
    assert index.find("Homework: let abc be a triangle with ab stop") is None  # 7 words only
    assert index.find("let abc be a triangle with ab, = 5") is None  # punctuation is part of a word
    index.add("bench", "b2", "What is 2 + 2?")
    assert index.find("what is 2 +   2?") is None  # s1: a question under 8 words has no 8-gram
    short = NgramIndex(8, identical=True)
    short.add("bench", "b2", "What is 2 + 2?")
    assert short.find("what is 2 +   2?").ngram == "(identical question)"


def test_dedup_keeps_the_first_of_identical_strings_and_reports_why():
    pool = [{"id": "a", "question": "Same Question", "source_type": "s1"},
            {"id": "b", "question": "Same Question", "source_type": "s2"},
            {"id": "c", "question": "same   question", "source_type": "s1"}]
    kept, removed, _ = decontaminate(pool, NgramIndex(8), DecontamConfig(eval_sets=(), shuffle_seed=None))
    assert [x["id"] for x in kept] == ["a", "c"]  # s1 compares the raw strings
    assert removed == [{"id": "b", "source_type": "s2", "source": None, "reason": "duplicate", "duplicate_of": "a",
                        "duplicate_source": "s1", "question": "Same Question"}]


def test_eval_sets_come_from_tasks_and_files_and_a_missing_one_is_loud(tmp_path):
    write_jsonl(tmp_path / "mine.jsonl", [{"problem": "one two three four five six seven eight nine"}])
    cfg = DecontamConfig(eval_tasks=("aime24", "gpqa_diamond"), eval_data_dir=str(DATA),
                         eval_sets=(EvalSet("mine", "problem", path=str(tmp_path / "mine.jsonl")),))
    with pytest.raises(CurateError, match="evaluation set 'gpqa_diamond' could not be loaded"):
        build_index(cfg)
    index, sets = build_index(DecontamConfig(**{**cfg.__dict__, "skip_unavailable": True}))
    assert sets["aime24"]["items"] == 30 and sets["mine"]["items"] == 1 and "skipped" in sets["gpqa_diamond"]
    assert index.find("zero one two three four five six seven eight").source == "mine"


def test_naming_no_eval_set_means_s1s_four():
    cfg = DecontamConfig.from_table(Table({}, "decontaminate"))
    assert [e.name for e in cfg.eval_sets] == ["aimo-validation-aime", "gpqa_diamond", "openaimath-test",
                                               "livecodebench-v4"]
    assert cfg.eval_sets[3].load_kwargs == {"version_tag": "release_v4"}
    mine = DecontamConfig.from_table(Table({"eval_tasks": ["aime24"]}, "decontaminate"))
    assert mine.eval_sets == () and mine.eval_tasks == ("aime24",)


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


def test_domain_codes_are_read_as_s1_reads_them():
    codes = msc()
    assert len(codes) == 61 and "00" not in codes and "01" not in codes and codes["11"] == "Number theory"
    assert all(f"* Code: {code}" in rubric() for code in codes)
    assert parse_code("Reasoning...\n11") == ("11", None)
    assert parse_code("It is number theory, code: 11") == ("11", None)  # s1 reads the last two characters
    assert parse_code("Reasoning...\n**05**")[0] is None
    assert parse_code("Reasoning...\n11\n")[0] is None
    assert parse_code("reasoning\n99") == (None, "code 99 is not one of the 61 MSC classes")
    assert parse_code("")[0] is None


def test_prompts_and_rubric_are_s1s_files_byte_for_byte():
    from s1.curate import protocol
    from s1.curate.domains import classify_prompt, system_prompt
    from s1.curate.featurize import judge_prompt

    grading = protocol.text(protocol.GRADING_SYSTEM)
    assert grading.startswith("You are an AI assistant for grading a science problem.\n")
    assert grading.endswith('end your response on a new line with only "Yes" or "No" (without quotes).')
    assert "correct answer. \nIf the expected" in grading  # s1's trailing space, kept
    assert system_prompt().startswith("You are a helpful assistant that classifies questions into different subjects")
    assert judge_prompt("Q", "A", "S") == "## Problem\nQ\n\n## Attempt\nA\n\n## Correct answer\nS"
    prompt = classify_prompt("Q?")
    assert prompt.startswith("## Question\nQ?\n\n## Classification rubrics\n### Mathematical logic and foundations\n")
    assert "\n\n### Combinatorics\n* Code: 05\n* Description: Enumerative combinatorics;" in prompt


def test_judge_replies_and_gold_answers():
    assert judge_verdict("The attempt matches.\nYes") is True
    assert judge_verdict("Wrong final value.\nNo") is False
    assert judge_verdict("Wrong final value.\n**No**") is None  # s1: the last line is exactly Yes or No
    assert judge_verdict("Checked.\nYes\n") is None
    assert judge_verdict("Yes, mostly, but the last step is wrong") is None
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

    cfg = FeaturizeConfig(domain_field="cot_type", math_verify_first=True)
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


def test_s1_grades_every_attempt_with_the_judge_and_none_without_a_solution(tmp_path):
    from s1.curate.featurize import FeaturizeConfig, grade_attempts

    pool = [{"id": "math", "question": "1 + 1?", "solution": "$\\boxed{2}$", "metadata": {}},
            {"id": "nosol", "question": "Write code.", "solution": None, "metadata": {}}]
    traces = {"m": {"math": {"attempt": "Answer: 2", "error": None}, "nosol": {"attempt": "print()", "error": None}}}
    replies = iter(["Fine\n**Yes**", "Fine, so\nYes"])  # the first is no verdict to s1, so it is asked again

    class Judge:
        name, asked = "j", []

        def complete(self, prompts):
            self.asked += [(p.id.split(":")[1], p.system, p.text) for p in prompts]
            return [Completion(text=next(replies)) for _ in prompts]

    judge = Judge()
    correct, how, calls = grade_attempts(pool, traces, judge, tmp_path, FeaturizeConfig(domain_field="cot_type"))
    assert correct == {"math": {"m": True}, "nosol": {"m": None}} and calls == 2
    assert [a[0] for a in judge.asked] == ["math", "math"]  # math-verify would have credited it; s1 asks anyway
    from s1.curate import protocol

    assert judge.asked[0][1] == protocol.text(protocol.GRADING_SYSTEM)
    assert judge.asked[0][2] == "## Problem\n1 + 1?\n\n## Attempt\nAnswer: 2\n\n## Correct answer\n$\\boxed{2}$"
    assert how["nosol"]["m"] == "no solution to judge against"


# ---------------------------------------------------------------------------------------------- select


def test_quality_rules_follow_s1():
    trace = {"thinking": "t", "attempt": "a", "error": None}
    feat = {"domain": "11", "trace_tokens": 3}

    def why(question, source="x"):
        return quality_reason({"question": question, "source_type": source}, trace, feat, S1_QUALITY_RULES)

    assert why("Plain question?") is None
    assert why("See ![Image] above") == "format: image reference"
    assert why("See ![diagram](fig.png) above") is None  # s1 looks for "![Image]" only
    assert why("p1. Find x. p2. Find y.") == "format: problem numbering"
    assert why("Compute **12** apples") == "format: bold number"
    assert why("[asy] ... [/asy]") == "format: asymptote diagram"
    assert why("[asy] ... [/asy]", source="qq8933/AIME_1983_2024") is None
    assert why("[asy] ... [/asy] ![Image]", source="qq8933/AIME_1983_2024") is None  # s1 keeps it whatever else


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
