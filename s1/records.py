"""The `Generation` record: what one (prompt, sample, setting) produced, JSON-serialisable.

Every backend returns these and the run store writes them, so the fields are the contract between
generation and evaluation. A failed sample is a record too (with `error` set), never a gap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Segment:
    """A run of consecutive tokens of one kind (see `s1.budget.Kind`), decoded."""

    kind: str
    text: str
    tokens: int


@dataclass
class Generation:
    prompt_id: str
    sample_index: int = 0
    setting: str = ""
    prompt: str = ""
    thinking: str = ""
    answer: str = ""
    text: str = ""
    thinking_tokens: int = 0
    thinking_forced_tokens: int = 0
    answer_tokens: int = 0
    answer_forced_tokens: int = 0
    ignores_applied: int = 0
    cap_hit: bool = False
    thinking_closed: bool = False
    finish_reason: str = "stop"
    error: str | None = None
    wall_time_s: float = 0.0
    prompt_tokens: int = 0
    thinking_budget: int | None = None
    token_ids: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    backend: str = ""
    # Method-level facts a record carries beyond one generation (s1.methods): verifier step scores,
    # the canonical answer a vote counts, rejection attempts, a search tree's token total. JSON values.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def forced_tokens(self) -> int:
        return self.thinking_forced_tokens + self.answer_forced_tokens

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Generation fields: {', '.join(sorted(unknown))}")
        data = dict(data)
        data["segments"] = [Segment(**s) for s in data.get("segments", [])]
        return cls(**data)

    @classmethod
    def failed(cls, prompt_id: str, error: str, **kw: Any) -> Generation:
        return cls(prompt_id=prompt_id, error=error, finish_reason="error", **kw)
