"""Optional LLM judge over any OpenAI-compatible chat-completions endpoint.

Two protocols:

- ``s1`` (default) follows the s1 paper's ``PROCESSOR=gpt-4o-mini`` step in its lm-evaluation-harness
  fork (``lm_eval/tasks/openai_math/utils.py``, ``extract_answer_idx`` with
  ``EXTRACTION_TEMPLATE_IDX``): the answer is cut to the last ``\\boxed{}`` (else the last
  ``Answer:``; else the whole attempt), integer-vs-integer is compared exactly without a call, and
  otherwise the model is shown a list of options whose first entry is the gold answer and asked for
  the 1-based index of the option the attempt is equivalent to, or -1. Index 1 means correct.
  (In s1 the other options are the answers extracted from earlier samples of the same problem; pass
  them as `other_options` to reproduce that.)
- ``equality``: the simple-evals / lm-eval ``EQUALITY_TEMPLATE`` style: "are these two expressions
  equivalent?", answered Yes or No.

The prompt texts here are written for this project after those protocols (same instructions and
calibration examples, own wording); pass `template=` to use another text, with ``%(expression1)s``
(options / gold) and ``%(expression2)s`` (attempt) placeholders.

An API failure (connection error, timeout, HTTP error after retries, an unreadable reply) gives
``Verdict(correct=False, ...)`` whose reason names the error: it is never taken for a judgement.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx

from s1.grading.extract import find_answer
from s1.grading.verdict import Verdict, short

__all__ = ["EQUALITY_TEMPLATE", "INDEX_TEMPLATE", "PROTOCOLS", "JudgeError", "LLMJudge"]

INDEX_TEMPLATE = r"""
Below is a student's attempt at a problem and a list of candidate answers. Work out the student's
final answer. If it is equivalent to one of the candidates (trivial simplifications and formatting
differences allowed), reply with that candidate's index, counting from 1. If it matches none, reply -1.

Examples:

    Options: ['2x+4', '2x', '4x']
    Attempt: The answer is 3+2x.

-1
(not among the candidates)

    Options: ['72,000']
    Attempt: 72000 \text{ cents}.

1
(units and number formatting are ignored)

    Options: ['2/(-3)', '2/3']
    Attempt: -1 * 2/3

1
(trivial simplifications are fine)

    Options: ['x=5']
    Attempt: 5

1

    Options: ['\dfrac{33}{100}']
    Attempt: 0.33

1

    Options: ['75^\circ']
    Attempt: ...some working...so the answer is $\boxed{x in 75}$.

1

    Options: ['(1,-3)', '(1,-1)', '(1,0)', '(1,-2)']
    Attempt: -2, 1

4
(whitespace and bracket formatting are ignored)

    Options: ['-2,1']
    Attempt: 1, -2

1
(several solutions: their order does not matter)

    Options: ['12']
    Attempt: ...$\boxed{12^{\mathrm{th}}}$.

1

    Options: ['2516_8']
    Attempt: 2516

1
(the base may be left out)

    Options: ['11\sqrt2']
    Attempt: 11\sqrt{2}

1

    Options: ['11,\! 111,\! 111,\! 100']
    Attempt: 11111111100

1

    Options: ['\text{Navin}']
    Attempt: ...so it is navin.

1

---

YOUR TASK

Reply with the matching candidate's index (from 1), or -1 if nothing reasonably matches. No explanation.

    Options: %(expression1)s
    Attempt: %(expression2)s
""".strip()

EQUALITY_TEMPLATE = r"""
Decide whether the two expressions below (answers to a math problem) are equivalent. Allow only
trivial simplifications.

Examples:

    Expression 1: $2x+3$
    Expression 2: $3+2x$

Yes

    Expression 1: 3/2
    Expression 2: 1.5

Yes

    Expression 1: $x^2+2x+1$
    Expression 2: $y^2+2y+1$

No

    Expression 1: $x^2+2x+1$
    Expression 2: $(x+1)^2$

Yes

    Expression 1: 3245/5
    Expression 2: 649

No
(equal, but only after a nontrivial simplification)

    Expression 1: 2/(-3)
    Expression 2: -2/3

Yes
(a trivial simplification)

    Expression 1: 72 degrees
    Expression 2: 72

Yes
(units get the benefit of the doubt)

    Expression 1: 64
    Expression 2: 64 square feet

Yes
(units get the benefit of the doubt)

---

YOUR TASK

Reply with only "Yes" or "No", no explanation.

    Expression 1: %(expression1)s
    Expression 2: %(expression2)s
