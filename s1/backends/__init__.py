"""Engines that run budget forcing. `load_backend` picks one by name."""

from __future__ import annotations

from typing import Any

from s1.backends.base import Backend, Request

BACKENDS = ("hf",)

__all__ = ["BACKENDS", "Backend", "Request", "load_backend"]


def load_backend(model: str | None = None, backend: str = "hf", **kwargs: Any) -> Backend:
    """Load a model into a backend. `model=None` uses the embedded tiny reasoning model."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if model is None:
        from s1.models import default_model_path

        model = default_model_path()
    from s1.backends.hf import HFBackend

    return HFBackend.from_pretrained(model, **kwargs)
