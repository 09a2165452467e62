"""The `openai` client backend.

Against the `s1 serve` app (uvicorn on a loopback port, serving the embedded tiny model): under greedy
decoding it gives the same tokens as the in-process transformers backend, for every budget-forcing
feature and for sweeps. Against a local fake upstream that fails the way servers fail (500, 429,
truncated JSON, slow responses, dropped connections, errors with status 200): every sample ends either
correct or recorded as failed with its error, and the run store holds each sample once.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serving import serving
from typer.testing import CliRunner

from s1.backends import load_backend
from s1.backends.hf.backend import HFBackend
from s1.backends.openai.backend import BackendError, OpenAIBackend
from s1.backends.openai.images import data_url, inline_images
from s1.cli import app as cli_app
from s1.eval.run import EvalConfig, evaluate, load_items
from s1.eval.store import RunStore
from s1.forcing.formats import PRESETS, custom_format
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request
from s1.forcing.sweep import run_sweep
from s1.models import TINY_MODEL_DIR

QUESTIONS = [(57, 68), (19, 93), (45, 77)]
FIELDS = ("token_ids", "text", "thinking", "answer", "thinking_tokens", "thinking_forced_tokens", "answer_tokens",
          "answer_forced_tokens", "ignores_applied", "cap_hit", "finish_reason", "prompt_tokens", "thinking_budget")


def requests(n: int = 3) -> list[Request]:
    return [Request(f"q{i}", messages=f"What is {a} + {b}?") for i, (a, b) in enumerate(QUESTIONS[:n])]


def same(a, b, fields=FIELDS) -> list[str]:
    """The fields in which two generations differ."""
    return [f for f in fields if getattr(a, f) != getattr(b, f)]


@pytest.fixture(scope="module")
def hf():
    return load_backend(device="cpu")


@pytest.fixture(scope="module")
def served(hf):
    """`s1 serve` sharing the in-process model (used by one thread at a time)."""
    with serving(hf) as url:
        yield url


@pytest.fixture(scope="module")
def client(served):
    with OpenAIBackend(served, tokenizer="server").connect() as backend:
        yield backend


POLICIES = [
    BudgetPolicy(max_thinking_tokens=12, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=48, num_ignore=1, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=48, min_thinking_tokens=30, max_answer_tokens=6),
    BudgetPolicy(max_thinking_tokens=48, min_thinking_tokens=30, min_thinking_mode="wait", max_answer_tokens=6),
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label())
def test_greedy_tokens_equal_the_in_process_backend(hf, client, policy):
    expected = hf.generate(requests(), policy)
    got = client.generate(requests(), policy)
    for a, b in zip(expected, got, strict=True):
        assert b.error is None and same(a, b) == [], (a, b)
        assert [(s.kind, s.tokens) for s in a.segments] == [(s.kind, s.tokens) for s in b.segments]
        assert b.backend == "openai:completions:server"
    assert all(g.thinking_tokens >= policy.min_thinking_tokens for g in got)
    if policy.max_thinking_tokens == 12:
        assert all(g.cap_hit for g in got)  # the budget bites on these questions
    if policy.num_ignore:
        assert all(g.ignores_applied == 1 for g in got)


@pytest.mark.parametrize("fmt", [PRESETS["think"], PRESETS["s1m"], custom_format("<think>\n", "th")],
                         ids=["think", "s1m", "two-token-closer"])
def test_plain_text_closers_are_stripped_as_the_in_process_backend_strips_them(stopper_model, tiny_tok, fmt):
    """A random model (which now and then ends its thinking) whose closer is several tokens of text: the
    server stops on the text, the client strips it at the token boundary, as the multi-round transformers
    backend does; cycling ignore strings (s1m) and the floor's bans (EOS learned from /v1/models) agree."""
    hf = HFBackend(stopper_model, tiny_tok, format=fmt, mode="multi")
    policies = [BudgetPolicy(max_thinking_tokens=40, max_answer_tokens=6),
                BudgetPolicy(max_thinking_tokens=60, num_ignore=2, max_answer_tokens=6),
                BudgetPolicy(max_thinking_tokens=60, min_thinking_tokens=20, max_answer_tokens=6)]
    reqs = [Request(f"q{i}", messages=q) for i, q in enumerate(
        ["What is 2+3?", "Sort 3 1 2", "How many r are in raspberry?", "Count to ten", "Is 7 prime?"])]
    expected = [hf.generate(reqs, p) for p in policies]
    with serving(hf) as url, OpenAIBackend(url, tokenizer="server", format=fmt).connect() as client:
        got = [client.generate(reqs, p) for p in policies]
    for want, have in zip(expected, got, strict=True):
        for a, b in zip(want, have, strict=True):
            assert b.error is None and same(a, b) == [], (a, b)
    assert any(g.ignores_applied for g in got[1])  # the model does try to stop: ignores are exercised


