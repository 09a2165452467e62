"""Verifiers: scores for candidate solutions, for best-of-N selection and tree search.

A verifier scores `Candidate`s (question, thinking split into steps, answer) and returns, per
candidate, step scores (a process reward model: one per step), or a single score for the whole
solution (an outcome reward model, an LLM judge). Scores are in [0, 1], higher is better.
`aggregate` folds step scores into one number the s1 repo's ways: last, min, prod or mean.

Kinds (`load_verifier` specs):

- `confidence`: the policy model's own token probabilities per step (no reward model needed);
- `orm:PATH`: any Hugging Face sequence-classification model (`s1.methods.reward_models`);
- `prm:PATH`: a token-classification model, or a causal LM that scores a step tag with good/bad
  tokens (Math-Shepherd style);
- `judge:BASE_URL`: an LLM judge over an OpenAI-compatible endpoint (`s1.methods.judge_verifier`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from s1.methods.steps import split_steps

AGGREGATIONS: tuple[str, ...] = ("last", "min", "prod", "mean")
VERIFIER_KINDS: tuple[str, ...] = ("confidence", "orm", "prm", "judge")


@dataclass(frozen=True)
class Candidate:
    """One solution to score: the question, the thinking (split at `separator` into steps) and the
    answer text after the thinking ("" for a partial solution in tree search)."""

    question: str
    thinking: str
    answer: str = ""
    separator: str = "\n"

    @property
    def steps(self) -> list[str]:
        return split_steps(self.thinking, self.separator)

    def solution(self) -> str:
        """The solution as one text: steps on their own lines, then the answer."""
        body = "\n".join(self.steps)
        return f"{body}\n{self.answer.strip()}" if self.answer.strip() else body


@dataclass(frozen=True)
class Scored:
    """A verifier's scores for one candidate (per step, or one), or the error that prevented them."""

    scores: tuple[float, ...]
    error: str | None = None


class Verifier(Protocol):
    """Anything that scores candidates; `name` labels its scores in records and reports."""

    name: str

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]: ...


def aggregate(scores: Sequence[float], how: str) -> float | None:
    """One score from step scores: `last`, `min`, `prod` or `mean`; None when there are none."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    if not scores:
        return None
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "prod":
        return float(math.prod(scores))
    return float(sum(scores) / len(scores))


def parse_verifier_spec(spec: str) -> tuple[str, str | None]:
    """`confidence`, `orm:PATH`, `prm:PATH` or `judge:BASE_URL` -> (kind, argument)."""
    kind, sep, arg = spec.partition(":")
    kind = kind.strip()
    if kind not in VERIFIER_KINDS:
        raise ValueError(f"verifier must be one of confidence, orm:PATH, prm:PATH, judge:BASE_URL; got {spec!r}")
    if kind == "confidence":
        if sep:
            raise ValueError(f"verifier 'confidence' takes no argument, got {spec!r}")
        return kind, None
    if not arg.strip():
        raise ValueError(f"verifier {kind!r} needs an argument ({kind}:{'BASE_URL' if kind == 'judge' else 'PATH'})")
    return kind, arg.strip()


def load_verifier(spec: str, backend: Any = None, *, step_tag: str = " ки", device: str = "auto",
                  judge_model: str = "gpt-4o-mini", separator: str = "\n") -> Verifier:
    """Build a verifier from a spec (see the module doc). `backend` is the policy backend, which the
    `confidence` verifier reads its model from."""
    kind, arg = parse_verifier_spec(spec)
    if kind == "confidence":
        if backend is None or not hasattr(backend, "model"):
            raise ValueError("verifier 'confidence' needs a transformers backend (its model scores the steps)")
        from s1.methods.confidence import ConfidenceVerifier

        return ConfidenceVerifier(backend.model, backend.tokenizer, backend.format)
    if kind == "judge":
        from s1.methods.judge_verifier import JudgeVerifier

        return JudgeVerifier(str(arg), model=judge_model)
    from s1.methods.reward_models import ORMVerifier, PRMVerifier

    if kind == "orm":
        return ORMVerifier.from_pretrained(str(arg), device=device)
    return PRMVerifier.from_pretrained(str(arg), step_tag=step_tag, device=device)
