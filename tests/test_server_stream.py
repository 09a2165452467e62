"""`s1 serve` streams tokens while the batch decodes, and the deltas add up to the non-streamed response.

The real app in a uvicorn thread on a loopback port, over the embedded tiny model in this process, so a
forward hook can hold the engine mid-generation: the first reasoning delta must reach the client while
the model is still paused, long before the generation could have finished.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from serving import serving

from s1.backends import load_backend
from s1.forcing.formats import PRESETS
from s1.records import Kind
from s1.serve.stream import ChoiceText, IncrementalText

QUESTION = [{"role": "user", "content": "What is 57 + 68?"}]


class PauseAfter:
    """A forward hook that, once armed, holds the engine thread at its `step`-th forward call until the
    test releases it (or `timeout` passes, which the test then sees as `timed_out`)."""

    def __init__(self, step: int, timeout: float = 60.0):
        self.step, self.timeout = step, timeout
        self.calls, self.armed, self.timed_out, self.fail = 0, False, False, False
        self.paused = threading.Event()
        self.release = threading.Event()

    def arm(self, step: int = 8, fail: bool = False, released: bool = False) -> None:
        self.step, self.fail, self.calls, self.timed_out = step, fail, 0, False
        self.paused.clear()
        if released:
            self.release.set()
        else:
            self.release.clear()
        self.armed = True

    def disarm(self) -> None:
        self.armed = False
        self.release.set()

    def __call__(self, module, args, output):
        if not self.armed:
            return None
        self.calls += 1
        if self.calls == self.step:
            self.paused.set()
            self.timed_out = not self.release.wait(self.timeout)
            if self.fail:
                raise RuntimeError("device lost")
        return None


@pytest.fixture(scope="module")
def backend():
    return load_backend(device="cpu")


@pytest.fixture(scope="module")
def hooked(backend):
    pause = PauseAfter(step=8)
    handle = backend.model.register_forward_hook(pause)
    with serving(backend) as url:
        yield url, pause
    handle.remove()


def events(response: httpx.Response) -> list[dict | str]:
    out: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def collect(url: str, path: str, body: dict) -> tuple[dict[int, str], dict[int, str], list[dict | str]]:
    """Stream a request; per choice index, the reasoning and the content (or text) its deltas add up to."""
    with httpx.stream("POST", f"{url}{path}", json={**body, "stream": True}, timeout=120) as r:
        assert r.status_code == 200
        got = events(r)
    reasoning: dict[int, str] = {}
    content: dict[int, str] = {}
    for e in got:
        for c in e.get("choices", []) if isinstance(e, dict) else []:
            delta = c.get("delta", {})
            i = c["index"]
            reasoning[i] = reasoning.get(i, "") + (delta.get("reasoning_content") or "")
            content[i] = content.get(i, "") + (delta.get("content") or c.get("text") or "")
    return reasoning, content, got


BODIES = [
    ("/chat/completions", {"messages": QUESTION, "max_thinking_tokens": 20, "max_answer_tokens": 6}),
    ("/chat/completions", {"messages": QUESTION, "num_ignore": 1, "max_answer_tokens": 8}),
    ("/chat/completions", {"messages": QUESTION, "min_thinking_tokens": 40, "min_thinking_mode": "wait"}),
    ("/completions", {"prompt": "<|im_start|>user\nWhat is 19 + 93?<|im_end|>\n<|im_start|>assistant\n",
                      "max_thinking_tokens": 12, "max_answer_tokens": 6}),
]


@pytest.mark.parametrize(("path", "body"), BODIES, ids=["cap", "wait", "min-wait", "completions"])
def test_stream_deltas_add_up_to_the_whole_response(hooked, path, body):
    url, _ = hooked
    body = {**body, "temperature": 0.8, "seed": 3, "n": 2}  # two different samples, each on its own stream
    whole = httpx.post(f"{url}{path}", json=body, timeout=120).json()
    reasoning, content, got = collect(url, path, body)
    finish = {c["index"]: c for e in got if isinstance(e, dict) for c in e.get("choices", []) if c.get("finish_reason")}
    assert sorted(finish) == [0, 1] and got[-1] == "[DONE]"
    for choice in whole["choices"]:
        i = choice["index"]
        if "message" in choice:
            assert reasoning[i] == choice["message"]["reasoning_content"] and reasoning[i]
            assert content[i] == choice["message"]["content"]
        else:
            assert content[i] == choice["text"]
        assert finish[i]["finish_reason"] == choice["finish_reason"] and finish[i]["s1"] == choice["s1"]


def test_reasoning_arrives_while_the_engine_is_still_decoding(hooked):
    url, pause = hooked
    pause.arm(step=8)
    body = {"messages": QUESTION, "max_thinking_tokens": 24, "max_answer_tokens": 6, "temperature": 0,
            "stream": True}
    first_reasoning, calls_then = None, None
    try:
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                delta = json.loads(line[len("data: "):])["choices"][0].get("delta", {})
                if first_reasoning is None and delta.get("reasoning_content"):
                    first_reasoning, calls_then = delta["reasoning_content"], pause.calls
                    pause.release.set()  # only now may the engine pass its 8th forward call
    finally:
        pause.disarm()
    # The engine could not pass step 8 before the client had reasoning text (else it would have waited
    # out the timeout); the whole generation took more steps than that.
    assert first_reasoning and calls_then <= pause.step and not pause.timed_out
    assert pause.calls > pause.step + 16


def test_a_failure_after_the_first_tokens_ends_the_stream_with_an_error_event(hooked):
    url, pause = hooked
    pause.arm(step=8, fail=True)
    got: list[dict | str] = []
    try:
        body = {"messages": QUESTION, "max_thinking_tokens": 24, "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as r:
            assert r.status_code == 200  # the stream began: tokens were there before the failure
            for line in r.iter_lines():
                if line.startswith("data: "):
                    data = line[len("data: "):]
                    got.append(data if data == "[DONE]" else json.loads(data))
                    pause.release.set()  # let the engine go on, into the failure
    finally:
        pause.disarm()
    errors = [e for e in got if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and "device lost" in errors[0]["error"]["message"]
    assert got[-1] == "[DONE]"
    assert not any(c.get("finish_reason") for e in got if isinstance(e, dict) for c in e.get("choices", []))


def test_a_failure_before_any_token_is_an_error_status(hooked):
    url, pause = hooked
    pause.arm(step=1, fail=True, released=True)
    try:
        r = httpx.post(f"{url}/chat/completions", json={"messages": QUESTION, "stream": True, "temperature": 0},
                       timeout=120)
    finally:
        pause.disarm()
    assert r.status_code == 500 and "device lost" in r.json()["error"]["message"]


@pytest.mark.parametrize("fmt", ["s1", "think", "s1m"])
def test_partial_text_shows_only_what_cannot_change(fmt):
    preset = PRESETS[fmt]
    marker = preset.close_marker
    full = f"  Let me add.\nWait, check it. {marker}\n Final Answer: 125 "
    final = preset.split(full)
    choice = ChoiceText(preset, chat=True)
    sent_reasoning = sent_content = ""
    for end in range(len(full) + 1):
        text = full[:end] + ("\ufffd" if end % 3 == 0 else "")  # a split multi-byte character now and then
        reasoning, content = choice.visible(text)
        assert final[0].startswith(reasoning) and final[1].startswith(content), (end, reasoning, content)
        assert marker[:2] not in reasoning
        d_reasoning, d_content = choice.advance(reasoning, content)
        sent_reasoning += d_reasoning
        sent_content += d_content
    d_reasoning, d_content = choice.advance(final[0], final[1])
    assert sent_reasoning + d_reasoning == final[0] and sent_content + d_content == final[1]
    assert len(sent_reasoning) > 0.8 * len(final[0])  # most of it was sent before the end


def metaspace_tokenizer(corpus: str):
    """A SentencePiece-style tokenizer (Metaspace: a word's leading space is part of its token and the
    decoder drops it at the start of the text), trained on `corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator([corpus] * 4, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<|im_end|>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>")


def test_incremental_decoding_equals_decoding_the_whole(smollm2, backend):
    """Decoding only the new tokens at each poll gives, at every point, a prefix of the whole decode that
    ends on a whole character, and finally the whole decode: byte-level BPE with multi-byte characters
    (SmolLM2), SentencePiece-style spaces, and the shipped tiny model's tokenizer."""
    _, smol = smollm2
    text = "Sum: 3 + 4 = 7.\nCafé ∑ naïve — 😀 done <|im_end|> x"
    for tok in (smol, metaspace_tokenizer(text), backend.tokenizer):
        ids = tok.encode(text, add_special_tokens=False)
        whole = tok.decode(ids, skip_special_tokens=False)
        inc = IncrementalText(tok)
        for n in range(1, len(ids) + 1):
            part = inc.update(ids[:n], [Kind.THINK] * n)
            assert whole.startswith(part) and not part.endswith("\ufffd"), (type(tok).__name__, n, part)
        assert inc.text == whole and len(whole) > 20
        assert inc.update([*ids, 0], [Kind.THINK] * len(ids) + [Kind.STOP]) == whole  # a stop token is not text
