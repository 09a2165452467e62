"""The `Generation` record: what one (prompt, sample, setting) produced, JSON-serialisable.

Every backend returns these and the run store writes them, so the fields are the contract between
generation and evaluation. A failed sample is a record too (with `error` set), never a gap. Records
are immutable: a change (a sweep's label, a method's `meta`) makes a new record with
`dataclasses.replace`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple


class Kind(enum.StrEnum):
    """What each emitted token is, so records can mark the forced parts (a segment's kind)."""

    THINK = "think"  # sampled thinking
    IGNORE = "ignore"  # forced ignore string
    CLOSE = "close"  # the closer (first token may be sampled)
    CAP = "cap"  # forced cap string
    ANSWER = "answer"  # sampled answer
    STOP = "stop"  # the token that ended the generation (sampled stop or forced end)


class FinishReason(enum.StrEnum):
    STOP = "stop"  # the answer ended by itself (a stop token or string)
    LENGTH = "length"  # the answer budget, or the engine's limit, ran out
    ERROR = "error"  # the generation failed; `error` says why


class Setting(NamedTuple):
    """The knobs of a budget policy that sweeps vary and reports group by, as fields."""

    max_thinking_tokens: int | str | None  # an int, "auto", or None (not a budget-forcing record)
    num_ignore: int = 0
    min_thinking_tokens: int = 0
    min_thinking_mode: str = "suppress"

    @property
    def label(self) -> str:
        """A short, stable name: `think<=512`, `think<=auto,min64:wait,ignore2`."""
        parts = [f"think<={self.max_thinking_tokens}"]
        if self.min_thinking_tokens:
            parts.append(f"min{self.min_thinking_tokens}:{self.min_thinking_mode}")
        if self.num_ignore:
            parts.append(f"ignore{self.num_ignore}")
        return ",".join(parts)

    @classmethod
    def from_label(cls, label: str) -> Setting:
        """The fields of a label written by `label` (records written before they carried the fields);
        a label of another shape (a method's, e.g. `rebase:W=4`) has no budget."""
        budget: int | str | None = None
        ignores = minimum = 0
        mode = "suppress"
        for part in label.split(","):
            if part.startswith("think<="):
                value = part[len("think<="):]
                budget = int(value) if value.isdigit() else value
            elif part.startswith("ignore") and part[len("ignore"):].isdigit():
                ignores = int(part[len("ignore"):])
            elif part.startswith("min") and ":" in part:
                count, _, mode = part[len("min"):].partition(":")
                minimum = int(count) if count.isdigit() else 0
        return cls(budget, ignores, minimum, mode)

    def fields(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class Segment:
    """A run of consecutive tokens of one kind, decoded."""

    kind: Kind
    text: str
    tokens: int


@dataclass(frozen=True)
class Generation:
    """One generation's result.

    Identity: `prompt_id`, `sample_index`, `setting` (the label a run store keys it by) and the setting's
    fields (`max_thinking_tokens` as asked, `num_ignore`, `min_thinking_tokens`, `min_thinking_mode`).
    Text: `prompt`, `thinking` and `answer` (the output split at the format's closer; `thinking_closed`
    is False when thinking never ended), `text` (the whole output), `segments` (runs of one `Kind`).
    Counts (exact token ids): `thinking_tokens` sampled thinking (what the budget counts),
    `thinking_forced_tokens` forced ignore strings, `answer_tokens` sampled answer,
    `answer_forced_tokens` the forced closer or cap; `ignores_applied`; `cap_hit` when the budget ended
    the thinking; `thinking_budget` the budget resolved for this prompt; `prompt_tokens`; `token_ids`.
    Outcome: `finish_reason`, `error` (a failed record has one), `wall_time_s`, `backend`.
    `meta`: method-level facts beyond one generation (a vote's canonical answer, verifier step scores,
    a tree's cost, MathVista categories, image tokens). JSON values.
    """

    prompt_id: str
    sample_index: int = 0
    setting: str = ""
    max_thinking_tokens: int | str | None = None
    num_ignore: int = 0
    min_thinking_tokens: int = 0
    min_thinking_mode: str = "suppress"
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
    finish_reason: FinishReason = FinishReason.STOP
    error: str | None = None
    wall_time_s: float = 0.0
    prompt_tokens: int = 0
    thinking_budget: int | None = None
    token_ids: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    backend: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def forced_tokens(self) -> int:
        return self.thinking_forced_tokens + self.answer_forced_tokens

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def setting_fields(self) -> Setting:
        return Setting(self.max_thinking_tokens, self.num_ignore, self.min_thinking_tokens, self.min_thinking_mode)

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
        if "max_thinking_tokens" not in data:  # written before records carried the setting's fields
            data.update(Setting.from_label(data.get("setting", "")).fields())
        data["segments"] = [Segment(Kind(s["kind"]), s["text"], s["tokens"]) for s in data.get("segments", [])]
        data["finish_reason"] = FinishReason(data.get("finish_reason", FinishReason.STOP))
        return cls(**data)

    @classmethod
    def failed(cls, prompt_id: str, error: str, **kw: Any) -> Generation:
        return cls(prompt_id=prompt_id, error=error, finish_reason=FinishReason.ERROR, **kw)


GRADING_FIELDS: tuple[str, ...] = ("correct", "extracted", "reason", "gold")
assert not {f.name for f in fields(Generation)} & {"task", *GRADING_FIELDS}, "a grading field collides"


class RecordKey(NamedTuple):
    task: str
    prompt_id: str
    sample_index: int
    setting: str


@dataclass(frozen=True)
class SampleRecord:
    """One stored line of a run: a `Generation` and its grade for one task (`s1.grading.grade_records`)."""

    task: str
    generation: Generation
    correct: bool | None = None  # None: not graded (e.g. the generation failed)
    extracted: str | None = None  # the answer the grader extracted
    reason: str | None = None  # the grader's note (why wrong, which rule matched, ...)
    gold: Any = None  # the reference answer, JSON-serialisable

    @property
    def key(self) -> RecordKey:
        g = self.generation
        return RecordKey(self.task, g.prompt_id, g.sample_index, g.setting)

    def to_dict(self) -> dict[str, Any]:
        return {**self.generation.to_dict(), "task": self.task, "correct": self.correct,
                "extracted": self.extracted, "reason": self.reason, "gold": self.gold}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRecord:
        data = dict(data)
        if "task" not in data:
            raise ValueError("a sample record needs a 'task' field")
        extra = {name: data.pop(name, None) for name in ("task", *GRADING_FIELDS)}
        return cls(generation=Generation.from_dict(data), **extra)


