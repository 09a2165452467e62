"""Shared fixtures: tiny local models (mechanics) and SmolLM2-135M-Instruct (a real tokenizer,
chat template and behaviour), loaded once per session."""

from __future__ import annotations

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


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The suite's models are tiny: their matrices gain nothing from a second thread, and on a busy
    2-core machine two threads run several times slower (measured 3-80x). Subprocesses the tests
    start (`s1 serve`, the CLI) inherit OMP_NUM_THREADS."""
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


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
    from s1.backends.loading import load_hf, quiet_hf_logging
    from s1.models import resolve_model

    try:
        path = resolve_model("smollm2")
    except ValueError as exc:
        pytest.fail(str(exc))
    quiet_hf_logging()
    model, tok = load_hf(path, device="cpu")
    return model, tok
