"""Binding a reasoning format to one tokenizer: the token ids the forcing machine works with.

Shared by every backend that has the model's tokenizer, so they all force identical ids. The
tokenizer is used through its duck-typed methods (`encode`, `batch_decode`, `added_tokens_decoder`);
nothing here imports an ML library.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from s1.forcing.formats import ReasoningFormat, get_format
from s1.forcing.machine import ForcingTokens
from s1.forcing.policy import BudgetPolicy

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
TOKENS_CACHE_SIZE = 64  # distinct ignore-string sets whose ids stay bound (a server sees many)


def encode(tokenizer: Any, text: str) -> tuple[int, ...]:
    """Ids of `text` on its own, without BOS/EOS."""
    return tuple(tokenizer.encode(text, add_special_tokens=False))


def _atomic_ids(tokenizer: Any) -> set[int]:
    """Ids the tokenizer never splits text across: special and added tokens."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(int(i) for i in decoder)
    return ids


def newline_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids whose text ends with a newline (decides whether the cap needs its leading newline)."""
    size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(size)], skip_special_tokens=False)
    return frozenset(i for i, t in enumerate(texts) if t.endswith("\n"))


@dataclass(frozen=True)
class FormatBinding:
    """A format's strings as ids, plus how a backend may detect the end of thinking.

    single_pass is True when every end of thinking is one atomic token (the closer starts with a
    special/added token and every think stop is one), so it can be caught before it is emitted.
    Otherwise `stop_strings` must be matched in text between rounds (multi-round).
    """

    format: ReasoningFormat
    eos_ids: frozenset[int]
    think_stop_ids: frozenset[int]
    closer_ids: tuple[int, ...]
    cap_newline: tuple[int, ...]
    cap_plain: tuple[int, ...]
    answer_stop_ids: frozenset[int]
    newline_ids: frozenset[int]
    single_pass: bool
    stop_strings: tuple[str, ...]

    def forcing_tokens(self, tokenizer: Any, ignore_strings: tuple[str, ...] | None = None) -> ForcingTokens:
        """The format's forced strings as `tokenizer`'s ids, with `ignore_strings` (the format's by default)."""
        ignore_strings = ignore_strings or self.format.ignore_strings
        ignores = tuple(encode(tokenizer, s) for s in ignore_strings)
        for s, ids in zip(ignore_strings, ignores, strict=True):
            if s and not ids:
                raise ValueError(f"ignore string {s!r} encodes to no tokens")
        end_token = min(self.eos_ids) if self.eos_ids else min(self.answer_stop_ids)
        triggers = set(self.eos_ids) | set(self.think_stop_ids)
        if self.single_pass:
            triggers.add(self.closer_ids[0])
        return ForcingTokens(
            end_triggers=frozenset(triggers),
            closer=self.closer_ids,
            cap_newline=self.cap_newline,
            cap_plain=self.cap_plain,
            ignores=ignores,
            answer_stops=self.answer_stop_ids | {end_token},
            end_token=end_token,
            newline_tokens=self.newline_ids,
            opener_ends_newline=self.format.think_open.endswith("\n"),
        )


def bind_format(fmt: ReasoningFormat, tokenizer: Any, eos_ids: set[int] | None = None) -> FormatBinding:
    """Encode a format's strings with `tokenizer`; `eos_ids` adds the model's own EOS ids."""
    eos = set(eos_ids or ())
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))
    if not eos:
        raise ValueError("the tokenizer has no EOS token and none was given; cannot tell when a sequence ends")
    atomic = _atomic_ids(tokenizer)

    think_stop_ids: set[int] = set()
    stop_strings: list[str] = []
    single_pass = True
    for s in fmt.think_stops:
        ids = encode(tokenizer, s)
        if len(ids) == 1:
            think_stop_ids.add(ids[0])
        else:
            stop_strings.append(s)
            single_pass = False

    marker_ids = encode(tokenizer, fmt.close_marker)
    if not marker_ids:
        raise ValueError(f"format {fmt.name!r}: closer {fmt.close_marker!r} encodes to no tokens")
    if not (len(marker_ids) == 1 or marker_ids[0] in atomic):
        single_pass = False
    if not single_pass:
        stop_strings.insert(0, fmt.close_marker)

    closer_ids = encode(tokenizer, fmt.think_close)
    if single_pass and closer_ids[0] != marker_ids[0]:
        raise ValueError(
            f"format {fmt.name!r}: the closer {fmt.think_close!r} does not start with the token of "
            f"{fmt.close_marker!r}; adjust the format strings"
        )
    answer_stop_ids = set(eos)
    for s in fmt.answer_stops:
        ids = encode(tokenizer, s)
        if len(ids) != 1:
            raise ValueError(f"format {fmt.name!r}: answer stop {s!r} must be a single token for this tokenizer")
        answer_stop_ids.add(ids[0])

    return FormatBinding(
        format=fmt,
        eos_ids=frozenset(eos),
        think_stop_ids=frozenset(think_stop_ids),
        closer_ids=closer_ids,
        cap_newline=encode(tokenizer, fmt.cap),
        cap_plain=encode(tokenizer, fmt.cap_text("\n")),
        answer_stop_ids=frozenset(answer_stop_ids),
        newline_ids=newline_token_ids(tokenizer),
        single_pass=single_pass,
        stop_strings=tuple(stop_strings),
    )


