"""Turning an HTTP request of `s1 serve` into work for the engine, with every limit checked up front.

A request either asks for budget forcing (any budget field, or a new chat turn) and becomes
`Request`s with a `BudgetPolicy`, or is plain decoding (a raw completion without budget fields, or a
chat request that continues the final assistant message) and becomes `PlainJob`s. Everything that
can be wrong with it is found here and raised as `BadRequest` naming the field, before any work is
queued, so a bad request never reaches the engine or turns into a 500.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from s1 import defaults
from s1.backends.base import EngineBackend
from s1.forcing.binding import BoundFormat, encode
from s1.forcing.machine import ForcingTokens
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError, SamplingSettings
from s1.forcing.request import Request
from s1.forcing.sequence import check_fits, thinking_budget
from s1.serve.plain import PlainJob
from s1.serve.schema import ChatRequest, CompletionRequest, SamplingFields

PLAIN_DEFAULT_MAX_TOKENS = 16  # the OpenAI completions default


class BadRequest(ValueError):
    """A request the server refuses; `param` names the field, `status` the HTTP code."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param, self.status = param, status


@dataclass(frozen=True)
class ServeLimits:
    """What the server allows and assumes when a request leaves it open."""

    max_tokens: int  # ceiling on max_tokens and on any one generation's completion tokens
    max_n: int = 16
    default_answer_tokens: int = 1024
    default_temperature: float = 1.0
    effort: dict[str, int] = field(default_factory=lambda: defaults.effort_budgets(None))


class ModelView:
    """What request handling needs of the served model, usable from the HTTP threads while the engine
    thread generates: its own copy of the tokenizer (a fast tokenizer must not be used by two threads at
    once), the format, the context length, and the forced strings as ids (bound as the backend binds them)."""

    def __init__(self, backend: EngineBackend, plain: bool):
        self.tokenizer = copy.deepcopy(backend.tokenizer)
        self.format = backend.format
        self.context_length = backend.context_length
        self.plain = plain  # whether the backend decodes plain continuations too
        self.eos_ids = sorted(backend.binding.eos_ids)  # reported in /v1/models
        self.bound = BoundFormat(backend.binding, self.tokenizer)

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        return self.bound.forcing_tokens(policy)

    def thinking_budget(self, policy: BudgetPolicy, prompt_tokens: int) -> int:
        """As the backend resolves it ("auto": the context left after the prompt, answer and forced strings)."""
        return thinking_budget(policy, self.forcing_tokens(policy), self.context_length, prompt_tokens)


@dataclass
class Work:
    """A validated request: forcing `requests` or `plain` jobs (exactly one is non-empty)."""

    requests: list[Request] = field(default_factory=list)
    plain: list[PlainJob] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)


def _sampling(req: SamplingFields, limits: ServeLimits) -> SamplingSettings:
    temperature = limits.default_temperature if req.temperature is None else req.temperature
    try:
        return SamplingSettings(temperature=temperature, top_p=1.0 if req.top_p is None else req.top_p,
                                top_k=max(0, req.top_k or 0), seed=req.seed)
    except PolicyError as exc:
        raise BadRequest(str(exc)) from None


def _check_n(req: SamplingFields, limits: ServeLimits) -> None:
    if req.n > limits.max_n:
        raise BadRequest(f"n must be <= {limits.max_n}, got {req.n}", "n")
    if req.max_tokens is not None and req.max_tokens > limits.max_tokens:
        raise BadRequest(f"max_tokens must be <= {limits.max_tokens} on this server, got {req.max_tokens}",
                         "max_tokens")


