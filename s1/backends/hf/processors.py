"""The transformers logits processors that put budget forcing inside `model.generate`.

Both pick each row's token themselves (argmax, or a draw from the row's own seeded sampler, after its
penalties and bans) and hand `generate` a one-hot row that greedy decoding then emits: a natural end of
thinking must be *replaced* by an ignore string, which a processor that only masks cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor

from s1.backends.sampling import History, RowSampler, pick_rows
from s1.forcing.machine import REPICK, Phase
from s1.forcing.sequence import Sequence


def one_hot_(scores: torch.Tensor, chosen: list[int]) -> torch.Tensor:
    scores.fill_(float("-inf"))
    scores[torch.arange(len(chosen), device=scores.device), torch.tensor(chosen, device=scores.device)] = 0.0
    return scores


@dataclass(kw_only=True, eq=False)
class HFSequence(Sequence):
    """A sequence in the transformers backend: also its samplers, its KV cache between one-row rounds and
    its image inputs."""

    think_sampler: RowSampler
    answer_sampler: RowSampler
    cache: Any = None  # KV cache from this sequence's last round (multi-round, one row at a time)
    cache_ids: list[int] = field(default_factory=list)
    vision: dict[str, torch.Tensor] | None = None  # the processor's pixel inputs for an image prompt

    @property
    def sampler(self) -> RowSampler:
        return self.think_sampler if self.machine.phase is Phase.THINK else self.answer_sampler


class ForcingLogitsProcessor(LogitsProcessor):
    """Drives one `ForcingMachine` per batch row inside `generate` (single pass): the engine loop of
    `s1.forcing.machine`, with the model's logits as the proposal."""

    def __init__(self, seqs: list[HFSequence], vocab_limit: int):
        self.seqs = seqs
        self.vocab_limit = vocab_limit

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen: list[int] = [0] * len(self.seqs)
        free: list[int] = []
        for i, seq in enumerate(self.seqs):
            token = seq.machine.forced()
            if token is None:
                free.append(i)
            else:
                chosen[i] = seq.machine.feed(token)
        # a row whose end is ignored with an empty string (REPICK) picks again from the raw logits, ends masked
        raw = scores.clone() if free and any(() in self.seqs[i].machine.tokens.ignores for i in free) else None
        logits = scores  # the first pass may mask it in place; a second one starts from the raw logits again
        while free:
            samplers = [self.seqs[i].sampler for i in free]
            banned = [self.seqs[i].machine.banned() for i in free]
            history = [(self.seqs[i].context, len(self.seqs[i].emitted)) for i in free] \
                if any(s.settings.penalized for s in samplers) else None
            proposals = pick_rows(logits, free, samplers, banned, self.vocab_limit, history)
            again = []
            for i, token in zip(free, proposals, strict=True):
                chosen[i] = self.seqs[i].machine.feed(token)
                if chosen[i] == REPICK:
                    again.append(i)
            free = again
            if free and raw is not None:
                logits = raw.clone()
        for i, token in enumerate(chosen):
            if len(self.seqs[i].machine.kinds) > len(self.seqs[i].emitted):
                self.seqs[i].emitted.append(token)
        return one_hot_(scores, chosen)


class RoundLogitsProcessor(LogitsProcessor):
    """One round of a batch: per-row sampling, bans for a row's first `min_tokens` tokens, and a token
    quota (then the row only gets `end_token`, which stops it). `histories` are each row's tokens before
    the round (prompt + output so far, and the output count) for penalties."""

    def __init__(self, samplers: list[RowSampler], banned: list[frozenset[int]], quotas: list[int],
                 end_token: int, vocab_limit: int, min_tokens: list[int] | None = None,
                 histories: list[History] | None = None):
        self.samplers, self.banned, self.quotas = samplers, banned, quotas
        self.min_tokens = min_tokens or [q for q in quotas]
        self.end_token, self.vocab_limit = end_token, vocab_limit
        self.histories = histories
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = [i for i, q in enumerate(self.quotas) if self.steps < q]
        bans = [self.banned[i] if self.steps < self.min_tokens[i] else frozenset() for i in rows]
        samplers = [self.samplers[i] for i in rows]
        history = self._history(input_ids, rows) if any(s.settings.penalized for s in samplers) else None
        picked = pick_rows(scores, rows, samplers, bans, self.vocab_limit, history)
        chosen = [self.end_token] * len(self.quotas)
        for i, token in zip(rows, picked, strict=True):
            chosen[i] = token
        self.steps += 1
        return one_hot_(scores, chosen)

    def _history(self, input_ids: Any, rows: list[int]) -> list[History]:
        if self.histories is None:
            raise ValueError("sampling penalties need the rows' tokens before the round")
        new = input_ids[:, input_ids.shape[1] - self.steps:].tolist() if self.steps else [[] for _ in self.quotas]
        return [(self.histories[i][0] + new[i], self.histories[i][1] + self.steps) for i in rows]
