"""An LLM judge as a verifier: a model behind an OpenAI-compatible endpoint rates each solution.

The HTTP side (retries, backoff, `Retry-After`, error reporting) is `s1.grading.judge.LLMJudge`'s; this
module only asks for a 0-10 rating and reads it back as a score in [0, 1]. A failed call or an
unreadable reply is recorded as the candidate's error (no score), never taken for a rating.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from s1.grading.judge import JudgeError, LLMJudge
from s1.methods.verifiers.base import Candidate, Scored

RATING_TEMPLATE = """\
Below is a problem and a proposed solution. Judge whether the solution's final answer is correct.
Rate your confidence that it is correct from 0 (certainly wrong) to 10 (certainly correct).
Reply with the number only.

Problem:
%(question)s

Solution:
%(solution)s
"""
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class JudgeVerifier:
    """Rates solutions 0-10 through an OpenAI-compatible chat endpoint; score = rating / 10."""

    name = "judge"

    def __init__(self, base_url: str, model: str = "gpt-4o-mini", *, api_key: str | None = None,
                 template: str = RATING_TEMPLATE, client: Any = None, **judge_kwargs: Any):
        for key in ("question", "solution"):
            if f"%({key})s" not in template:
                raise ValueError(f"template must contain the placeholder %({key})s")
        self.template = template
        self.judge = LLMJudge(base_url, api_key, model, max_tokens=8, client=client, **judge_kwargs)

    def score(self, candidates: Sequence[Candidate]) -> list[Scored]:
        out = []
        for c in candidates:
            try:
                reply = self.judge.complete(self.template % {"question": c.question, "solution": c.solution()})
            except JudgeError as exc:
                out.append(Scored((), f"judge API error: {exc}"))
                continue
            match = _NUMBER.search(reply)
            value = float(match.group()) if match else None
            if value is None or not 0 <= value <= 10:
                out.append(Scored((), f"judge reply is not a rating 0-10: {reply.strip()[:60]!r}"))
            else:
                out.append(Scored((value / 10,)))
        return out

    def close(self) -> None:
        self.judge.close()