def budget_policy(req: CompletionRequest | ChatRequest, model: ModelView, limits: ServeLimits,
                  prompt_tokens: int) -> BudgetPolicy:
    """The request's `BudgetPolicy`. `max_tokens` bounds thinking + forced + answer tokens: an open
    thinking budget ("auto" or an effort level) shrinks to fit it, an explicit one that does not fit is
    an error. `reasoning_effort` maps to a thinking budget (`ServeLimits.effort`)."""
    if req.reasoning_effort is not None and req.max_thinking_tokens is not None:
        raise BadRequest("give reasoning_effort or max_thinking_tokens, not both", "reasoning_effort")
    answer = req.max_answer_tokens or limits.default_answer_tokens
    if req.max_tokens is not None and req.max_answer_tokens is None:
        answer = max(1, min(answer, req.max_tokens // 2))  # an open answer budget leaves half to thinking
    thinking: int | str = AUTO
    if req.max_thinking_tokens is not None:
        thinking = req.max_thinking_tokens
    elif req.reasoning_effort is not None:
        thinking = limits.effort[req.reasoning_effort]
    sampling = _sampling(req, limits)
    try:
        policy = BudgetPolicy(
            max_thinking_tokens=thinking, min_thinking_tokens=req.min_thinking_tokens or 0,
            min_thinking_mode=req.min_thinking_mode or "suppress", num_ignore=req.num_ignore or 0,
            ignore_strings=req.ignore_strings or None, max_answer_tokens=answer, thinking=sampling,
        )
        reserve = model.forcing_tokens(policy).forced_reserve(policy)
        budget = model.thinking_budget(policy, prompt_tokens)
    except (PolicyError, ValueError) as exc:
        raise BadRequest(str(exc), _param_of(str(exc))) from None
    ceiling = limits.max_tokens if req.max_tokens is None else req.max_tokens
    room = ceiling - answer - reserve
    if budget > room:
        name = "max_tokens" if req.max_tokens is not None else "the server's max_tokens limit"
        if req.max_thinking_tokens is not None:
            raise BadRequest(
                f"max_thinking_tokens ({budget}) + max_answer_tokens ({answer}) + forced tokens (up to "
                f"{reserve}) exceed {name} ({ceiling}); lower the budgets or raise max_tokens", "max_tokens")
        if room < policy.min_thinking_tokens:
            raise BadRequest(
                f"{name} ({ceiling}) leaves {max(room, 0)} thinking tokens after max_answer_tokens ({answer}) and "
                f"forced tokens (up to {reserve}), below min_thinking_tokens ({policy.min_thinking_tokens})",
                "max_tokens")
        budget = room
    policy = policy.replace(max_thinking_tokens=budget)
    try:
        check_fits(policy, model.forcing_tokens(policy), model.context_length, prompt_tokens, budget)
    except PolicyError as exc:
        raise BadRequest(str(exc), "max_tokens") from None
    return policy


def _param_of(message: str) -> str | None:
    return next((name for name in ("max_thinking_tokens", "min_thinking_tokens", "num_ignore", "ignore_strings",
                                   "max_answer_tokens", "temperature", "top_p", "top_k", "seed")
                 if message.startswith(name)), None)


def completion_work(req: CompletionRequest, model: ModelView, limits: ServeLimits, rid: str) -> Work:
    """`/v1/completions`: forcing when a budget field is given, else plain continuation of the prompt."""
    _check_n(req, limits)
    tok = model.tokenizer
    if req.forcing_asked():
        text = req.prompt if isinstance(req.prompt, str) else tok.decode(req.prompt, skip_special_tokens=False)
        text = model.format.ensure_open(text)
        ids = tok.encode(text)
        policy = budget_policy(req, model, limits, len(ids))
        return Work(requests=[Request(rid, prompt=text, sample_index=i, policy=policy) for i in range(req.n)],
                    prompt_ids=ids)
    ids = list(req.prompt) if isinstance(req.prompt, list) else tok.encode(req.prompt)
    return _plain_work(req, model, limits, ids)


def chat_work(req: ChatRequest, model: ModelView, limits: ServeLimits, rid: str) -> Work:
    """`/v1/chat/completions`: a new assistant turn with budget forcing, or (continue_final_message) a plain
    continuation of the assistant message, for clients that force budgets themselves."""
    _check_n(req, limits)
    try:
        messages = req.chat()
    except ValueError as exc:
        raise BadRequest(str(exc), "messages") from None
    tok = model.tokenizer
    if not getattr(tok, "chat_template", None):
        raise BadRequest("the served model has no chat template; use /v1/completions with a raw prompt", "messages")
    if req.continue_final_message:
        if req.forcing_asked():
            raise BadRequest("continue_final_message continues text as is; it cannot be combined with budget "
                             "fields (send a raw prompt to /v1/completions instead)", "continue_final_message")
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False,
                                       continue_final_message=True)
        return _plain_work(req, model, limits, list(encode(tok, text)))
    if not req.add_generation_prompt:
        raise BadRequest("add_generation_prompt=false needs continue_final_message=true", "add_generation_prompt")
    if messages[-1]["role"] == "assistant":
        raise BadRequest("the last message is the assistant's: set continue_final_message=true and "
                         "add_generation_prompt=false to continue it", "messages")
    try:
        text = model.format.render_prompt(tok, messages)
    except Exception as exc:  # noqa: BLE001 - a template that rejects these messages is the client's error
        raise BadRequest(f"the chat template cannot render these messages: {exc}", "messages") from None
    ids = list(encode(tok, text))
    policy = budget_policy(req, model, limits, len(ids))
    return Work(requests=[Request(rid, messages=messages, sample_index=i, policy=policy) for i in range(req.n)],
                prompt_ids=ids)


def _plain_work(req: SamplingFields, model: ModelView, limits: ServeLimits, ids: list[int]) -> Work:
    if not model.plain:
        raise BadRequest("this server's backend decodes with budget forcing only: send budget fields (e.g. "
                         "max_thinking_tokens) or a new chat turn", "prompt")
    vocab = len(model.tokenizer)
    bad = next((t for t in [*ids, *(req.stop_token_ids or []), *req.bias()] if t >= vocab), None)
    if bad is not None:
        raise BadRequest(f"token id {bad} is outside the vocabulary (size {vocab})", "prompt")
    max_tokens = req.max_tokens or PLAIN_DEFAULT_MAX_TOKENS
    context = model.context_length
    if context and len(ids) + max_tokens > context:
        raise BadRequest(f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the model's context "
                         f"({context})", "max_tokens")
    sampling = _sampling(req, limits)
    if req.min_tokens > max_tokens:
        raise BadRequest(f"min_tokens ({req.min_tokens}) must be <= max_tokens ({max_tokens})", "min_tokens")
    jobs = [PlainJob(ids, max_tokens, sampling, i, req.stops(), frozenset(req.stop_token_ids or ()), req.bias(),
                     req.include_stop_str_in_output, req.min_tokens) for i in range(req.n)]
    return Work(plain=jobs, prompt_ids=ids)
