"""How the `openai` backend turns text into the token ids its `ForcingMachine` counts.

Three codecs, best first:

- `LocalCodec`: the model's own tokenizer on this machine. Exact; forced strings are bound with
  `bind_format`, exactly as the transformers backend binds them.
- `ServerCodec`: the server's `/tokenize` and `/detokenize` (vLLM, `s1 serve`). Exact.
- `UsageCodec`: no tokenizer at all. Sampled tokens are counted from the server's `usage`
  (`completion_tokens`), so a thinking cap still stops at the right count, but each forced string
  counts as one token and the ids are placeholders (negative numbers, each standing for a piece of
  text). Records from this codec say so in their `backend` label.
"""

from __future__ import annotations

from typing import Any, Protocol

from s1.backends.openai.client import JSONClient, UpstreamError
from s1.forcing.binding import LRU, BoundFormat, bind_format
from s1.forcing.formats import ReasoningFormat
from s1.forcing.machine import ForcingTokens
from s1.forcing.policy import BudgetPolicy
from s1.forcing.text import NO_TOKEN


class Codec(Protocol):
    name: str
    exact: bool

    async def encode(self, text: str, special: bool = False) -> list[int]: ...

    async def decode(self, ids: list[int]) -> str: ...

    async def render(self, fmt: ReasoningFormat, messages: list[dict[str, Any]]) -> str | None: ...

    async def forcing_tokens(self, fmt: ReasoningFormat, policy: BudgetPolicy) -> ForcingTokens: ...

    async def learn(self, ids: list[int]) -> None: ...

    def eos_ids(self) -> frozenset[int]: ...


class NewlineIds:
    """`ForcingTokens.newline_tokens` for a codec that learns token texts as it goes (see `learn`)."""

    def __init__(self, texts: dict[int, str]):
        self.texts = texts

    def __contains__(self, token: object) -> bool:
        return isinstance(token, int) and self.texts.get(token, "").endswith("\n")


