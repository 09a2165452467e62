"""Graders: extraction precedence, math-verify agreement on MATH500, timeouts from threads, GPQA letters,
MathVista rules, and the LLM judge against a loopback server."""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s1.grading import (
    Verdict,
    extract_answer,
    extract_choice,
    find_answer,
    grade,
    grade_choice,
    grade_many,
    grade_math,
    grade_math_many,
    grade_mathvista,
    grader_names,
    register_grader,
)
from s1.grading import math as gmath
from s1.grading.judge import LLMJudge

DATA = Path(__file__).parents[1].parent / "shared" / "data"


def _jsonl(name: str) -> list[dict]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def mathvista() -> dict[str, dict]:
    path = DATA / "mathvista_testmini.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------------
# Extraction


@pytest.mark.parametrize(
    ("text", "expected", "method"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "boxed"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", "boxed"),
        ("the set is \\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),  # escaped braces do not count
        ("\\fbox{7}", "7", "boxed"),
        ("first \\boxed{3}, then \\boxed{4}", "4", "boxed"),  # last box wins
        ("\\boxed{3} and \\fbox{5}", "5", "boxed"),
        ("\\boxed 5$ dollars", "5", "boxed"),  # space form runs to the next $
        ("I get \\boxed{3}.\n\nFinal Answer: 4", "4", "final_answer"),  # the forced delimiter wins
        ("Final Answer: The answer is $\\boxed{12}$", "12", "boxed"),
        ("**Final Answer:** 12\n\nbecause ...", "12", "final_answer"),
        ("Final answer: $\\frac{3}{4}$.", "\\frac{3}{4}", "final_answer"),
        ("Final Answer:\n\\[\nx = 5\n\\]\nDone.", "x = 5", "final_answer"),
        ("Final Answer: 2\nFinal Answer: 3", "3", "final_answer"),
        ("Answer: 42\nthat is all", "42", "answer"),
        ("Answer: 1\nno wait. Answer: 2", "2", "answer"),
        ("ANSWER: 17<|im_end|>", "17", "answer"),
        ("Final Answer:", None, None),
        ("we have \\boxed{12 and then the text was cut", None, None),  # unbalanced box: no box
        ("Some long reasoning\nwith no marked answer at all.\nThe end.", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_extraction_precedence(text, expected, method):
    found = find_answer(text)
    assert (found.text if found else None) == expected
    assert (found.method if found else None) == method
    assert extract_answer(text) == expected


def test_forced_final_answer_with_nothing_after_falls_back_to_box():
    assert extract_answer("so \\boxed{9}\nFinal Answer:") == "9"
    assert extract_answer("so \\boxed{9}\nFinal Answer: 10") == "10"


def test_bare_answer_only_when_asked_and_short():
    assert extract_answer("42") is None
    assert find_answer("42", bare=True) == ("42", "bare")
    assert find_answer("$\\frac{1}{2}$", bare=True).text == "\\frac{1}{2}"
    assert find_answer("a long sentence that is certainly not an answer of any kind", bare=True) is None
    assert find_answer("5\n6", bare=True) is None


# ---------------------------------------------------------------------------------------------------
# Math: agreement with gold on MATH500 solutions, rejection of perturbed answers


def test_math500_solutions_agree_with_gold():
    rows = _jsonl("math500.jsonl")
    start = time.perf_counter()
    # no identical-string shortcut: every row goes through math-verify
    verdicts = grade_math_many([(r["solution"], r["answer"]) for r in rows], timeout=10.0, exact_shortcut=False)
    elapsed = time.perf_counter() - start
    failures = [(r["unique_id"], r["answer"], v) for r, v in zip(rows, verdicts, strict=True) if not v.correct]
    rate = 1 - len(failures) / len(rows)
    print(f"\nMATH500 gold-solution agreement: {rate:.2%} ({len(rows) - len(failures)}/{len(rows)}) in {elapsed:.1f}s")
    for uid, gold, v in failures:
        print(f"  FAIL {uid}: gold {gold!r} -> {v}")
    assert all(v.reason.startswith("equivalent to gold") for v in verdicts if v.correct)
    assert rate >= 0.99, failures


def _perturb(row: dict, other: dict) -> str:
    answer = row["answer"]
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + 1)
    letter = re.fullmatch(r"\\text\{\(([A-E])\)\}", answer)
    if letter:
        return "\\text{(%s)}" % ("A" if letter.group(1) != "A" else "B")
    return other["answer"]  # a different expression


def test_math500_perturbed_answers_are_rejected():
    rows = _jsonl("math500.jsonl")
    rng = random.Random(1234)
    sample = rng.sample(range(len(rows)), 100)
    cases = []
    for i in sample:
        other = rows[(i + 7) % len(rows)]
        j = i
        while "".join(rows[j]["answer"].split()) == "".join(rows[i]["answer"].split()):
            j = (j + 1) % len(rows)
            other = rows[j]
        wrong = _perturb(rows[i], other)
        cases.append((f"The work...\n\nFinal Answer: $\\boxed{{{wrong}}}$", rows[i]["answer"]))
    verdicts = grade_math_many(cases, timeout=10.0)
    accepted = [(c, v) for c, v in zip(cases, verdicts, strict=True) if v.correct]
    rate = 1 - len(accepted) / len(cases)
    print(f"\nMATH500 perturbed-answer rejection: {rate:.2%} ({len(cases) - len(accepted)}/{len(cases)})")
    assert all(v.extracted is not None and v.reason for v in verdicts)
    assert rate >= 0.99, accepted


def test_math_hand_cases():
    cases = [
        ("Final Answer: $\\frac{1}{2}$", "0.5", True),
        ("so \\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", True),
        ("\\boxed{3\\sqrt{13}}", "3\\sqrt{13}", True),
        ("\\boxed{25}", "025", True),  # AIME zero-padded gold
        ("Final Answer: 25", "25", True),
        ("42", "42", True),  # a bare answer
        ("\\boxed{26}", "25", False),
        ("\\boxed{x = 5}", "x=5", True),
        ("\\boxed{\\text{(C)}}", "\\text{(C)}", True),
        ("\\boxed{\\text{(B)}}", "\\text{(C)}", False),
    ]
    verdicts = grade_math_many([(a, g) for a, g, _ in cases])
    for (answer, gold, ok), v in zip(cases, verdicts, strict=True):
        assert v.correct is ok, (answer, gold, v)


def test_empty_extraction_is_wrong_never_credited():
    for text in ("", None, "I thought about it for a long while\nand could not decide.\nSorry."):
        v = grade_math(text, "5")
        assert v == Verdict(False, None, "no answer found")
    v = grade_math("\\boxed{}", "5")  # an empty box is no answer either
    assert not v.correct and v.extracted is None


def test_unparseable_extraction_is_wrong_with_reason():
    v = grade_math("Final Answer: no idea", "5")
    assert not v.correct and v.extracted == "no idea"
    assert v.reason.startswith(("could not parse", "extracted"))


def test_verdict_to_dict():
    v = grade_math("\\boxed{7}", "7")
    assert v.to_dict() == {"correct": True, "extracted": "7", "reason": "identical to gold '7'"}


# ---------------------------------------------------------------------------------------------------
# Timeouts from non-main threads


def slow_compare(gold: str, pred: str):
    """Injected into a worker: pure-Python busy work that the worker's alarm interrupts."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        sum(range(1000))
    return "equal", ""


def stuck_compare(gold: str, pred: str):
    """Injected into a worker: ignores the alarm, so only the caller's backstop can stop it."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(60)
    return "equal", ""


def _in_thread(fn, *args, **kwargs):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=120)


def test_timeout_on_a_heavy_expression_from_a_thread():
    start = time.monotonic()
    v = _in_thread(grade_math, "\\boxed{9^{9^{9^{9}}}}", "2", timeout=0.5)
    assert threading.current_thread() is threading.main_thread()  # the grading ran in another thread
    assert v == Verdict(False, "9^{9^{9^{9}}}", "timed out after 0.5s")
    assert time.monotonic() - start < 10
    assert _in_thread(grade_math, "\\boxed{\\frac{2}{4}}", "0.5").correct  # the pool still works


def test_timeout_of_injected_slow_function_uses_worker_alarm():
    pool = gmath._pool()
    before = pool.replacements
    start = time.monotonic()
    [v] = _in_thread(grade_math_many, [("\\boxed{1}", "1")], timeout=0.5, _func=slow_compare)
    assert v == Verdict(False, "1", "timed out after 0.5s")
    assert time.monotonic() - start < 10
    assert pool.replacements == before  # the worker answered its own alarm: no pool replacement


def test_stuck_worker_is_killed_and_pool_replaced():
    pool = gmath._pool()
    before = pool.replacements
    start = time.monotonic()
    verdicts = _in_thread(grade_math_many, [("\\boxed{1}", "1"), ("\\boxed{2}", "2")], timeout=0.3,
                          _func=stuck_compare)
    assert [v.reason for v in verdicts] == ["timed out after 0.3s"] * 2
    assert not any(v.correct for v in verdicts)
    assert time.monotonic() - start < 30
    assert pool.replacements > before
    assert grade_math("\\boxed{0.25}", "\\frac14").correct  # a fresh pool grades again


def test_concurrent_threads_share_the_pool():
    pairs = [(f"\\boxed{{\\frac{{{k}}}{{2}}}}", f"{k / 2}") for k in range(1, 13)]
    with ThreadPoolExecutor(6) as pool:
        verdicts = list(pool.map(lambda p: grade_math(*p), pairs))
    assert all(v.correct for v in verdicts), verdicts


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout"):
        grade_math_many([("\\boxed{1}", "1")], timeout=0)


# ---------------------------------------------------------------------------------------------------
# GPQA letters


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Final Answer: C", "C"),
        ("Final Answer: (C)", "C"),
        ("Final Answer: C) 7", "C"),
        ("Final Answer: **B**", "B"),
        ("Final Answer: \\text{(D)}", "D"),
        ("Answer: A. Dinosaur", "A"),
        ("so the answer is \\boxed{B}", "B"),
        ("\\boxed{A} ... on reflection \\boxed{D}", "D"),
        ("The correct answer is (C).", "C"),
        ("the answer is A, no wait, the answer is B", "B"),
        ("I am confident option D is correct.", "D"),
        ("C", "C"),
        ("c", "C"),
        ("(b)", "B"),
        ("Final Answer: the one with the largest mass", None),
        ("A cat is not an answer.", None),
        ("Everything depends on context.", None),
        ("Final Answer: E", None),  # not an option of A-D
        ("", None),
    ],
)
def test_gpqa_letter_extraction(text, letter):
    assert extract_choice(text) == letter


