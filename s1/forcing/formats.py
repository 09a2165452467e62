"""Reasoning formats: where thinking starts and ends, and what is forced at the cap.

A format is plain strings. Turning those strings into token ids is the backend's job, so this module
imports nothing of the project and no ML library: every backend (transformers, vLLM, HTTP) shares it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

S1M_IGNORE_STRINGS: tuple[str, ...] = (
    "Wait,",
    "Maybe I made a mistake.",
    "Let me check if all the intermediate results are correct.",
    "I need to check if I missed any step in my previous thinking.",
    "Did I make a mistake in any step of the previous reasoning?",
    "Let me check again,",
    "I need to think more and check again.",
)


class ChatTokenizer(Protocol):
    """The slice of a Hugging Face tokenizer that prompt building needs."""

    chat_template: str | None

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ReasoningFormat:
    """The strings that delimit thinking and answer for one family of reasoning models.

    `think_open` ends the prompt (unless `open_in_prompt` is False: the prompt then ends where the chat
    template ends and the model writes the opener itself, as S1-M's client runs). `think_close` is forced
    when thinking ends naturally (the model emitted it, or one of `think_stops`); `cap` is forced when the
    thinking budget runs out, with its leading newline dropped when the text already ends in one.
    `ignore_strings` are appended, in a cycle, in place of a natural end while ignore rounds remain.
    """

    name: str
    think_open: str
    think_close: str
    cap: str
    ignore_strings: tuple[str, ...] = ("Wait",)
    think_stops: tuple[str, ...] = ()
    answer_stops: tuple[str, ...] = ()
    description: str = field(default="", compare=False)
    open_in_prompt: bool = True

    def __post_init__(self) -> None:
        for name in ("think_open", "think_close", "cap"):
            if not getattr(self, name):
                raise ValueError(f"format {self.name!r}: {name} must be a non-empty string")
        if not self.ignore_strings or any(not s for s in self.ignore_strings):
            raise ValueError(f"format {self.name!r}: ignore_strings must be non-empty strings")

    @property
    def close_marker(self) -> str:
        """The text that separates thinking from answer in a finished response."""
        return self.think_close.strip()

    def cap_text(self, text_so_far: str) -> str:
        """The cap string to force after `text_so_far`: no doubled newline."""
        if self.cap.startswith("\n") and text_so_far.endswith("\n"):
            return self.cap[1:]
        return self.cap

    def with_ignore_strings(self, ignore_strings: list[str] | tuple[str, ...] | None) -> ReasoningFormat:
        if not ignore_strings:
            return self
        return replace(self, ignore_strings=tuple(ignore_strings))

    def render_prompt(
        self,
        tokenizer: ChatTokenizer | None,
        messages: list[dict[str, Any]] | str,
        system: str | None = None,
    ) -> str:
        """Build the prompt with the model's own chat template, ending in the thinking opener.

        A plain string is taken as the user turn. Without a chat template, messages are refused: a
        raw prompt must then be passed already formatted (see `ensure_open`).
        """
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "this tokenizer has no chat template; pass a raw, already formatted prompt instead "
                "(Request(prompt=...) or --raw-prompt)"
            )
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.ensure_open(rendered)

    def ensure_open(self, prompt: str) -> str:
        """Append the thinking opener unless the prompt (e.g. a chat template) already ends with it."""
        if not self.open_in_prompt or prompt.endswith(self.think_open):
            return prompt
        if prompt.rstrip().endswith(self.think_open.rstrip()):
            return prompt.rstrip() + self.think_open[len(self.think_open.rstrip()) :]
        return prompt + self.think_open

    def split(self, text: str) -> tuple[str, str, bool]:
        """Split generated text into (thinking, answer, closed).

        `closed` is False when thinking never ended; the whole text is then thinking and the answer
        is empty, which graders must count as no answer.
        """
        marker = self.close_marker
        idx = text.find(marker)
        if idx < 0:
            return text.strip(), "", False
        return text[:idx].strip(), text[idx + len(marker) :].strip(), True


PRESETS: dict[str, ReasoningFormat] = {
    "s1": ReasoningFormat(
        name="s1",
        think_open="<|im_start|>think\n",
        think_close="<|im_start|>answer\n",
        cap="\n<|im_start|>answer\nFinal Answer:",
        think_stops=("<|im_start|>", "<|im_end|>"),
        answer_stops=("<|im_end|>",),
        description="s1-32B / s1.1: ChatML with <|im_start|>think ... <|im_start|>answer",
    ),
    "think": ReasoningFormat(
        name="think",
        think_open="<think>\n",
        think_close="</think>",
        cap="\n</think>\n\nFinal Answer:",
        description="DeepSeek-R1 distills, QwQ, Qwen3: <think> ... </think>",
    ),
    "s1m": ReasoningFormat(
        name="s1m",
        think_open="<think>",
        think_close="</think>",
        cap="</think>\nFinal answer: ",
        ignore_strings=S1M_IGNORE_STRINGS,
        description="S1-M (Qwen2-VL): plain-text <think> ... </think>, seven cycling ignore strings",
    ),
}


def custom_format(
    think_open: str,
    think_close: str,
    cap: str | None = None,
    ignore_strings: list[str] | tuple[str, ...] = ("Wait",),
    think_stops: list[str] | tuple[str, ...] = (),
    answer_stops: list[str] | tuple[str, ...] = (),
    name: str = "custom",
) -> ReasoningFormat:
    """A format from explicit strings; the cap defaults to a newline, the closer and `Final Answer:`."""
    return ReasoningFormat(
        name=name,
        think_open=think_open,
        think_close=think_close,
        cap=cap if cap is not None else f"\n{think_close.strip()}\nFinal Answer:",
        ignore_strings=tuple(ignore_strings),
        think_stops=tuple(think_stops),
        answer_stops=tuple(answer_stops),
    )


def _vocab_strings(tokenizer: Any) -> set[str]:
    try:
        return set(tokenizer.get_vocab())
    except Exception:  # noqa: BLE001 - a tokenizer without a vocab simply detects nothing
        return set()


def detect_format(tokenizer: Any) -> ReasoningFormat:
    """Pick the preset a tokenizer was trained for, or fail listing the presets.

    Unambiguous signals only: `<think>`/`</think>` as tokens or in the chat template means `think`;
    `<|im_start|>think` in the template means `s1`. A plain chat model matches neither.
    """
    template = getattr(tokenizer, "chat_template", None) or ""
    if not isinstance(template, str):
        template = str(template)
    vocab = _vocab_strings(tokenizer)
    is_s1 = "<|im_start|>think" in template or "<|im_start|>answer" in template
    is_think = ("<think>" in vocab and "</think>" in vocab) or "</think>" in template
    if is_s1 and not is_think:
        return PRESETS["s1"]
    if is_think and not is_s1:
        return PRESETS["think"]
    reason = "both s1 and <think> markers" if is_s1 else "no reasoning delimiters"
    raise ValueError(
        f"cannot pick a reasoning format automatically: the tokenizer shows {reason}; "
        f"pass a format explicitly, one of: {', '.join(PRESETS)}"
    )


def get_format(name: str | ReasoningFormat, tokenizer: Any = None) -> ReasoningFormat:
    """Resolve a preset name, `auto` (needs a tokenizer), or pass a format through."""
    if isinstance(name, ReasoningFormat):
        return name
    if name == "auto":
        if tokenizer is None:
            raise ValueError("format 'auto' needs a tokenizer to inspect")
        return detect_format(tokenizer)
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown format {name!r}; allowed: {', '.join([*PRESETS, 'auto'])}"
        ) from None