class LocalCodec:
    """A transformers tokenizer loaded here."""

    name, exact = "local", True

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._bound: BoundFormat | None = None

    async def encode(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    async def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([t for t in ids if t >= 0], skip_special_tokens=False)

    async def render(self, fmt: ReasoningFormat, messages: list[dict[str, Any]]) -> str | None:
        return fmt.render_prompt(self.tokenizer, messages)

    async def forcing_tokens(self, fmt: ReasoningFormat, policy: BudgetPolicy) -> ForcingTokens:
        if self._bound is None or self._bound.format != fmt:
            self._bound = BoundFormat(bind_format(fmt, self.tokenizer), self.tokenizer)
        return self._bound.forcing_tokens(policy)

    async def learn(self, ids: list[int]) -> None:
        return None

    def eos_ids(self) -> frozenset[int]:
        eos = self.tokenizer.eos_token_id
        return frozenset() if eos is None else frozenset({int(eos)})


class ServerCodec:
    """The server's vLLM-style `/tokenize` and `/detokenize` endpoints."""

    name, exact = "server", True

    def __init__(self, client: JSONClient, model: str, eos_ids: list[int] | None = None):
        self.client, self.model = client, model
        self.texts: dict[int, str] = {}  # token id -> its text, for ids seen so far
        self._eos: set[int] = set(eos_ids or ())  # `s1 serve` lists them in /v1/models; else learned
        self._tokens: LRU[tuple[ReasoningFormat, tuple[str, ...] | None], ForcingTokens] = LRU()

    async def encode(self, text: str, special: bool = False) -> list[int]:
        data = await self.client.post("/tokenize", {"model": self.model, "prompt": text,
                                                    "add_special_tokens": special}, root=True)
        return _ids(data, "tokens")

    async def decode(self, ids: list[int]) -> str:
        data = await self.client.post("/detokenize", {"model": self.model, "tokens": [t for t in ids if t >= 0]},
                                      root=True)
        if not isinstance(data.get("prompt"), str):
            raise UpstreamError(f"/detokenize answered without a 'prompt' string: {str(data)[:200]}")
        return data["prompt"]

    async def render(self, fmt: ReasoningFormat, messages: list[dict[str, Any]]) -> str | None:
        data = await self.client.post("/tokenize", {"model": self.model, "messages": messages,
                                                    "add_generation_prompt": True, "add_special_tokens": False},
                                      root=True)
        return fmt.ensure_open(await self.decode(_ids(data, "tokens")))

    async def forcing_tokens(self, fmt: ReasoningFormat, policy: BudgetPolicy) -> ForcingTokens:
        """The format's strings as the server's ids. A one-token closer marker or think stop is an end of
        thinking the server can stop on by id; the EOS id is unknown unless learned, so the end token
        falls back to the format's answer stop."""
        key = (fmt, policy.ignore_strings)
        if (known := self._tokens.find(key)) is not None:
            return known
        ignore_strings = policy.ignore_strings or fmt.ignore_strings
        marker = await self.encode(fmt.close_marker)
        closer = await self.encode(fmt.think_close)
        triggers = {ids[0] for ids in [await self.encode(s) for s in fmt.think_stops] if len(ids) == 1}
        if len(marker) == 1:
            triggers.add(marker[0])
        answer_stops = {ids[0] for ids in [await self.encode(s) for s in fmt.answer_stops] if len(ids) == 1}
        answer_stops |= self._eos
        end = min(self._eos) if self._eos else min(answer_stops, default=NO_TOKEN)
        ignores = tuple([tuple(await self.encode(s)) for s in ignore_strings])
        await self.learn([ids[-1] for ids in ignores if ids])
        tokens = ForcingTokens(
            end_triggers=frozenset(triggers | self._eos) or frozenset({NO_TOKEN}), closer=tuple(closer),
            cap_newline=tuple(await self.encode(fmt.cap)), cap_plain=tuple(await self.encode(fmt.cap_text("\n"))),
            ignores=ignores, answer_stops=frozenset(answer_stops | {end}), end_token=end,
            newline_tokens=NewlineIds(self.texts),  # type: ignore[arg-type]
            opener_ends_newline=fmt.think_open.endswith("\n"),
        )
        self._tokens.add(key, tokens)
        return tokens

    async def learn(self, ids: list[int]) -> None:
        """Fetch the text of ids not seen yet (the machine asks whether the last thinking token ends a line)."""
        for token in {t for t in ids if t >= 0 and t not in self.texts}:
            self.texts[token] = await self.decode([token])

    def learn_eos(self, token: int) -> None:
        """The server stopped on `token` without naming a stop: its EOS. Later bindings include it."""
        if token not in self._eos:
            self._eos.add(token)
            self._tokens.clear()

    def eos_ids(self) -> frozenset[int]:
        return frozenset(self._eos)


class UsageCodec:
    """No tokenizer: placeholder ids (see the module docstring)."""

    name, exact = "usage", False

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self._by_text: dict[str, int] = {}
        self._next = -10

    def piece(self, text: str) -> int:
        """A fresh placeholder id standing for `text`."""
        self._next -= 1
        self.texts[self._next] = text
        return self._next

    def pieces(self, text: str, count: int) -> list[int]:
        """`count` placeholder ids for a round's text, as the server counted its tokens; the last carries the
        text (so the machine sees whether thinking ends a line)."""
        count = max(count, 1 if text else 0)
        return [self.piece(text if i == count - 1 else "") for i in range(count)]

    async def encode(self, text: str, special: bool = False) -> list[int]:
        if not text:
            return []
        if text not in self._by_text:  # forced strings recur: one id each
            self._by_text[text] = self.piece(text)
        return [self._by_text[text]]

    async def decode(self, ids: list[int]) -> str:
        return "".join(self.texts.get(t, "") for t in ids)

    async def render(self, fmt: ReasoningFormat, messages: list[dict[str, Any]]) -> str | None:
        return None

    async def forcing_tokens(self, fmt: ReasoningFormat, policy: BudgetPolicy) -> ForcingTokens:
        enc = self._by_text.get
        for s in (fmt.think_close, fmt.cap, fmt.cap_text("\n"), *(policy.ignore_strings or fmt.ignore_strings)):
            await self.encode(s)
        return ForcingTokens(
            end_triggers=frozenset({NO_TOKEN}), closer=(enc(fmt.think_close),), cap_newline=(enc(fmt.cap),),
            cap_plain=(enc(fmt.cap_text("\n")),),
            ignores=tuple((enc(s),) if s else () for s in policy.ignore_strings or fmt.ignore_strings),  # type: ignore[misc]
            answer_stops=frozenset({NO_TOKEN}), end_token=NO_TOKEN,
            newline_tokens=NewlineIds(self.texts),  # type: ignore[arg-type]
            opener_ends_newline=fmt.think_open.endswith("\n"),
        )

    async def learn(self, ids: list[int]) -> None:
        return None

    def eos_ids(self) -> frozenset[int]:
        return frozenset()


def _ids(data: dict[str, Any], key: str) -> list[int]:
    ids = data.get(key)
    if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
        raise UpstreamError(f"/tokenize answered without a list of token ids in {key!r}: {str(data)[:200]}")
    return ids
