"""KV prefixes kept from a finished batch, so branches continue without re-prefilling what they share.

A budget sweep thinks once (the longest setting) and branches an answer at every smaller setting's cut.
Each branch shares its first tokens with a row of the longest run's batch, whose KV cache already holds
them. A branch batch selects those rows from the cache, crops it to the longest shared prefix in the
batch, and masks each row's columns past its own cut; position ids follow the mask (transformers
derives them from its cumulative sum), so every appended token sits exactly where an independent run
puts it. Only the tokens after the cut (the forced closer or cap, then the answer) are computed.

Only plain `DynamicLayer` caches are reused: a sliding-window or recurrent layer cannot be cut at an
arbitrary column, so such models fall back to re-prefill (same tokens, more work).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


@dataclass
class RetainedRow:
    """One row of a finished batch: its cache, where its tokens sit, and the tokens it emitted."""

    cache: Any  # the batch's DynamicCache (shared by every row of the batch)
    row: int
    width: int  # columns of left-padded prompt; emitted token k sits at column width + k
    prompt: str
    prompt_ids: list[int]
    emitted: list[int]

    def usable(self, emitted: list[int]) -> int:
        """How many of `emitted` this row's cache holds (leaving at least one token to compute)."""
        n = 0
        limit = min(len(self.emitted) - 1, len(emitted) - 1)  # the row's last token was never fed back
        while n < limit and self.emitted[n] == emitted[n]:
            n += 1
        return n


def reusable(cache: Any) -> bool:
    """Whether every layer of `cache` can be cut at an arbitrary column."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def prefixed_batch(sources: list[RetainedRow], shared: list[int], new: list[list[int]], pad_id: int,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Input ids, attention mask and cache for rows that continue `sources` after `shared` tokens.

    All sources must come from one cache. Columns: the cache cropped to the longest shared prefix, then
    a block holding each row's `new` tokens, left-padded within the block.
    """
    cache, width = sources[0].cache, sources[0].width
    length = width + max(shared)
    block = max(len(n) for n in new)
    rows = torch.tensor([s.row for s in sources], dtype=torch.long, device=device)
    ids = torch.full((len(sources), length + block), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sources), length + block), dtype=torch.long)
    for r, (src, keep, tokens) in enumerate(zip(sources, shared, new, strict=True)):
        mask[r, width - len(src.prompt_ids) : width + keep] = 1
        ids[r, length + block - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        mask[r, length + block - len(tokens) :] = 1
    selected = copy.copy(cache)
    selected.layers = []
    for layer in cache.layers:
        part = copy.copy(layer)
        part.keys = layer.keys[rows, :, :length]
        part.values = layer.values[rows, :, :length]
        selected.layers.append(part)
    return ids.to(device), mask.to(device), selected
