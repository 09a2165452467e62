"""The transformers backend: budget forcing inside `model.generate` (see `backend`)."""

from s1.backends.hf.backend import HFBackend

__all__ = ["HFBackend"]