def test_grade_choice():
    assert grade_choice("Final Answer: C", "C") == Verdict(True, "C", "extracted 'C', the gold choice")
    assert grade_choice("Final Answer: C", "A") == Verdict(False, "C", "extracted 'C', gold 'A'")
    assert grade_choice("no idea", "A") == Verdict(False, None, "no choice letter found")
    assert grade_choice("Final Answer: (E)", "E", letters="ABCDE").correct
    # an option named by its text counts as that option when the choices are given
    choices = ["Dinosaur", "Elephant", "Cat", "Dog"]
    v = grade_choice("Final Answer: elephant", "B", choices=choices)
    assert v.correct and v.extracted == "B" and "elephant" in v.reason
    assert not grade_choice("Final Answer: elephant", "B").correct  # no choices, no guessing
    with pytest.raises(ValueError, match="gold"):
        grade_choice("C", "Z")


# ---------------------------------------------------------------------------------------------------
# MathVista


def _mv(row: dict, text: str) -> Verdict:
    return grade_mathvista(text, row["answer"], row["question_type"], row["answer_type"], row["choices"],
                           row["precision"], row["unit"])


def test_mathvista_multi_choice_by_letter_and_text(mathvista):
    rows = [r for r in mathvista.values() if r["question_type"] == "multi_choice" and len(r["choices"]) >= 3]
    assert len(rows) > 100
    for row in rows[:60]:
        idx = row["choices"].index(row["answer"])
        letter = "ABCDEFGH"[idx]
        assert _mv(row, f"Final answer: {letter}").correct, row
        assert _mv(row, f"Final answer: ({letter}) {row['answer']}").correct, row
        assert _mv(row, f"Final answer: {row['answer']}").correct, row
        assert _mv(row, f"\\boxed{{{row['answer']}}}").correct, row
        wrong = "ABCDEFGH"[(idx + 1) % len(row["choices"])]
        v = _mv(row, f"Final answer: {wrong}")
        assert not v.correct and v.extracted == wrong, row


