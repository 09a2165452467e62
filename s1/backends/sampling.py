"""Token choice for engines whose forcing runs inside the decoding loop.

The forcing processors sample the next token themselves and hand the engine a one-hot row, because
a natural end of thinking must be *replaced* by an ignore string before it is emitted, and each phase
has its own sampling settings. Each sequence draws from its own seeded generator, so a sample does not
change with the batch it runs in.
"""

from __future__ import annotations

import secrets
from typing import Any

import torch

from s1.forcing.policy import SamplingSettings

_SEED_STRIDE = 1_000_003
_SEED_MOD = 2**63 - 1


def stream_seed(settings: SamplingSettings, sample_index: int) -> int:
    """The seed of one sample's random stream: the phase seed offset by the sample index."""
    base = settings.seed if settings.seed is not None else secrets.randbits(62)
    return (base * _SEED_STRIDE + sample_index) % _SEED_MOD


class RowSampler:
    """Samples one sequence's tokens: greedy, or temperature/top-k/top-p from its own generator."""

    def __init__(self, settings: SamplingSettings, sample_index: int = 0):
        self.settings = settings
        self.sample_index = sample_index
        self._generator: torch.Generator | None = None

    def _gen(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(stream_seed(self.settings, self.sample_index))
        return self._generator

    def save(self, device: torch.device) -> Any:
        """The random stream's position (None when greedy), for `restore` after a draw is discarded."""
        return None if self.settings.greedy else self._gen(device).get_state()

    def restore(self, state: Any) -> None:
        if state is not None and self._generator is not None:
            self._generator.set_state(state)

    def penalize(self, logits: torch.Tensor, context: list[int], output: int) -> None:
        """Apply the phase's penalties to one row of logits in place. `context` is the sequence's tokens
        (prompt then output), of which the last `output` are output: repetition over all of them
        (transformers' formula), presence and frequency over the output (OpenAI's)."""
        s = self.settings
        if s.repetition_penalty != 1.0 and context:
            seen = torch.tensor(sorted(set(context)), dtype=torch.long, device=logits.device)
            score = logits[seen]
            logits[seen] = torch.where(score < 0, score * s.repetition_penalty, score / s.repetition_penalty)
        if (s.presence_penalty or s.frequency_penalty) and output:
            ids, counts = torch.tensor(context[len(context) - output:], dtype=torch.long).unique(return_counts=True)
            ids = ids.to(logits.device)
            logits[ids] -= s.presence_penalty + s.frequency_penalty * counts.to(logits.device, logits.dtype)

    def pick(self, logits: torch.Tensor) -> int:
        """Choose from one row of logits (already masked and penalized)."""
        s = self.settings
        if s.greedy:
            return int(torch.argmax(logits).item())
        scores = logits.float() / s.temperature
        if s.top_k and s.top_k < scores.numel():
            kth = torch.topk(scores, s.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if s.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True)
            cum = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
            drop = cum - torch.softmax(sorted_scores, dim=-1) >= s.top_p  # keep the token that crosses p
            scores = scores.scatter(0, order, sorted_scores.masked_fill(drop, float("-inf")))
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self._gen(logits.device)).item())


History = tuple[list[int], int]
"""A row's tokens so far (prompt then output) and how many of them are output: what penalties read."""


def pick_rows(
    scores: torch.Tensor,
    rows: list[int],
    samplers: list[RowSampler],
    banned: list[frozenset[int]],
    vocab_limit: int,
    history: list[History] | None = None,
) -> list[int]:
    """Pick a token for each of `rows` of `scores`; ids >= vocab_limit (padded vocab rows that no
    tokenizer id maps to) and each row's banned ids are never chosen. `history` (one per row) is needed
    when a sampler has penalties.

    May mask `scores` in place: the callers overwrite it with a one-hot row afterwards, and skipping
    the copy matters on the per-step hot path.
    """
    if not rows:
        return []
    whole = len(rows) == scores.shape[0] and scores.dtype == torch.float32
    sub = scores if whole else scores[rows].float()
    for j, sampler in enumerate(samplers):
        if sampler.settings.penalized:
            if history is None:
                raise ValueError("sampling penalties need each row's tokens (history)")
            sampler.penalize(sub[j], *history[j])
    if vocab_limit < sub.shape[-1]:
        sub[:, vocab_limit:] = float("-inf")
    for j, ban in enumerate(banned):
        if ban:
            sub[j, list(ban)] = float("-inf")
    if all(s.settings.greedy for s in samplers):
        return torch.argmax(sub, dim=-1).tolist()
    return [sampler.pick(sub[j]) for j, sampler in enumerate(samplers)]
