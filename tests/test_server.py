"""`s1 serve` end to end: the real command on a loopback port with the embedded tiny model, driven by the
official `openai` client. Budgets exact, streaming, reasoning_effort, auth, clear 4xx, batching."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest
from serving import free_port

from s1.defaults import effort_budgets
from s1.forcing.request import Request
from s1.serve.engine import BatchingEngine

KEY = "test-key"
MODEL = "tiny-reasoner"
QUESTION = [{"role": "user", "content": "What is 57 + 68?"}]
TINY_EFFORT = effort_budgets(1024)  # the defaults for the tiny model's 1024-token context (s1.defaults)


@pytest.fixture(scope="module")
def base_url():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "s1.cli", "serve", "--port", str(port), "--api-key", KEY, "--device", "cpu",
         "--max-tokens", "512", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        # one math thread: the tiny model gains nothing from more, and on a busy machine spinning threads
        # slow it down many times over
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"s1 serve exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("s1 serve did not become healthy within 120 s")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=120)


def chat(client, **extra):
    extra.setdefault("max_answer_tokens", 6)
    return client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, extra_body=extra)


def s1_info(choice) -> dict:
    return choice.model_extra["s1"]


def test_models_lists_the_served_model_with_its_context(client):
    (entry,) = client.models.list().data
    assert entry.id == MODEL
    assert entry.model_extra["max_model_len"] == 1024
    assert entry.model_extra["reasoning_format"] == "s1"


@pytest.mark.parametrize("budget", [0, 5, 13])
def test_thinking_cap_is_exact_and_reported_in_usage(client, budget):
    r = chat(client, max_thinking_tokens=budget, max_answer_tokens=6)
    choice = r.choices[0]
    info = s1_info(choice)
    assert info["thinking_tokens"] == budget and info["cap_hit"] and info["thinking_budget"] == budget
    assert r.usage.completion_tokens_details.reasoning_tokens == budget
    assert choice.message.content.startswith("Final Answer:")
    assert choice.message.model_extra["reasoning_content"] is not None
    # every emitted token is counted: thinking, the forced cap, the answer and the token that ended it (the
    # model's stop token, or the end token forced at max_answer_tokens)
    assert r.usage.completion_tokens == budget + info["answer_forced_tokens"] + info["answer_tokens"] + 1


def test_num_ignore_and_min_thinking_extend_the_reasoning(client):
    plain = s1_info(chat(client, max_thinking_tokens=64).choices[0])
    waited = chat(client, num_ignore=1, max_thinking_tokens=64)
    info = s1_info(waited.choices[0])
    assert info["ignores_applied"] == 1 and info["thinking_tokens"] > plain["thinking_tokens"]
    assert "Wait" in waited.choices[0].message.model_extra["reasoning_content"]
    assert waited.usage.completion_tokens_details.reasoning_tokens == (
        info["thinking_tokens"] + info["thinking_forced_tokens"])
    floor = s1_info(chat(client, min_thinking_tokens=50, max_thinking_tokens=64).choices[0])
    assert floor["thinking_tokens"] >= 50


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_maps_to_a_thinking_budget(client, effort):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, reasoning_effort=effort,
                                       extra_body={"max_answer_tokens": 6})
    info = s1_info(r.choices[0])
    assert info["thinking_budget"] == TINY_EFFORT[effort]
    assert info["thinking_tokens"] <= TINY_EFFORT[effort]
    if effort == "low":  # the tiny model thinks longer than the low budget on this question
        assert info["cap_hit"] and r.usage.completion_tokens_details.reasoning_tokens == TINY_EFFORT["low"]


def test_max_tokens_bounds_the_whole_completion(client):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=30)
    assert r.usage.completion_tokens <= 30
    assert s1_info(r.choices[0])["cap_hit"]  # the open budget shrank so that the answer still fits


def test_streaming_gives_the_same_reasoning_content_and_usage(client):
    whole = chat(client, max_thinking_tokens=20)
    stream = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_body={"max_thinking_tokens": 20, "max_answer_tokens": 6})
    reasoning, content, finish, usage = "", "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            reasoning += (c.delta.model_extra or {}).get("reasoning_content") or ""
            content += c.delta.content or ""
            finish = c.finish_reason or finish
    message = whole.choices[0].message
    assert reasoning == message.model_extra["reasoning_content"] and content == message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_raw_completions_plain_and_forced(client):
    prompt = "<|im_start|>user\nWhat is 57 + 68?<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\n"
    plain = client.completions.create(model=MODEL, prompt=prompt, max_tokens=7, temperature=0,
                                      extra_body={"return_token_ids": True})
    assert plain.choices[0].finish_reason == "length" and len(plain.choices[0].model_extra["token_ids"]) == 7
    stopped = client.completions.create(model=MODEL, prompt=prompt, max_tokens=100, temperature=0, stop=["\n"])
    assert stopped.choices[0].finish_reason == "stop" and "\n" not in stopped.choices[0].text
    forced = client.completions.create(model=MODEL, prompt=prompt, temperature=0,
                                       extra_body={"max_thinking_tokens": 9, "max_answer_tokens": 5})
    info = forced.choices[0].model_extra["s1"]
    assert info["thinking_tokens"] == 9 and info["cap_hit"]
    assert "<|im_start|>answer\nFinal Answer:" in forced.choices[0].text


def test_auth_is_required_except_for_health(base_url):
    anonymous = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="API key"):
        anonymous.models.list()
    assert httpx.post(f"{base_url}/v1/chat/completions", json={"messages": QUESTION}).status_code == 401
    assert httpx.get(f"{base_url}/health").status_code == 200


BAD = [
    ({"messages": QUESTION, "max_thinking_tokens": -1}, 400, "max_thinking_tokens"),
    ({"messages": QUESTION, "num_ignore": "two"}, 400, "num_ignore"),
    ({"messages": QUESTION, "min_thinking_mode": "sometimes"}, 400, "min_thinking_mode"),
    ({"messages": QUESTION, "reasoning_effort": "extreme"}, 400, "reasoning_effort"),
    ({"messages": QUESTION, "max_thinking_tokens": 8, "reasoning_effort": "low"}, 400, "not both"),
    ({"messages": QUESTION, "min_thinking_tokens": 50, "max_thinking_tokens": 10}, 400, "min_thinking_tokens"),
    ({"messages": QUESTION, "max_thinking_tokens": 100, "max_tokens": 50}, 400, "max_tokens"),
    ({"messages": QUESTION, "max_tokens": 100000}, 400, "max_tokens must be <= 512"),
    ({"messages": QUESTION, "n": 1000}, 400, "n must be <="),
    ({"messages": QUESTION, "temperature": -1}, 400, "temperature"),
    ({"messages": QUESTION, "tools": []}, 400, "tools: unknown or unsupported field"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}]}, 400,
     "vision-language"),
    ({"model": "gpt-4o", "messages": QUESTION}, 404, "not served here"),
    ({"prompt": [5000]}, 400, "outside the vocabulary"),
]


@pytest.mark.parametrize(("body", "status", "needle"), BAD, ids=[b[2] for b in BAD])
def test_bad_requests_get_a_clear_4xx(base_url, body, status, needle):
    path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
    r = httpx.post(f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_malformed_and_oversized_bodies(base_url):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    r = httpx.post(f"{base_url}/v1/chat/completions", content=b'{"messages": [', headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{base_url}/v1/chat/completions", content=b"x" * (2 << 20), headers=headers)
    assert r.status_code == 413
    r = httpx.post(f"{base_url}/v1/chat/completions", content=json.dumps([1, 2]), headers=headers)
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]


def test_concurrent_requests_answer_as_sequential_ones(base_url, client):
    questions = [[{"role": "user", "content": f"What is {a} + {b}?"}] for a, b in [(57, 68), (19, 93), (45, 77)]]
    budgets = {"max_thinking_tokens": 24, "max_answer_tokens": 6}
    sequential = [client.chat.completions.create(model=MODEL, messages=q, temperature=0, extra_body=budgets)
                  .choices[0].message.content for q in questions]

    async def together() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=120)
        rs = await asyncio.gather(*(aclient.chat.completions.create(model=MODEL, messages=q, temperature=0,
                                                                    extra_body=budgets) for q in questions))
        return [r.choices[0].message.content for r in rs]

    assert asyncio.run(together()) == sequential


class CountingBackend:
    """Records the size of every generate call; answers instantly."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, requests, policy=None):
        from s1.records import Generation

        self.calls.append(len(requests))
        time.sleep(0.05)  # an engine step: requests arriving meanwhile wait for the next batch
        return [Generation(prompt_id=r.id, sample_index=r.sample_index) for r in requests]


def test_requests_arriving_together_share_engine_calls():
    backend = CountingBackend()

    async def run() -> list[list[str]]:
        engine = BatchingEngine(backend, window_s=0.02, max_batch=64)
        await engine.start()
        try:
            results = await asyncio.gather(*(engine.generate([Request(f"r{i}", prompt="x")]) for i in range(12)))
        finally:
            await engine.stop()
        return [[g.prompt_id for g in gens] for gens in results]

    results = asyncio.run(run())
    assert results == [[f"r{i}"] for i in range(12)]  # every request gets its own results back
    assert sum(backend.calls) == 12 and len(backend.calls) <= 2
