"""Text operations the runtime asks for, so one implementation serves synchronous engines and async clients.

Runtime steps that need a tokenizer (render a chat, encode a prompt, decode a round to find a stop
string, decode a finished record) are generators: they `yield` an operation and receive its result.
An engine backend answers from its tokenizer in-process (`run`); the HTTP client answers from its
codec, which may itself call the server (`arun`). The logic exists once either way:

    prompt, ids = run(text_prompt(request, fmt), TokenizerText(tokenizer))           # transformers, vLLM
    prompt, ids = await arun(text_prompt(request, fmt), codec)                       # OpenAI client
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from s1.forcing.formats import ReasoningFormat

NO_TOKEN = -1  # stands for a stop or end token a codec cannot name; never sent, dropped from records

T = TypeVar("T")


@dataclass(frozen=True)
class Encode:
    """Token ids of `text` (with the tokenizer's special tokens, e.g. BOS, when `special`)."""

    text: str
    special: bool = False


@dataclass(frozen=True)
class Decode:
    """Text of `ids`, special tokens kept; placeholder ids (< 0) stand for no text."""

    ids: tuple[int, ...]


@dataclass(frozen=True)
class RenderChat:
    """The chat `messages` through the model's chat template, ending in `fmt`'s thinking opener."""

    fmt: ReasoningFormat
    messages: tuple[Any, ...]


Op = Encode | Decode | RenderChat
TextSteps = Generator[Op, Any, T]


class TextOps(Protocol):
    """What answers the operations synchronously (a local tokenizer)."""

    def encode(self, text: str, special: bool = False) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def render(self, fmt: ReasoningFormat, messages: list[Any]) -> str | None: ...


class AsyncTextOps(Protocol):
    """What answers them asynchronously (the OpenAI client's codecs)."""

    async def encode(self, text: str, special: bool = False) -> list[int]: ...

    async def decode(self, ids: list[int]) -> str: ...

    async def render(self, fmt: ReasoningFormat, messages: list[Any]) -> str | None: ...


class TokenizerText:
    """`TextOps` over a transformers tokenizer in this process."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def encode(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([t for t in ids if t >= 0], skip_special_tokens=False)

    def render(self, fmt: ReasoningFormat, messages: list[Any]) -> str | None:
        return fmt.render_prompt(self.tokenizer, messages)


def answer(op: Op, ops: TextOps) -> Any:
    if isinstance(op, Encode):
        return ops.encode(op.text, op.special)
    if isinstance(op, Decode):
        return ops.decode(list(op.ids))
    return ops.render(op.fmt, list(op.messages))


async def aanswer(op: Op, ops: AsyncTextOps) -> Any:
    if isinstance(op, Encode):
        return await ops.encode(op.text, op.special)
    if isinstance(op, Decode):
        return await ops.decode(list(op.ids))
    return await ops.render(op.fmt, list(op.messages))


def run(steps: TextSteps[T], ops: TextOps) -> T:
    """Drive `steps` to its result, answering each operation with `ops`."""
    try:
        op = next(steps)
        while True:
            op = steps.send(answer(op, ops))
    except StopIteration as stop:
        return stop.value


async def arun(steps: TextSteps[T], ops: AsyncTextOps) -> T:
    """Drive `steps` to its result, awaiting each operation on `ops`."""
    try:
        op = next(steps)
        while True:
            op = steps.send(await aanswer(op, ops))
    except StopIteration as stop:
        return stop.value
