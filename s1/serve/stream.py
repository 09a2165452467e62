"""Streaming for `s1 serve`: OpenAI SSE deltas made from a generation's tokens while the batch runs.

Each forced request carries a `LiveTokens`; the stream polls it, decodes the new tokens
(`IncrementalText`) and sends what has grown. Only text that cannot change any more is
sent: a trailing partial character (`\\ufffd`), trailing whitespace (the record strips it) and, before
the end of thinking, a tail that could be the start of the closer are held back. So the deltas of a
choice add up to exactly the non-streamed `reasoning_content` / `content` (chat) or `text`
(completions); the last deltas come from the finished record itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from s1.forcing.formats import ReasoningFormat
from s1.forcing.request import LiveTokens
from s1.records import Generation, Kind

POLL_S = 0.02  # how often a stream looks for new tokens
log = logging.getLogger(__name__)


class IncrementalText:
    """The text of a growing token list, decoding only what is new (a stream must not re-decode a long
    generation at every poll).

    Each update decodes from the previous read point, so a tokenizer that treats a slice's first token
    specially (SentencePiece drops its leading space) treats both decodes alike, and the difference is
    exactly the new text; it advances only when the text ends on a whole character. As in vLLM's
    incremental detokenizer. The trailing stop token of a finished generation is not text.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.text = ""
        self._start = self._read = 0  # decode from _start; tokens before _read are in `text`

    def update(self, ids: list[int], kinds: list[Kind]) -> str:
        if kinds and kinds[-1] is Kind.STOP:
            ids = ids[:-1]
        if len(ids) > self._read:
            seen = self.tokenizer.decode(ids[self._start : self._read], skip_special_tokens=False)
            now = self.tokenizer.decode(ids[self._start :], skip_special_tokens=False)
            if len(now) > len(seen) and not now.endswith("\ufffd"):
                self.text += now[len(seen) :]
                self._start, self._read = self._read, len(ids)
        return self.text


def _settled(text: str) -> str:
    """`text` without a trailing partial character (a multi-byte character split across tokens)."""
    return text.rstrip("\ufffd")


