"""The vLLM backend: budget forcing inside vLLM's engine (see `backend`; needs vLLM installed)."""

from s1.backends.vllm.backend import VLLMBackend

__all__ = ["VLLMBackend"]
