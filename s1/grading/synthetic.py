"""The `synthetic` grader: the families' exact verifiers on the extracted answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from s1.grading.extract import extract_answer
from s1.grading.verdict import Verdict, short


def grade_synthetic(answer_text: str | None, gold: str, metadata: Mapping[str, Any], timeout: float = 0.0) -> Verdict:
    """Correct when the extracted answer equals the gold one in the family's canonical form
    (`metadata["family"]`); an empty or unparseable answer is wrong."""
    from s1.synthetic.verify import check_answer

    family = metadata.get("family")
    if not family:
        raise ValueError("grader 'synthetic' needs metadata 'family' (from the synthetic task item)")
    extracted = extract_answer(answer_text, bare=True)
    if extracted is None:
        return Verdict(False, None, "no answer found")
    if check_answer(family, extracted, gold):
        return Verdict(True, extracted, f"equals gold {short(gold)}")
    return Verdict(False, extracted, f"extracted {short(extracted)}, gold {short(gold)}")
