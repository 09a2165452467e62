"""Plain decoding for `s1 serve`: generation with no budget forcing, as any OpenAI-compatible server does it.

A client that forces budgets itself (the `openai` backend, optillm-style proxies) needs the model as it
is: continue a raw prompt up to `max_tokens`, stop at stop strings, stop token ids or EOS, honour
`logit_bias`. This engine does that over the transformers model of an `HFBackend`, batched, with the
same token choice (`pick_rows`, per-sequence seeded `RowSampler`) as the forcing backend, so greedy
results agree token for token with in-process generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from s1.backends.base import Backend
from s1.backends.hf.backend import HFBackend
from s1.backends.sampling import RowSampler, pick_rows
from s1.forcing.policy import SamplingSettings

BAN_BIAS = -100.0  # OpenAI's floor for logit_bias; treated as "never pick this token"


@dataclass
class PlainJob:
    """One plain continuation. `prompt_ids` are the full context; `bias` maps token ids to logit offsets."""

    prompt_ids: list[int]
    max_tokens: int
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    sample_index: int = 0
    stop: tuple[str, ...] = ()
    stop_ids: frozenset[int] = frozenset()
    bias: dict[int, float] = field(default_factory=dict)
    include_stop_str: bool = False
    min_tokens: int = 0  # below it EOS and the stop token ids are banned (vLLM's min_tokens)


@dataclass
class PlainResult:
    """What a plain job produced. `token_ids` are every sampled token, the stop token or the tokens that
    completed a stop string included (as vLLM reports them); `text` ends before a matched stop string.
    `stop_reason` is the matched stop string, the stop token id, or None (EOS or length)."""

    token_ids: list[int]
    text: str
    finish_reason: str
    stop_reason: str | int | None = None


@dataclass
class _Row:
    job: PlainJob
    sampler: RowSampler
    banned: frozenset[int]
    ids: list[int] = field(default_factory=list)
    finish: str | None = None
    stop_reason: str | int | None = None


class PlainProcessor(LogitsProcessor):
    """Chooses each row's token (bias, bans, vocab limit, its own sampler) and finishes rows at a stop
    token, a stop string or their `max_tokens`; finished rows are fed the end token until all are done."""

    def __init__(self, rows: list[_Row], tokenizer: Any, eos_ids: frozenset[int], end_token: int,
                 vocab_limit: int):
        self.rows, self.tokenizer, self.eos_ids = rows, tokenizer, eos_ids
        self.end_token, self.vocab_limit = end_token, vocab_limit
        self.stop_window = {id(r): _stop_window(r.job.stop) for r in rows}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        live = [i for i, r in enumerate(self.rows) if r.finish is None]
        for i in live:
            for token, bias in self.rows[i].job.bias.items():
                if bias > BAN_BIAS and 0 <= token < scores.shape[-1]:
                    scores[i, token] += bias
        picked = pick_rows(scores, live, [self.rows[i].sampler for i in live],
                           [self._banned(self.rows[i]) for i in live], self.vocab_limit)
        chosen = [self.end_token] * len(self.rows)
        for i, token in zip(live, picked, strict=True):
            chosen[i] = token
            self._advance(self.rows[i], token)
        scores.fill_(float("-inf"))
        scores[torch.arange(len(chosen)), torch.tensor(chosen)] = 0.0
        return scores

    def _banned(self, row: _Row) -> frozenset[int]:
        if len(row.ids) < row.job.min_tokens:
            return row.banned | self.eos_ids | row.job.stop_ids
        return row.banned

    def _advance(self, row: _Row, token: int) -> None:
        row.ids.append(token)
        if token in row.job.stop_ids:
            row.finish, row.stop_reason = "stop", token
        elif token in self.eos_ids:
            row.finish = "stop"
        elif row.job.stop:
            tail = self.tokenizer.decode(row.ids[-self.stop_window[id(row)]:], skip_special_tokens=False)
            hit = next((s for s in row.job.stop if s in tail), None)
            if hit is not None:
                row.finish, row.stop_reason = "stop", hit
        if row.finish is None and len(row.ids) >= row.job.max_tokens:
            row.finish = "length"


def _stop_window(stops: tuple[str, ...]) -> int:
    """Tokens to decode to see a stop string that the newest token completed (every token is >= 1 char)."""
    return max((len(s) for s in stops), default=0) + 1


class PlainEngine:
    """Batched plain continuations on a transformers causal LM (left-padded, one `generate` per batch)."""

    def __init__(self, model: Any, tokenizer: Any, eos_ids: frozenset[int], batch_size: int = 16):
        self.model, self.tokenizer, self.eos_ids = model, tokenizer, frozenset(eos_ids)
        self.batch_size = batch_size
        self.vocab_limit = len(tokenizer)
        self.end_token = min(self.eos_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.end_token

    @classmethod
    def for_backend(cls, backend: Backend) -> PlainEngine | None:
        """The plain engine over an `HFBackend`'s model, or None for other backends (forcing only)."""
        if not isinstance(backend, HFBackend):
            return None
        return cls(backend.model, backend.tokenizer, backend.binding.eos_ids, backend.batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def run(self, jobs: list[PlainJob]) -> list[PlainResult]:
        out: list[PlainResult] = []
        for start in range(0, len(jobs), self.batch_size):
            out += self._run_batch(jobs[start : start + self.batch_size])
        return out

    def _run_batch(self, jobs: list[PlainJob]) -> list[PlainResult]:
        rows = [_Row(j, RowSampler(j.sampling, j.sample_index),
                     frozenset(t for t, b in j.bias.items() if b <= BAN_BIAS)) for j in jobs]
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for r, job in enumerate(jobs):
            ids[r, width - len(job.prompt_ids):] = torch.tensor(job.prompt_ids, dtype=torch.long)
            mask[r, width - len(job.prompt_ids):] = 1
        config = GenerationConfig(do_sample=False, max_new_tokens=max(j.max_tokens for j in jobs) + 1,
                                  eos_token_id=[self.end_token], pad_token_id=self.pad_id,
                                  temperature=None, top_p=None, top_k=None)
        processor = PlainProcessor(rows, self.tokenizer, self.eos_ids, self.end_token, self.vocab_limit)
        with torch.inference_mode():
            self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                generation_config=config, logits_processor=LogitsProcessorList([processor]))
        return [self._result(r) for r in rows]

    def _result(self, row: _Row) -> PlainResult:
        finish = row.finish or "length"
        body = row.ids
        if (finish == "stop" and row.stop_reason is None) or isinstance(row.stop_reason, int):
            body = row.ids[:-1]  # EOS / stop token: reported in token_ids, not in text
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        if isinstance(row.stop_reason, str):
            cut = text.find(row.stop_reason)
            text = text[: cut + len(row.stop_reason)] if row.job.include_stop_str else text[:cut]
        return PlainResult(row.ids, text, finish, row.stop_reason)