def test_mathvista_no_edit_distance_credit(mathvista):
    """MathVista maps an empty or unmatched extraction to the nearest option; we count it wrong."""
    row = next(r for r in mathvista.values() if r["choices"] and "quarter past" in r["choices"])
    assert row["question_type"] == "multi_choice" and row["answer"] == "quarter"
    assert row["choices"] == ["half", "quarter", "o'clock", "quarter to", "quarter past"]
    # MathVista would map "" to "half" (nearest by edit distance) and "quarterr" to the gold "quarter"
    for text in ("", "Final answer: ", "Final answer: quarterr", "I cannot tell from the image."):
        v = _mv(row, text)
        assert not v.correct, (text, v)
    assert _mv(row, "").reason == "no answer found (no nearest-option guess)"
    assert _mv(row, "Final answer: quarterr").reason == "extracted 'quarterr' names no option"
    assert not _mv(row, "Final answer: quarter to").correct  # exact option text, not a prefix
    assert _mv(row, "Final answer: Quarter").correct


def test_mathvista_integer_float_list(mathvista):
    ints = [r for r in mathvista.values() if r["answer_type"] == "integer"]
    for row in ints[:50]:
        gold = int(row["answer"])
        assert _mv(row, f"Final answer: {gold}").correct, row
        assert _mv(row, f"The count is \\boxed{{{gold}}}.").correct, row
        assert not _mv(row, f"Final answer: {gold + 1}").correct, row
        assert _mv(row, f"Final answer: {gold}.0").correct  # int(float(x)), as MathVista
    floats = [r for r in mathvista.values() if r["answer_type"] == "float"]
    assert {r["precision"] for r in floats} == {1, 2}
    for row in floats:
        gold, p = float(row["answer"]), int(row["precision"])
        assert _mv(row, f"Final answer: {gold}").correct, row
        assert _mv(row, f"Final answer: {gold + 0.4 * 10 ** -p:.{p + 2}f}").correct, row  # rounds to the gold
        assert not _mv(row, f"Final answer: {gold + 10 ** -p:.{p}f}").correct, row
    lists = [r for r in mathvista.values() if r["answer_type"] == "list"]
    assert len(lists) == 2
    for row in lists:
        assert _mv(row, f"Final answer: {row['answer']}").correct, row
        numbers = json.loads(row["answer"])
        assert _mv(row, "Final answer: " + ", ".join(map(str, numbers))).correct, row
        assert not _mv(row, "Final answer: " + str(list(reversed(numbers)))).correct, row
        assert not _mv(row, "Final answer: " + str(numbers[:-1])).correct, row


