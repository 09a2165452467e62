"""The forcing runtime: budget forcing as plain data in and out, shared by every backend.

`policy` (what a user asks), `formats` (the strings of a reasoning format), `binding` (those strings as
one tokenizer's ids), `machine` (the per-sequence state machine), `request`, `sequence` (start a
request, build its record), `rounds` (the round loop), `sweep` (think once, branch every setting),
`text` (the tokenizer operations the runtime asks for). Nothing here imports torch, transformers,
vLLM or an HTTP library, so the engines and the HTTP client run the same code.
"""

from s1.forcing.formats import PRESETS, ReasoningFormat, custom_format, get_format
from s1.forcing.machine import ForcingMachine, ForcingTokens, Phase
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Branch, LiveTokens, Request
from s1.records import FinishReason, Kind

__all__ = [
    "AUTO",
    "PRESETS",
    "Branch",
    "BudgetPolicy",
    "FinishReason",
    "ForcingMachine",
    "ForcingTokens",
    "Kind",
    "LiveTokens",
    "Phase",
    "PolicyError",
    "ReasoningFormat",
    "Request",
    "SamplingSettings",
    "custom_format",
    "get_format",
]