MODES = ("auto", "single", "multi")


def check_engine_args(mode: str, batch_size: Any) -> None:
    """The run mode and batch size an engine backend (transformers, vLLM) is built with."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def bind_engine_format(format: str | ReasoningFormat, tokenizer: Any, gen_eos: Any,
                       mode: str) -> tuple[ReasoningFormat, FormatBinding, bool]:
    """The format resolved for `tokenizer`, bound to its ids (the model's generation EOS ids included),
    and whether generation runs in a single pass under `mode` (it needs a one-token end of thinking)."""
    fmt = get_format(format, tokenizer)
    eos = {gen_eos} if isinstance(gen_eos, int) else set(gen_eos or ())
    binding = bind_format(fmt, tokenizer, eos)
    if mode == "single" and not binding.single_pass:
        raise ValueError(
            f"mode 'single' needs an end of thinking that is one special token; with this tokenizer "
            f"{fmt.close_marker!r} is several tokens, so use mode 'multi' or 'auto'"
        )
    return fmt, binding, binding.single_pass and mode != "multi"


class LRU(Generic[K, V]):
    """A bounded map from keys to values made on first use; the least recently used entry goes first.
    (Ignore strings come from requests, so what is cached per value must not grow without bound.)"""

    def __init__(self, make: Callable[[K], V] | None = None, size: int = TOKENS_CACHE_SIZE):
        self.make, self.size = make, size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V:
        found = self.find(key)
        if found is not None:
            return found
        if self.make is None:
            raise KeyError(key)
        value = self.make(key)  # made before it is kept: a key whose value fails is never stored
        self.add(key, value)
        return value

    def find(self, key: K) -> V | None:
        """The value kept for `key` (now the most recently used), or None."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def add(self, key: K, value: V) -> None:
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


class BoundFormat:
    """A format bound to one tokenizer, with the forced strings of each policy's ignore strings as ids
    (bounded cache): what an in-process backend and the server's request handlers share."""

    def __init__(self, binding: FormatBinding, tokenizer: Any):
        self.binding, self.tokenizer = binding, tokenizer
        self._tokens: LRU[tuple[str, ...] | None, ForcingTokens] = LRU(self._make)

    @property
    def format(self) -> ReasoningFormat:
        return self.binding.format

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        return self._tokens.get(policy.ignore_strings)

    def _make(self, ignore_strings: tuple[str, ...] | None) -> ForcingTokens:
        return self.binding.forcing_tokens(self.tokenizer, ignore_strings)