def test_a_local_tokenizer_counts_exactly_too(hf, served):
    policy = BudgetPolicy(max_thinking_tokens=40, num_ignore=1, max_answer_tokens=6)
    with OpenAIBackend(served, tokenizer=str(TINY_MODEL_DIR)).connect() as backend:
        assert backend.format.name == "s1"  # detected from the local tokenizer's chat template
        got = backend.generate(requests(2), policy)
    for a, b in zip(hf.generate(requests(2), policy), got, strict=True):
        assert same(a, b) == [] and b.backend == "openai:completions:local"


def test_a_sweep_over_http_equals_the_in_process_sweep(hf, client):
    settings = [BudgetPolicy(max_thinking_tokens=b, num_ignore=k, max_answer_tokens=6)
                for b in (8, 20, 48) for k in (0, 1)]
    expected = run_sweep(hf, requests(2), settings).generations
    got = run_sweep(client, requests(2), settings)
    assert got.branches > 0  # answers were branched from the shared thinking, not regenerated
    for a, b in zip(expected, got.generations, strict=True):
        assert b.setting == a.setting and same(a, b) == [], (a.setting, a, b)


def test_chat_continuation_without_a_tokenizer_counts_from_usage(hf, served):
    policy = BudgetPolicy(max_thinking_tokens=12, max_answer_tokens=6)
    with OpenAIBackend(served, tokenizer="none", api="chat").connect() as backend:
        assert "usage counts" in backend.counting
        got = backend.generate(requests(2), policy)
        floor = backend.generate(requests(1), policy.replace(min_thinking_tokens=5))
    for a, b in zip(hf.generate(requests(2), policy), got, strict=True):
        assert b.error is None and b.backend == "openai:chat:usage"
        assert (b.text, b.thinking_tokens, b.cap_hit) == (a.text, a.thinking_tokens, a.cap_hit)
    assert floor[0].error is not None and "needs a tokenizer" in floor[0].error  # cannot ban ids it cannot name


