"""The vLLM backend's image plumbing without vLLM: a stand-in engine records what `VLLMBackend` submits.
Every engine call of an image request carries its images as `multi_modal_data`, with the prompt's one
placeholder per image for vLLM to expand (the real engine runs in scripts/test_vllm.sh environments)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_multimodal import TEMPLATE, build_tokenizer, image_processor, png
from test_multimodal import ImageProcessor as Processor

from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Request


@dataclass
class _Params:  # vllm.SamplingParams, as far as the backend uses it
    kwargs: dict[str, Any]


class _Engine:
    """Answers every call with EOS: thinking ends at once, the answer is empty."""

    def __init__(self, eos: int):
        self.eos, self.calls = eos, []
        config = types.SimpleNamespace(tokenizer="unused", trust_remote_code=False, max_model_len=4096,
                                       try_get_generation_config=lambda: {"eos_token_id": eos})
        self.llm_engine = types.SimpleNamespace(model_config=config)

    def generate(self, prompts, params, use_tqdm=False):
        self.calls.append(prompts)
        out = types.SimpleNamespace(token_ids=[self.eos])
        return [types.SimpleNamespace(outputs=[out], num_cached_tokens=0) for _ in prompts]

    def collective_rpc(self, name, args=()):
        return [{}]


@pytest.fixture
def fake_vllm(monkeypatch):
    """Stand-ins for the few vLLM names the backend imports; the backend modules are dropped afterwards so
    nothing later sees them bound to the stand-ins."""
    names = ["vllm", "vllm.v1", "vllm.v1.sample", "vllm.v1.sample.logits_processor"]
    modules = {name: types.ModuleType(name) for name in names}
    modules["vllm"].SamplingParams = lambda **kw: _Params(kw)
    lp = modules["vllm.v1.sample.logits_processor"]
    lp.LogitsProcessor, lp.BatchUpdate, lp.MoveDirectionality = object, object, types.SimpleNamespace()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    yield
    for name in ("s1.backends.vllm", "s1.backends.vllm.processor"):
        sys.modules.pop(name, None)


def test_images_go_to_every_engine_call_as_multi_modal_data(fake_vllm, tmp_path: Path):
    from s1.backends.vllm.backend import VLLMBackend

    tok = build_tokenizer(think_tokens=False)
    engine = _Engine(tok.eos_token_id)
    backend = VLLMBackend(engine, tokenizer=tok, format="s1m")
    backend._processor = Processor(image_processor(), tok, chat_template=TEMPLATE)
    image = png(tmp_path / "a.png", (9, 99, 199))
    gens = backend.generate([Request("q", messages="Color?", images=(image,)), Request("t", messages="Color?")],
                            BudgetPolicy(max_thinking_tokens=8, max_answer_tokens=3))
    assert all(g.error is None for g in gens)
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert len(engine.calls) >= 2  # a thinking round, then the answer
    for call in engine.calls:
        with_image, text_only = call
        (sent,) = with_image["multi_modal_data"]["image"]
        assert sent.size == (56, 56) and sent.getpixel((1, 0)) == (9, 99, 199)
        assert with_image["prompt_token_ids"].count(pad) == 1  # vLLM expands the placeholder itself
        assert "multi_modal_data" not in text_only
