"""s1: test-time scaling for reasoning models (budget forcing, scaling curves, s1K curation, SFT)."""

from s1.forcing.formats import PRESETS, ReasoningFormat, custom_format, get_format
from s1.forcing.machine import ForcingMachine
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError, SamplingSettings
from s1.records import Generation

__all__ = [
    "AUTO",
    "PRESETS",
    "BudgetPolicy",
    "ForcingMachine",
    "Generation",
    "PolicyError",
    "ReasoningFormat",
    "SamplingSettings",
    "custom_format",
    "get_format",
    "load_backend",
    "Request",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Backends pull in torch/transformers; import them only when asked for.
    if name == "load_backend":
        from s1.backends import load_backend

        return load_backend
    if name == "Request":
        from s1.forcing.request import Request

        return Request
    raise AttributeError(name)
