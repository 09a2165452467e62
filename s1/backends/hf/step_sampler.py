"""Sampling one reasoning step at a time, for tree search.

A backend's `generate` runs a whole generation; tree search (REBASE) needs the next step only, for
many partial solutions at once. `HFStepSampler` samples steps on the transformers backend's model
with the backend's own per-row sampler (seeded per node, so a node's step does not depend on the
batch it runs in) and its end-of-thinking tokens. A step ends at the separator, at an end of
thinking (a stop token or the closer), or at its token quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList, StopStringCriteria

from s1.backends.hf.backend import HFBackend
from s1.backends.hf.processors import RoundLogitsProcessor
from s1.backends.sampling import RowSampler
from s1.forcing.binding import encode
from s1.forcing.policy import BudgetPolicy, SamplingSettings

MAX_ROUNDS = 4  # a step cut short by a separator at its very start continues, at most this often


@dataclass(frozen=True)
class Step:
    """One sampled step: its text (with the separator that ended it), the tokens generated for it
    (compute, over every round it took), and whether the model ended its thinking in it."""

    text: str
    tokens: int
    ended: bool


def _cut(text: str, separator: str, marker: str | None) -> tuple[int, bool] | None:
    """Where a step ends in `text`: (end index, thinking ended), or None when it has not ended.

    The closer `marker` ends thinking (the step is the text before it). A separator ends the step
    only after some non-blank text (a step never starts empty): a whitespace separator (a newline,
    a blank line) belongs to the step it ends; a textual one (`Step`) opens the next step, so the
    step ends before it."""
    hits: list[tuple[int, bool]] = []
    if marker:
        idx = text.find(marker)
        if idx >= 0:
            hits.append((idx, True))
    body = len(text) - len(text.lstrip())
    idx = text.find(separator, body + 1) if body < len(text) else -1
    if idx >= 0:
        hits.append((idx + len(separator) if not separator.strip() else idx, False))
    return min(hits) if hits else None


class HFStepSampler:
    """Samples next steps for many (prompt, partial thinking) contexts on an `HFBackend`'s model."""

    def __init__(self, backend: HFBackend, separator: str, sampling: SamplingSettings):
        if not separator:
            raise ValueError("step separator must be a non-empty string")
        self.backend = backend
        self.separator = separator
        self.sampling = sampling
        tokens = backend.forcing_tokens(BudgetPolicy())
        self.triggers = frozenset(tokens.end_triggers)
        self.end_token = tokens.end_token
        multi = backend.binding.stop_strings  # a closer spanning several tokens is matched in text
        self.marker = backend.format.close_marker if multi else None
        self._criteria = StopStringCriteria(backend.tokenizer, [separator, *multi])

    def encode_prompt(self, messages: Any, system: str | None = None) -> list[int]:
        prompt = self.backend.format.render_prompt(self.backend.tokenizer, messages, system=system)
        return list(encode(self.backend.tokenizer, prompt))

    def sample(self, prompts: list[list[int]], paths: list[str], streams: list[int],
               quotas: list[int]) -> list[Step]:
        """The next step after each path (thinking so far) following its prompt's ids. `streams` pick
        each row's random stream; `quotas` cap each row's tokens (>= 1)."""
        if not (len(prompts) == len(paths) == len(streams) == len(quotas)):
            raise ValueError("prompts, paths, streams and quotas must have the same length")
        if any(q < 1 for q in quotas):
            raise ValueError(f"every step quota must be >= 1, got {min(quotas)}")
        texts = [""] * len(paths)
        spent = [0] * len(paths)
        ended = [False] * len(paths)
        open_rows = list(range(len(paths)))
        samplers = [RowSampler(self.sampling, s) for s in streams]  # one stream per row across its rounds
        for _ in range(MAX_ROUNDS):
            if not open_rows:
                break
            news = self._generate([prompts[i] + list(encode(self.backend.tokenizer, paths[i] + texts[i]))
                                   for i in open_rows], [samplers[i] for i in open_rows],
                                  [quotas[i] - spent[i] for i in open_rows])
            still: list[int] = []
            for i, new in zip(open_rows, news, strict=True):
                text, used, done, complete = self._step(texts[i], new)
                texts[i], ended[i] = text, done
                spent[i] += used
                if not complete and spent[i] < quotas[i]:
                    # stopped at a separator that does not end a step yet (blank lines, or a `Step`
                    # that opens this one): continue from it; the context grows, nothing repeats
                    still.append(i)
            open_rows = still
        return [Step(t, s, e) for t, s, e in zip(texts, spent, ended, strict=True)]

    def _step(self, before: str, new: list[int]) -> tuple[str, int, bool, bool]:
        """(step text, tokens used, thinking ended, step complete) from one row's new tokens, appended
        to `before` (the step's text from earlier rounds)."""
        tok = self.backend.tokenizer
        trigger = next((j for j, t in enumerate(new) if t in self.triggers), None)
        body = new if trigger is None else new[:trigger]
        text = before + tok.decode(body, skip_special_tokens=False)
        # Tokens are counted up to the end of the kept text: the token (or text) that ended thinking
        # is replaced by the forced closer when the leaf is answered, which is counted there, as a
        # backend counts a natural end of thinking.
        cut = _cut(text, self.separator, self.marker)
        if cut is not None:
            return text[: cut[0]], self._tokens_to(body, before, cut[0]), cut[1], True
        if trigger is not None:
            return text, len(body), True, True
        return text, len(new), False, False

    def _tokens_to(self, body: list[int], before: str, end: int) -> int:
        """How many of `body`'s tokens it took to produce the step up to character `end`."""
        tok = self.backend.tokenizer
        lo, hi = 0, len(body)
        while lo < hi:  # smallest j whose decoded prefix reaches `end`
            mid = (lo + hi) // 2
            if len(before) + len(tok.decode(body[:mid], skip_special_tokens=False)) >= end:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _generate(self, contexts: list[list[int]], samplers: list[RowSampler], quotas: list[int]) -> list[list[int]]:
        b = self.backend
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), b.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, ctx in enumerate(contexts):
            ids[row, width - len(ctx):] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx):] = 1
        proc = RoundLogitsProcessor(samplers, [frozenset()] * len(samplers), quotas, self.end_token, b.vocab_limit)
        config = GenerationConfig(do_sample=False, max_new_tokens=max(quotas), pad_token_id=b.pad_id,
                                  eos_token_id=sorted(self.triggers | {self.end_token}),
                                  temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = b.model.generate(input_ids=ids.to(b.device), attention_mask=mask.to(b.device),
                                   generation_config=config, logits_processor=LogitsProcessorList([proc]),
                                   stopping_criteria=StoppingCriteriaList([self._criteria]))
        rows = [row[:q] for row, q in zip(out[:, width:].tolist(), quotas, strict=True)]
        if b.pad_id in self.triggers or b.pad_id == self.end_token:
            return rows  # a pad would end the step anyway (`_step` cuts at the first trigger)
        # a row stopped by the separator string is padded while the others go on: drop that padding
        return [_rstrip(row, b.pad_id) for row in rows]


def _rstrip(row: list[int], pad: int) -> list[int]:
    end = len(row)
    while end and row[end - 1] == pad:
        end -= 1
    return row[:end]
