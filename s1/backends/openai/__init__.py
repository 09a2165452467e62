"""Budget forcing over any OpenAI-compatible server (see `backend`)."""

from s1.backends.openai.backend import BackendError, OpenAIBackend

__all__ = ["BackendError", "OpenAIBackend"]
