"""Verifiers: scores for candidate solutions, for best-of-N selection and tree search.

A verifier scores `Candidate`s (question, thinking split into steps, answer) and returns, per
candidate, step scores (a process reward model: one per step), or a single score for the whole
solution (an outcome reward model, an LLM judge). Scores are in [0, 1], higher is better.
`aggregate` folds step scores into one number the s1 repo's ways: last, min, prod or mean.

Kinds (`load_verifier` specs):

- `confidence`: the policy model's own token probabilities per step (no reward model needed);
- `orm:PATH`: any Hugging Face sequence-classification model (`reward_models`);
- `prm:PATH`: a token-classification model, or a causal LM that scores a step tag with good/bad
  tokens (Math-Shepherd style);
- `judge:BASE_URL`: an LLM judge over an OpenAI-compatible endpoint (`judge`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from s1.methods.verifiers.base import AGGREGATIONS, VERIFIER_KINDS, Candidate, Scored, Verifier, aggregate

if TYPE_CHECKING:
    from s1.backends.base import Backend

__all__ = ["AGGREGATIONS", "VERIFIER_KINDS", "Candidate", "Scored", "Verifier", "aggregate", "load_verifier",
           "parse_verifier_spec"]


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


def load_verifier(spec: str, backend: Backend | None = None, *, step_tag: str = " ки", device: str = "auto",
                  judge_model: str = "gpt-4o-mini", separator: str = "\n") -> Verifier:
    """Build a verifier from a spec (see the module doc). `backend` is the policy backend, which the
    `confidence` verifier reads its model from."""
    kind, arg = parse_verifier_spec(spec)
    if kind == "confidence":
        from s1.backends.hf.backend import HFBackend
        from s1.methods.verifiers.confidence import ConfidenceVerifier

        if not isinstance(backend, HFBackend):
            raise ValueError("verifier 'confidence' needs a transformers backend (its model scores the steps)")

        return ConfidenceVerifier(backend.model, backend.tokenizer, backend.format)
    if kind == "judge":
        from s1.methods.verifiers.judge import JudgeVerifier

        return JudgeVerifier(str(arg), model=judge_model)
    from s1.methods.verifiers.reward_models import ORMVerifier, PRMVerifier

    if kind == "orm":
        return ORMVerifier.from_pretrained(str(arg), device=device)
    return PRMVerifier.from_pretrained(str(arg), step_tag=step_tag, device=device)
