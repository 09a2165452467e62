"""A word n-gram index for decontamination and cross-source dedup, linear in the text it holds.

s1 (`decontaminate_util.py`) lower-cases a text, splits it on whitespace and calls two texts
overlapping when they share one word n-gram (n = 8). This index answers the same question without
comparing texts pairwise: every n-gram of every added text is reduced to a 64-bit hash, kept in a
sorted NumPy array (one "run" per `add_many`) beside the text and word position it came from, 16
bytes a gram. A lookup hashes the query's n-grams and binary-searches each run, so checking a pool
costs one search per pool n-gram: linear in the pool's text, whatever the index holds, and adding a
source's kept items costs one sort of that source's grams. A hash match is confirmed on the words
themselves before it counts, so a hash collision can never remove an item.

Hashes: each word's Python `hash`, combined over the n words as a polynomial in a 64-bit odd
constant (wrapping arithmetic), vectorised over a whole batch of texts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_P = np.uint64(0x9E3779B97F4A7C15)
_BATCH = 4096  # texts hashed at once: bounds the temporary word arrays


def words(text: str) -> list[str]:
    """s1's normalisation: lower-case, split on whitespace."""
    return text.lower().split()


@dataclass(frozen=True)
class Hit:
    """What a text matched: the set (an eval set or an earlier source) and item it came from, and the
    shared n-gram (or "(identical question)")."""

    source: str
    item_id: str
    ngram: str


def gram_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hash, text index, word position) of every word n-gram of `texts`, in text order."""
    split = [words(t) for t in texts]
    lengths = np.fromiter((len(w) for w in split), dtype=np.int64, count=len(split))
    flat = [w for ws in split for w in ws]
    m = len(flat) - n + 1
    if m <= 0:
        empty = np.empty(0, dtype=np.int64)
        return np.empty(0, dtype=np.uint64), empty, empty
    word_hash = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)
    grams = np.zeros(m, dtype=np.uint64)
    for j in range(n):
        grams = grams * _P + word_hash[j : j + m]
    text_of = np.repeat(np.arange(len(texts)), lengths)
    start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    pos = np.arange(m)
    inside = text_of[pos] == text_of[pos + n - 1]  # the n words belong to one text
    owner = text_of[pos[inside]]
    return grams[inside], owner, pos[inside] - start[owner]


class NgramIndex:
    """Every n-gram of the texts added, with the (set, item) each came from (see the module docstring).

    `identical` also matches a text equal (after normalisation) to an added one, which catches texts
    shorter than n words; s1 does not, so it is off unless asked for."""

    def __init__(self, n: int = 8, identical: bool = False):
        self.n = n
        self.identical = identical
        self.owners: list[tuple[str, str, str]] = []  # (set, item id, text)
        self.items: Counter = Counter()
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # sorted hash, owner, position
        self._texts: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(run[0]) for run in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for run in self._runs for a in run)

    def add(self, source: str, item_id: str, text: str) -> None:
        self.add_many(source, [(item_id, text)])

    def add_many(self, source: str, items: list[tuple[str, str]]) -> None:
        """Add (item id, text) pairs of one set as one sorted run."""
        if not items:
            return
        first = len(self.owners)
        self.owners += [(source, item_id, text) for item_id, text in items]
        self.items[source] += len(items)
        if self.identical:
            for k, (_, text) in enumerate(items):
                self._texts.setdefault(" ".join(words(text)), first + k)
        parts = []
        for lo in range(0, len(items), _BATCH):
            h, owner, pos = gram_hashes([t for _, t in items[lo : lo + _BATCH]], self.n)
            parts.append((h, (owner + first + lo).astype(np.int32), pos.astype(np.int32)))
        hashes = np.concatenate([p[0] for p in parts])
        order = np.argsort(hashes, kind="stable")  # equal hashes keep insertion order: the first owner wins
        self._runs.append((hashes[order], np.concatenate([p[1] for p in parts])[order],
                           np.concatenate([p[2] for p in parts])[order]))

    def find(self, text: str) -> Hit | None:
        return self.find_many([text])[0]

    def find_many(self, texts: list[str]) -> list[Hit | None]:
        """The first match of each text: an identical text first, then runs in the order they were added
        (eval sets before sources), within a run the text's earliest shared n-gram."""
        out: list[Hit | None] = [None] * len(texts)
        if self.identical:
            for i, text in enumerate(texts):
                owner = self._texts.get(" ".join(words(text)))
                if owner is not None:
                    out[i] = Hit(self.owners[owner][0], self.owners[owner][1], "(identical question)")
        for lo in range(0, len(texts), _BATCH):
            batch = texts[lo : lo + _BATCH]
            open_ = [i for i in range(len(batch)) if out[lo + i] is None]
            if not open_:
                continue
            h, text_of, pos = gram_hashes(batch, self.n)
            for run in self._runs:
                for i, hit in self._search(run, batch, h, text_of, pos).items():
                    if out[lo + i] is None:
                        out[lo + i] = hit
        return out

    def _search(self, run: tuple[np.ndarray, np.ndarray, np.ndarray], texts: list[str], h: np.ndarray,
                text_of: np.ndarray, pos: np.ndarray) -> dict[int, Hit]:
        """Confirmed matches of `texts` (by index) in one run: the earliest n-gram of each text."""
        run_hash, run_owner, run_pos = run
        if not len(run_hash) or not len(h):
            return {}
        left = np.searchsorted(run_hash, h, side="left")
        candidate = np.flatnonzero(run_hash[np.minimum(left, len(run_hash) - 1)] == h)
        found: dict[int, Hit] = {}
        if not len(candidate):
            return found
        by_text = text_of[candidate]  # ascending: candidates come in text order, then word order
        bounds = np.flatnonzero(np.r_[True, by_text[1:] != by_text[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            t = int(by_text[a])
            query_words = words(texts[t])
            for k in candidate[a:b]:  # the text's first confirmed gram wins
                hit = self._confirm(run, query_words[pos[k] : pos[k] + self.n], h[k], int(left[k]))
                if hit is not None:
                    found[t] = hit
                    break
        return found

    def _confirm(self, run: tuple[np.ndarray, np.ndarray, np.ndarray], query: list[str], h: np.uint64,
                 left: int) -> Hit | None:
        """The first entry of the run with hash `h` whose words are `query` (None: a hash collision)."""
        run_hash, run_owner, run_pos = run
        right = int(np.searchsorted(run_hash, h, side="right"))
        for j in range(left, right):
            source, item_id, text = self.owners[int(run_owner[j])]
            if words(text)[run_pos[j] : run_pos[j] + self.n] == query:
                return Hit(source, item_id, " ".join(query))
        return None


def describe(index: NgramIndex) -> dict[str, Any]:
    return {"ngrams": len(index), "bytes": index.nbytes, "items": dict(index.items)}