""".strip()

PROTOCOLS = ("s1", "equality")
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class JudgeError(RuntimeError):
    """The endpoint did not give a usable reply (after retries)."""


class LLMJudge:
    """An answer-equivalence judge over an OpenAI-compatible ``/chat/completions`` endpoint.

    `base_url` is the API root (``.../v1``); `api_key` defaults to ``$OPENAI_API_KEY`` (none is sent
    when empty). Requests time out after `timeout` seconds; 429, 5xx and transport errors are retried
    `max_retries` times with exponential backoff from `backoff` seconds (a numeric ``Retry-After`` is
    honoured, capped at `max_backoff`). Thread-safe; close it (or use ``with``) to free connections.
    """

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        *,
        protocol: str = "s1",
        template: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int = 16,
        client: httpx.Client | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.model = model
        self.protocol = protocol
        self.template = template or (INDEX_TEMPLATE if protocol == "s1" else EQUALITY_TEMPLATE)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout)

    # -- HTTP --------------------------------------------------------------------------------------

    def complete(self, prompt: str) -> str:
        """Send one user message; the reply's text. Raises `JudgeError` naming the failure."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        url = f"{self.base_url}/chat/completions"
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            wait_s = min(self.backoff * 2**attempt, self.max_backoff)
            try:
                response = self._client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:  # connection refused, timeouts, protocol errors
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return _reply_text(response)
                last = f"HTTP {response.status_code}: {response.text[:200].strip()}"
                if response.status_code not in _RETRY_STATUS:
                    raise JudgeError(last)
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait_s = min(float(retry_after), self.max_backoff)
            if attempt < self.max_retries:
                time.sleep(wait_s)
        raise JudgeError(f"{last} (after {self.max_retries + 1} attempts)")

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- judging -----------------------------------------------------------------------------------

    def judge(self, answer_text: str | None, gold: str, *, other_options: Sequence[str] = ()) -> Verdict:
        """Judge `answer_text` (the text after the thinking delimiter) against `gold`."""
        gold = str(gold).strip()
        found = find_answer(answer_text)
        attempt = found.text if found else (answer_text or "").strip()
        if not attempt:
            return Verdict(False, None, "no answer found")
        extracted = attempt if found else None
        gt = str(int(gold)) if gold.isdigit() else gold
        if attempt.isdigit() and gt.isdigit():  # s1: integers are compared exactly, no call
            ok = str(int(attempt)) == gt
            return Verdict(ok, attempt, f"integer {'equals' if ok else 'differs from'} gold {gt}")
        if self.protocol == "s1":
            options = [gt, *[o for o in dict.fromkeys(map(str, other_options)) if o != gt]]
            shown = "[" + ", ".join(f"'{o}'" for o in options) + "]"
            prompt = self.template % {"expression1": shown, "expression2": attempt}
        else:
            prompt = self.template % {"expression1": gt, "expression2": attempt}
        try:
            reply = self.complete(prompt)
        except JudgeError as exc:
            return Verdict(False, extracted, f"judge API error: {exc}")
        return self._read(reply, extracted, gt, options if self.protocol == "s1" else [gt])

    def _read(self, reply: str, extracted: str | None, gold: str, options: list[str]) -> Verdict:
        text = reply.strip()
        g = short(gold, 40)
        if self.protocol == "equality":
            word = re.sub(r"[^a-z]", "", text.lower().split()[0]) if text else ""
            if word in ("yes", "no"):
                ok = word == "yes"
                verdict = "equivalent" if ok else "not equivalent"
                return Verdict(ok, extracted, f"judge ({self.model}): {verdict} to gold {g}")
            return Verdict(False, extracted, f"judge reply unreadable: {short(text, 40)}")
        m = re.match(r"^\s*\**\s*(-?\d+)\b", text)
        if not m:
            return Verdict(False, extracted, f"judge reply unreadable: {short(text, 40)}")
        index = int(m.group(1))
        if index == 1:
            return Verdict(True, extracted, f"judge ({self.model}): equivalent to gold {g}")
        if index == -1:
            return Verdict(False, extracted, f"judge ({self.model}): not equivalent to gold {g}")
        if 2 <= index <= len(options):
            other = short(options[index - 1], 40)
            return Verdict(False, extracted, f"judge ({self.model}): matches {other}, not gold {g}")
        return Verdict(False, extracted, f"judge reply out of range: {short(text, 40)}")


def _reply_text(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise JudgeError(f"malformed reply ({type(exc).__name__}): {response.text[:200].strip()}") from None
    if not isinstance(content, str):
        raise JudgeError(f"malformed reply: content is {type(content).__name__}")
    return content