def test_mathvista_rules_by_hand():
    assert grade_mathvista("Final answer: 2.7", "2", "free_form", "integer").reason == "2 matches gold '2'"
    assert grade_mathvista("Final answer: 1.2345", "1.23", "free_form", "float", precision=2).correct
    assert not grade_mathvista("Final answer: 1.2355", "1.23", "free_form", "float", precision=2).correct
    assert grade_mathvista("Final answer: 0", "0.0", "free_form", "float", precision=1).correct
    assert grade_mathvista("Final answer: 12 cm", "12", "free_form", "integer", unit="cm").correct
    assert grade_mathvista("Final answer: 1,234", "1234", "free_form", "integer").correct
    v = grade_mathvista("Final answer: 3 or 4", "3", "free_form", "integer")
    assert not v.correct and v.reason.startswith("no integer")
    assert grade_mathvista("", "3", "free_form", "integer") == Verdict(False, None, "no answer found")
    assert not grade_mathvista("Final answer: inf", "3", "free_form", "integer").correct
    assert grade_mathvista("Final answer: [2007, 2008]", "[2007, 2008]", "free_form", "list").correct
    assert not grade_mathvista("The peak is between 2007 and 2009, see [2007, 2008]", "[2007, 2009]",
                               "free_form", "list").correct
    with pytest.raises(ValueError, match="answer_type"):
        grade_mathvista("1", "1", "free_form", "complex")
    with pytest.raises(ValueError, match="choices"):
        grade_mathvista("A", "x", "multi_choice", "text")


# ---------------------------------------------------------------------------------------------------
# Dispatch


def test_grade_dispatch(mathvista):
    assert grade("math", "Final Answer: \\boxed{\\frac{2}{4}}", "\\frac12").correct
    assert grade("choice", "Final Answer: B", "B").correct
    row = next(r for r in mathvista.values() if r["answer_type"] == "float")
    assert grade("mathvista", f"Final answer: {row['answer']}", row["answer"], metadata=row).correct
    with pytest.raises(ValueError, match="question_type"):
        grade("mathvista", "1", "1")
    with pytest.raises(ValueError, match="known graders: choice, math, mathvista, synthetic"):
        grade("nonesuch", "x", "y")
    with pytest.raises(ValueError, match="needs metadata 'family'"):
        grade("synthetic", "x", "y")
    assert grade("synthetic", "Final Answer: 1,589", "1589", {"family": "addition"}).correct
    wrong = grade("synthetic", "Final Answer: 1588", "1589", {"family": "addition"})
    assert not wrong.correct and wrong.extracted == "1588"
    assert grade("synthetic", "", "1589", {"family": "addition"}) == Verdict(False, None, "no answer found")
    with pytest.raises(ValueError, match="built in"):
        register_grader("math", lambda a, g, m, t: Verdict(True, a, "always"))
    register_grader("echo-test", lambda a, g, m, t: Verdict(a == g, a, "echo"), replace=True)
    assert "echo-test" in grader_names()
    assert grade("echo-test", "x", "x") == Verdict(True, "x", "echo")
    assert [v.correct for v in grade_many("math", [("\\boxed{1}", "1", None), ("\\boxed{2}", "3", None)])] == [
        True, False]


