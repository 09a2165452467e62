"""The record every synthetic task item is stored as (JSON-friendly, immutable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SyntheticItem:
    """One task item laid out like an s1K example: question, thinking trace, short response.

    ``id`` is derived from (family, split, seed, index) so it stays stable across runs.
    """

    id: str
    family: str
    difficulty: int
    question: str
    answer: str
    thinking: str
    response: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, ready for ``json.dumps``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticItem:
        """Inverse of ``to_dict``; rejects missing fields or wrong types instead of guessing."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"SyntheticItem is missing field(s) {missing}; required: {names}")
        for name in names:
            expected = int if name == "difficulty" else str
            value = data[name]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"SyntheticItem field {name!r} must be {expected.__name__}, got {value!r}")
        return cls(**{n: data[n] for n in names})
