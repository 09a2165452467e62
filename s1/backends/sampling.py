"""Token choice for engines whose forcing runs inside the decoding loop.

The forcing processors sample the next token themselves and hand the engine a one-hot row, because
a natural end of thinking must be *replaced* by an ignore string before it is emitted, and each phase
has its own sampling settings. Each sequence draws from its own seeded generator, so a sample does not
change with the batch it runs in.
"""

from __future__ import annotations

import secrets

import torch

from s1.budget import SamplingSettings

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

    def pick(self, logits: torch.Tensor) -> int:
        """Choose from one row of logits (already masked)."""
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


def pick_rows(
    scores: torch.Tensor,
    rows: list[int],
    samplers: list[RowSampler],
    banned: list[frozenset[int]],
    vocab_limit: int,
) -> list[int]:
    """Pick a token for each of `rows` of `scores`; ids >= vocab_limit (padded vocab rows that no
    tokenizer id maps to) and each row's banned ids are never chosen.

    May mask `scores` in place: the callers overwrite it with a one-hot row afterwards, and skipping
    the copy matters on the per-step hot path.
    """
    if not rows:
        return []
    whole = len(rows) == scores.shape[0] and scores.dtype == torch.float32
    sub = scores if whole else scores[rows].float()
    if vocab_limit < sub.shape[-1]:
        sub[:, vocab_limit:] = float("-inf")
    for j, ban in enumerate(banned):
        if ban:
            sub[j, list(ban)] = float("-inf")
    if all(s.settings.greedy for s in samplers):
        return torch.argmax(sub, dim=-1).tolist()
    return [sampler.pick(sub[j]) for j, sampler in enumerate(samplers)]