# ---------------------------------------------------------------------------------------------------
# LLM judge against a loopback server


class _FakeAPI:
    """A chat-completions server on 127.0.0.1 answering from a script of (status, content) replies."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, str]] = deque()
        self.requests: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                status, content = api.script.popleft() if api.script else (200, "-1")
                if status == 200:
                    payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
                    data = json.dumps(payload).encode()
                else:
                    data = json.dumps({"error": {"message": content}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api():
    api = _FakeAPI()
    yield api
    api.close()


def test_judge_s1_protocol(fake_api):
    fake_api.script.extend([(200, "1"), (200, "-1"), (200, "2"), (200, "I think they match")])
    with LLMJudge(base_url=fake_api.url, api_key="sk-test", model="judge-mini", backoff=0.01) as judge:
        v = judge.judge("Final Answer: 0.5", "\\frac{1}{2}")
        assert v == Verdict(True, "0.5", "judge (judge-mini): equivalent to gold '\\\\frac{1}{2}'")
        assert not judge.judge("\\boxed{0.7}", "\\frac{1}{2}").correct
        v = judge.judge("\\boxed{x}", "y", other_options=["x", "y"])
        assert not v.correct and "matches 'x'" in v.reason
        v = judge.judge("\\boxed{x}", "y")
        assert not v.correct and v.reason.startswith("judge reply unreadable")
        # integers are compared without a call, as in s1
        assert judge.judge("Final Answer: 025", "25").correct
        assert not judge.judge("\\boxed{24}", "25").correct
        assert judge.judge("", "25") == Verdict(False, None, "no answer found")
    assert len(fake_api.requests) == 4
    first = fake_api.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["model"] == "judge-mini" and first["temperature"] == 0
    prompt = first["messages"][0]["content"]
    assert "Options: ['\\frac{1}{2}']" in prompt and prompt.rstrip().endswith("Attempt: 0.5")
    assert "Options: ['y', 'x']" in fake_api.requests[2]["messages"][0]["content"]  # gold first


def test_judge_equality_protocol(fake_api):
    fake_api.script.extend([(200, "Yes"), (200, "No.")])
    judge = LLMJudge(base_url=fake_api.url, api_key="", protocol="equality", backoff=0.01)
    assert judge.judge("\\boxed{3/2}", "1.5").correct
    assert not judge.judge("\\boxed{3245/5}", "649").correct
    prompt = fake_api.requests[0]["messages"][0]["content"]
    assert "Expression 1: 1.5" in prompt and "Expression 2: 3/2" in prompt
    assert fake_api.requests[0]["auth"] is None
    judge.close()


def test_judge_retries_then_succeeds(fake_api):
    fake_api.script.extend([(500, "overloaded"), (429, "slow down"), (200, "1")])
    judge = LLMJudge(base_url=fake_api.url, backoff=0.01, max_retries=3)
    assert judge.judge("\\boxed{x+1}", "1+x").correct
    assert len(fake_api.requests) == 3
    judge.close()


def test_judge_persistent_failure_is_a_named_error(fake_api):
    fake_api.script.extend([(500, "boom")] * 3)
    judge = LLMJudge(base_url=fake_api.url, backoff=0.01, max_retries=2)
    v = judge.judge("\\boxed{x+1}", "1+x")
    assert not v.correct and v.extracted == "x+1"
    assert v.reason.startswith("judge API error: HTTP 500") and "after 3 attempts" in v.reason
    fake_api.script.append((401, "bad key"))  # not retried
    v = judge.judge("\\boxed{x+1}", "1+x")
    assert v.reason.startswith("judge API error: HTTP 401") and len(fake_api.requests) == 4
    judge.close()


def test_judge_connection_error_is_a_named_error():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    judge = LLMJudge(base_url=f"http://127.0.0.1:{port}/v1", backoff=0.01, max_retries=1, timeout=2)
    v = judge.judge("\\boxed{x+1}", "1+x")
    assert not v.correct and v.reason.startswith("judge API error: ConnectError")
    judge.close()