def test_eval_cli_runs_against_the_server(served, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli_app, ["eval", "--backend", "openai", "--base-url", served, "--limit", "2",
                                       "--budgets", "8,24", "--num-ignore", "0", "--output", str(out), "--no-plot"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["error"] is None and r["backend"].startswith("openai") for r in rows)
    assert json.loads((out / "manifest.json").read_text())["backend"] == "openai"


def test_images_travel_as_lossless_png_data_urls():
    from PIL import Image

    image = Image.new("RGB", (3, 2))
    image.putdata([(255, 0, 0), (0, 255, 0), (0, 0, 255), (1, 2, 3), (250, 251, 252), (9, 8, 7)])
    messages = inline_images([{"role": "user", "content": [{"type": "image", "image": image},
                                                           {"type": "text", "text": "What is shown?"}]}])
    part = messages[0]["content"][0]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
    assert (decoded.mode, decoded.size, decoded.tobytes()) == (image.mode, image.size, image.tobytes())
    assert data_url("https://example.org/a.png") == "https://example.org/a.png"  # URLs pass through


# -- a fake upstream that fails ------------------------------------------------------------------------
class FakeUpstream:
    """A scripted "model" behind an OpenAI-compatible API, with injectable faults.

    It thinks "Adding the two numbers column by column." (one token per word, honouring max_tokens) and,
    once the closer is in the context, answers "Final Answer: <sum>". `fault(body, attempt)` names the
    fault for a call: 500, 429, truncated (half the JSON), cut (connection closed mid-body), slow, drop (closed
    without a response), error200, 400, or None.
    """

    THINKING = "Adding the two numbers column by column."

    def __init__(self, fault=lambda body, attempt: None, slow_s: float = 1.0):
        self.fault, self.slow_s = fault, slow_s
        self.attempts: dict[str, int] = {}
        self.calls = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = hashlib.sha1(raw).hexdigest()
                with fake.lock:
                    fake.calls += 1
                    attempt = fake.attempts[key] = fake.attempts.get(key, 0) + 1
                body = json.loads(raw)
                kind = fake.fault(body, attempt)
                if kind == "drop":
                    self.close_connection = True
                    return
                if kind == "slow":
                    time.sleep(fake.slow_s)
                status, payload = {
                    "500": (500, {"error": {"message": "internal error"}}),
                    "429": (429, {"error": {"message": "rate limited"}}),
                    "400": (400, {"error": {"message": "prompt is too long"}}),
                    "error200": (200, {"error": {"message": "model overloaded"}}),
                }.get(kind, (200, None))
                data = json.dumps(payload if payload is not None else fake.complete(self.path, body)).encode()
                length = len(data)
                if kind in ("truncated", "cut"):  # a complete response of half a JSON body / a body cut short
                    data = data[: len(data) // 2]
                    length = length if kind == "cut" else len(data)
                    self.close_connection = kind == "cut"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(length))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up on a slow response
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def complete(self, path: str, body: dict) -> dict:
        if path.endswith("/chat/completions"):
            context = " ".join(m["content"] for m in body["messages"])
        else:
            context = body["prompt"]
        numbers = re.search(r"What is (\d+) \+ (\d+)", context)
        if "<|im_start|>answer" in context.rsplit("<|im_start|>think", 1)[-1]:
            total = int(numbers[1]) + int(numbers[2]) if numbers else 0
            text = f" {total}" if context.endswith("Final Answer:") else f"Final Answer: {total}"
            finish = "stop"
        else:
            words = self.THINKING.split(" ")
            finish = "length" if body["max_tokens"] < len(words) else "stop"
            text = " ".join(words[: body["max_tokens"]])
        n = len(text.split(" ")) + (finish == "stop")  # the stop token is counted, as servers count it
        choice = {"index": 0, "finish_reason": finish}
        choice.update({"message": {"role": "assistant", "content": text}} if "messages" in body else {"text": text})
        return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}}


def fake_backend(url: str, api: str = "completions", retries: int = 3) -> OpenAIBackend:
    return OpenAIBackend(url, model="fake", format="s1", tokenizer="none", api=api, context_length=4096,
                         timeout_s=0.4, max_retries=retries, backoff_s=0.01, concurrency=4)


def raw(a: int, b: int) -> Request:
    return Request(f"{a}+{b}", prompt=f"<|im_start|>user\nWhat is {a} + {b}?<|im_end|>\n<|im_start|>assistant\n")


FAULTS = {"500": "HTTP 500", "429": "HTTP 429", "truncated": "invalid JSON", "cut": "ClientPayloadError",
          "slow": "TimeoutError", "drop": "Server disconnected"}


