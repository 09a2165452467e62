"""Request bodies of `s1 serve`: the OpenAI fields it honours plus the budget-forcing extras.

Unknown fields are refused (400, naming them) rather than ignored, so a client never believes a
setting took effect when it did not. Budget fields are validated again by `BudgetPolicy`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EFFORTS = ("none", "minimal", "low", "medium", "high")
NonNegative = Annotated[int, Field(ge=0)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class BudgetFields(BaseModel):
    """Budget forcing per request (extra body fields). Any of them asks the server to force budgets."""

    max_thinking_tokens: NonNegative | Literal["auto"] | None = None
    min_thinking_tokens: NonNegative | None = None
    min_thinking_mode: Literal["suppress", "wait"] | None = None
    num_ignore: NonNegative | None = None
    ignore_strings: list[str] | str | None = None
    max_answer_tokens: Annotated[int, Field(ge=1)] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None

    def forcing_asked(self) -> bool:
        return any(getattr(self, name) is not None for name in BudgetFields.model_fields)


class SamplingFields(BaseModel):
    """Sampling and stopping, shared by both endpoints."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=-1)] | None = None
    n: Annotated[int, Field(ge=1)] = 1
    seed: NonNegative | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[NonNegative] | None = None
    min_tokens: NonNegative = 0
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    include_stop_str_in_output: bool = False
    return_token_ids: bool = False
    skip_special_tokens: Literal[False] = False
    frequency_penalty: Literal[0] = 0
    presence_penalty: Literal[0] = 0
    logprobs: Literal[False] | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops_non_empty(cls, v: str | list[str] | None) -> str | list[str] | None:
        for s in [v] if isinstance(v, str) else v or []:
            if not s:
                raise ValueError("stop strings must be non-empty")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias_keys_are_ids(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for key in v or {}:
            if not key.lstrip("-").isdigit() or int(key) < 0:
                raise ValueError(f"logit_bias keys must be token ids (non-negative integers), got {key!r}")
        return v

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def bias(self) -> dict[int, float]:
        return {int(k): float(v) for k, v in (self.logit_bias or {}).items()}


class CompletionRequest(SamplingFields, BudgetFields):
    """`/v1/completions`: a raw prompt (text, or token ids as vLLM and SGLang accept)."""

    prompt: str | list[int] | list[str] | list[list[int]]
    echo: Literal[False] = False
    suffix: None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: Any) -> str | list[int]:
        if isinstance(v, list) and v and isinstance(v[0], str | list):
            if len(v) != 1:
                raise ValueError("give one prompt per request (batch by sending concurrent requests)")
            v = v[0]
        if isinstance(v, list) and not v:
            raise ValueError("prompt must not be empty")
        return v


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    reasoning_content: str | None = None

    def text(self) -> str:
        """The message as plain text; images are refused, since the served model reads text only."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise ValueError(f"content part of type {part.type!r} needs a vision-language model; this "
                                 "server's model reads text only")
            parts.append(part.text)
        return "".join(parts)


class ChatRequest(SamplingFields, BudgetFields):
    """`/v1/chat/completions`. `continue_final_message` continues the last (assistant) message as is."""

    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @model_validator(mode="after")
    def _continuation(self) -> ChatRequest:
        if self.continue_final_message:
            if self.add_generation_prompt:
                raise ValueError("continue_final_message needs add_generation_prompt=false")
            if self.messages[-1].role != "assistant":
                raise ValueError("continue_final_message needs the last message to be the assistant's")
        if self.max_completion_tokens is not None:
            if self.max_tokens is not None and self.max_tokens != self.max_completion_tokens:
                raise ValueError("give max_tokens or max_completion_tokens, not two different values")
            self.max_tokens = self.max_completion_tokens
        return self

    def chat(self) -> list[dict[str, str]]:
        roles = {"developer": "system"}
        return [{"role": roles.get(m.role, m.role), "content": m.text()} for m in self.messages]


class TokenizeRequest(BaseModel):
    """vLLM's `/tokenize`: a prompt, or chat messages rendered with the model's template."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        return self


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    tokens: list[NonNegative]
