"""A request to generate for, the tokens of one while it is made, and a branch of a sweep.

Chat helpers for images live here too: a request's images go into its last user turn as
transformers chat-template parts (`{"type": "image", "image": ...}`), before the text as S1-M places
them; each backend turns those parts into what its engine takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from s1.forcing.machine import ForcingMachine
from s1.forcing.policy import BudgetPolicy
from s1.records import Kind

IMAGE_PART_TYPES = ("image", "image_url")


def with_images(messages: list[dict[str, Any]] | str, images: tuple[Any, ...] | list[Any]) -> list[dict[str, Any]]:
    """`messages` with `images` added to the last user turn, before its text (S1-M's order).

    A string is the user turn. Without images the messages are returned as a list, unchanged.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    messages = list(messages)
    if not images:
        return messages
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        raise ValueError("images need a user message to go into; the messages have none")
    last = users[-1]
    content = messages[last].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    messages[last] = {**messages[last], "content": [*({"type": "image", "image": im} for im in images), *parts]}
    return messages


def message_images(messages: list[dict[str, Any]] | str | None) -> list[Any]:
    """Every image source in `messages`, in order (transformers `image` parts and OpenAI `image_url` parts)."""
    if messages is None or isinstance(messages, str):
        return []
    out: list[Any] = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for p in content:
            if not isinstance(p, dict) or p.get("type") not in IMAGE_PART_TYPES:
                continue
            if p["type"] == "image":
                source = next((p[k] for k in ("image", "url", "path") if p.get(k) is not None), None)
            else:
                url = p.get("image_url")
                source = url.get("url") if isinstance(url, dict) else url
            if source is None:
                raise ValueError(f"an {p['type']!r} message part has no image (give 'image', 'url' or 'path')")
            out.append(source)
    return out


class LiveTokens:
    """A generation's tokens while they are being made, for streaming.

    An engine backend's in-flight sequence (`s1.forcing.sequence.Sequence`: `emitted` token ids and a `machine` whose
    `kinds` say what each one is) becomes `source` when the request starts; a reader on another thread
    takes `snapshot()`s. A running sequence's lists only grow, so every snapshot is a prefix of the
    finished record's tokens. Backends that cannot show progress (vLLM's single pass runs in the engine
    process) leave `source` unset; readers then get the tokens with the record.
    """

    def __init__(self) -> None:
        self.source: Any = None

    def snapshot(self) -> tuple[list[int], list[Kind]]:
        src = self.source
        if src is None:
            return [], []
        ids, kinds = list(src.emitted), list(src.machine.kinds)
        n = min(len(ids), len(kinds))
        return ids[:n], kinds[:n]


@dataclass(frozen=True)
class Request:
    """One prompt to generate for.

    Give `messages` (a string is the user turn) to build the prompt with the model's chat template,
    or `prompt` for raw, already formatted text (the thinking opener is appended if missing).
    `policy`, when set, overrides the batch policy for this request. `sample_index` separates
    samples of one prompt and, with a seed, picks the sample's random stream. `images` (paths, URLs,
    bytes or PIL images) go into the last user turn before its text, as S1-M places them; images can
    also be given as `image` parts inside `messages`. `live`, when given, shows the tokens as they are
    generated (`s1 serve` streams from it).
    """

    id: str
    messages: list[dict[str, Any]] | str | None = None
    prompt: str | None = None
    system: str | None = None
    sample_index: int = 0
    policy: BudgetPolicy | None = None
    setting: str = ""
    images: tuple[Any, ...] = ()
    live: LiveTokens | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError(f"request {self.id!r}: give exactly one of messages or prompt")
        if isinstance(self.images, str | bytes) or not isinstance(self.images, tuple | list):
            raise ValueError(f"request {self.id!r}: images must be a list of images, got {type(self.images).__name__}")
        object.__setattr__(self, "images", tuple(self.images))
        if self.images and self.prompt is not None:
            raise ValueError(f"request {self.id!r}: images need messages (a chat), not a raw prompt")
        if isinstance(self.sample_index, bool) or not isinstance(self.sample_index, int) or self.sample_index < 0:
            raise ValueError(f"request {self.id!r}: sample_index must be an integer >= 0")

    def chat(self) -> list[dict[str, Any]] | None:
        """The messages with the system turn and `images` in place; None for a raw prompt."""
        if self.messages is None:
            return None
        messages = with_images(self.messages, self.images)
        if self.system is not None:
            messages = [{"role": "system", "content": self.system}, *messages]
        return messages

    def image_sources(self) -> list[Any]:
        """Every image of the request, in prompt order."""
        return message_images(self.chat())


@dataclass
class Branch:
    """A generation to finish from a shared prefix: `emitted` are the tokens after the prompt so far
    (thinking, then the forced closer or cap) and `machine` the forcing state that emitted them."""

    request: Request
    policy: BudgetPolicy
    emitted: list[int]
    machine: ForcingMachine