@pytest.mark.parametrize("kind", FAULTS)
def test_every_sample_ends_correct_or_failed_with_its_error(kind):
    """Each call fails once and then succeeds (retried to a correct answer), except every call for one
    question, which fails for good (a failed record naming the fault; no text taken from an error)."""
    def fault(body, attempt):
        return kind if attempt == 1 or "13 + 13" in body["prompt"] else None

    pairs = [(57, 68), (19, 93), (13, 13), (45, 77)]
    with FakeUpstream(fault, slow_s=0.8) as fake, fake_backend(fake.url) as backend:
        gens = backend.generate([raw(a, b) for a, b in pairs], BudgetPolicy(max_thinking_tokens=64,
                                                                             max_answer_tokens=8))
        retries = backend.client.retries
    for (a, b), g in zip(pairs, gens, strict=True):
        if (a, b) == (13, 13):
            assert g.error is not None and g.finish_reason == "error"
            assert FAULTS[kind] in g.error
            assert "after 4 attempts" in g.error
            assert (g.text, g.answer, g.token_ids) == ("", "", [])
        else:
            assert g.error is None and g.answer == f"Final Answer: {a + b}"
            assert g.thinking_tokens == 7 and g.thinking == FakeUpstream.THINKING
    assert retries >= 3 * 2  # every round of the three good samples was retried once


def test_a_thinking_cap_holds_with_usage_counts():
    with FakeUpstream() as fake, fake_backend(fake.url) as backend:
        (g,) = backend.generate([raw(57, 68)], BudgetPolicy(max_thinking_tokens=4, max_answer_tokens=8))
    assert g.cap_hit and g.thinking_tokens == 4 and g.thinking == "Adding the two numbers"
    assert g.answer == "Final Answer: 125"


@pytest.mark.parametrize(("kind", "needle", "calls"), [("error200", "model overloaded", 1),
                                                       ("400", "prompt is too long", 1)])
def test_errors_are_recorded_never_stored_as_model_text(kind, needle, calls):
    with FakeUpstream(lambda body, attempt: kind) as fake, fake_backend(fake.url) as backend:
        (g,) = backend.generate([raw(57, 68)], BudgetPolicy(max_thinking_tokens=8))
        assert fake.calls == calls  # a client error or a malformed answer is not retried
    assert g.error is not None and needle in g.error
    assert (g.text, g.thinking, g.answer) == ("", "", "")


def test_a_server_offering_no_continuation_is_a_clear_error():
    with FakeUpstream(lambda body, attempt: "400") as fake, pytest.raises(
            BackendError, match="neither raw completions .* nor chat continuation"):
        OpenAIBackend(fake.url, model="fake", format="s1", tokenizer="none", max_retries=0).connect()


def test_retried_samples_are_stored_once_in_the_run_store(tmp_path: Path):
    """`s1 eval`'s loop over a flaky upstream (chat continuation): one line per sample, failures recorded."""
    config = EvalConfig(backend="openai", tasks=("synthetic",), limit=4, budgets=(64,), num_ignore=(0, 1),
                        max_answer_tokens=8)
    items = load_items(config)
    doomed = items["synthetic"][1].question

    def fault(body, attempt):
        question = body["messages"][0]["content"]
        return "500" if question == doomed or attempt == 1 else None

    with FakeUpstream(fault) as fake, fake_backend(fake.url, api="chat") as backend:
        store = RunStore.open_or_create(tmp_path / "run", {"model": "fake", "backend": "openai"}, resume=False)
        progress = evaluate(config, backend, store, items)
        again = evaluate(config, backend, store, items, retry_failed=False)  # nothing left (failures kept)
        store.close()
    lines = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    keys = [(r["prompt_id"], r["sample_index"], r["setting"]) for r in lines]
    assert len(keys) == len(set(keys)) == 4 * 2 and again.generated == 0
    assert progress.errors == 2
    for r in lines:
        if r["prompt_id"] == items["synthetic"][1].id:
            assert r["error"] and "HTTP 500" in r["error"] and r["correct"] is False
        else:
            assert r["error"] is None and r["correct"] is True
