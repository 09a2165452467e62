"""Best-of-N: pick one of N sampled solutions by a verifier's scores.

- plain: the highest-scoring sample;
- weighted: the answer whose samples' scores sum highest (weighted majority voting over the
  grader's equivalence classes), as in Wu et al. (2024) and the s1 repo.

Both look at the first k samples, so one N-sample run gives the whole best-of-k curve.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from s1.methods.voting import weighted_vote


def _check_k(k: int | None, n: int) -> int:
    k = n if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in 1..{n}, got {k!r}")
    return k


def best_of_n(scores: Sequence[float | None], k: int | None = None) -> int | None:
    """Index of the highest score among the first k (ties: the earlier sample); a sample without a
    score (its verifier failed) is never picked. None when no sample among them has a score."""
    k = _check_k(k, len(scores))
    best: int | None = None
    for i in range(k):
        s = scores[i]
        if s is not None and (best is None or s > scores[best]):  # type: ignore[operator]
            best = i
    return best


def weighted_best_of_n(keys: Sequence[Hashable | None], scores: Sequence[float | None],
                       k: int | None = None) -> int | None:
    """Index (first sample) of the answer with the largest summed score among the first k samples.
    A sample without a score weighs 0; `None` answers never win."""
    if len(keys) != len(scores):
        raise ValueError(f"keys ({len(keys)}) and scores ({len(scores)}) must have the same length")
    k = _check_k(k, len(keys))
    return weighted_vote(keys, [0.0 if s is None else s for s in scores], k)