def _held_closer(text: str, marker: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of `marker` (it may become the closer)."""
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


@dataclass
class ChoiceText:
    """What one streamed choice has sent so far, and the deltas that bring it up to date."""

    fmt: ReasoningFormat
    chat: bool
    reasoning: str = ""
    content: str = ""

    def visible(self, text: str) -> tuple[str, str]:
        """(reasoning, content) of the partial `text` that no later token can change."""
        text = _settled(text)
        if not self.chat:
            return "", text.rstrip()  # trailing spaces wait for what follows (a decoder may tidy them)
        marker = self.fmt.close_marker
        idx = text.find(marker)
        if idx < 0:
            return text[: len(text) - _held_closer(text, marker)].strip(), ""
        return text[:idx].strip(), text[idx + len(marker) :].strip()

    def final(self, g: Generation) -> tuple[str, str]:
        return (g.thinking, g.answer) if self.chat else ("", g.text)

    def advance(self, reasoning: str, content: str) -> tuple[str, str]:
        """The deltas from what was sent to (reasoning, content). What was sent is a prefix of them by
        construction; a tokenizer whose decoding breaks that is logged (sent text cannot be taken back)."""
        deltas = []
        for sent, now in ((self.reasoning, reasoning), (self.content, content)):
            if not now.startswith(sent):
                log.warning("streamed text diverged from the generation: sent %r, now %r", sent[-40:], now[-40:])
                deltas.append("")
                continue
            deltas.append(now[len(sent) :])
        self.reasoning += deltas[0]
        self.content += deltas[1]
        return deltas[0], deltas[1]


class SSE:
    """OpenAI's stream chunk shapes for one response (chat or completions)."""

    def __init__(self, head: dict[str, Any], chat: bool):
        self.head, self.chat = head, chat
        self.kind = "chat.completion.chunk" if chat else "text_completion"

    def event(self, payload: dict[str, Any]) -> str:
        return "data: " + json.dumps(payload) + "\n\n"

    def chunk(self, choice: dict[str, Any]) -> str:
        return self.event({**self.head, "object": self.kind, "choices": [choice]})

    def role(self, index: int) -> str:
        return self.chunk({"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})

    def deltas(self, index: int, reasoning: str, content: str) -> list[str]:
        out = []
        if self.chat:
            if reasoning:
                out.append(self.chunk({"index": index, "delta": {"reasoning_content": reasoning},
                                       "finish_reason": None}))
            if content:
                out.append(self.chunk({"index": index, "delta": {"content": content}, "finish_reason": None}))
        elif content:
            out.append(self.chunk({"index": index, "text": content, "finish_reason": None}))
        return out

    def finish(self, index: int, finish_reason: str, s1: dict[str, Any] | None) -> str:
        if self.chat:
            return self.chunk({"index": index, "delta": {}, "finish_reason": finish_reason, "s1": s1})
        return self.chunk({"index": index, "text": "", "finish_reason": finish_reason, "s1": s1})

    def usage(self, usage: dict[str, Any]) -> str:
        return self.event({**self.head, "object": self.kind, "choices": [], "usage": usage})

    def error(self, message: str) -> str:
        return self.event({"error": {"message": message, "type": "server_error", "param": None, "code": 500}})


def failed_records(gens: list[Generation]) -> str | None:
    """Why a response cannot be given (its first failed record), or None."""
    failed = next((g for g in gens if g.error), None)
    return f"generation failed: {failed.error}" if failed is not None else None


def failure(task: asyncio.Future[list[Generation]]) -> str | None:
    """Why a finished generation task failed (an engine exception or a failed record), or None."""
    exc = task.exception()
    if exc is not None:
        return f"generation failed: {type(exc).__name__}: {exc}"
    return failed_records(task.result())


async def first_progress(lives: list[LiveTokens], future: asyncio.Future[Any]) -> None:
    """Wait until some choice has a token or the generation is over (so a failure before any output can
    still be answered with an error status instead of a stream)."""
    while not future.done() and not any(live.snapshot()[0] for live in lives):
        await asyncio.wait({future}, timeout=POLL_S)


async def live_stream(sse: SSE, lives: list[LiveTokens], future: asyncio.Future[list[Generation]],
                      fmt: ReasoningFormat, tokenizer: Any, choice_s1: Any, usage_of: Any,
                      include_usage: bool) -> AsyncIterator[str]:
    """The SSE events of forced choices: role chunks, deltas as tokens arrive, the finished records' last
    deltas and finish chunks, usage when asked for, `[DONE]`. An engine failure after the stream began
    is sent as an `error` event (the status line has gone out already). `tokenizer` must not be the
    engine thread's (a fast tokenizer is not shared between threads): the server passes its own copy."""
    choices = [ChoiceText(fmt, sse.chat) for _ in lives]
    texts = [IncrementalText(tokenizer) for _ in lives]
    if sse.chat:
        for i in range(len(lives)):
            yield sse.role(i)
    while not future.done():
        for i, (live, choice, text) in enumerate(zip(lives, choices, texts, strict=True)):
            for event in sse.deltas(i, *choice.advance(*choice.visible(text.update(*live.snapshot())))):
                yield event
        await asyncio.wait({future}, timeout=POLL_S)
    why = failure(future)
    if why is not None:
        yield sse.error(why)
        yield "data: [DONE]\n\n"
        return
    gens = future.result()
    for i, (g, choice) in enumerate(zip(gens, choices, strict=True)):
        for event in sse.deltas(i, *choice.advance(*choice.final(g))):
            yield event
        yield sse.finish(i, g.finish_reason, choice_s1(g))
    if include_usage:
        yield sse.usage(usage_of(gens))
    yield "data: [DONE]\n\n"
