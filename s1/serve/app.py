"""`s1 serve`: an OpenAI-compatible HTTP server that adds budget forcing to the model of a backend.

Endpoints: `/v1/models`, `/v1/completions`, `/v1/chat/completions` (JSON or SSE streams), `/health`,
and vLLM's `/tokenize` / `/detokenize` (so clients such as the `openai` backend count tokens exactly).
Budget forcing is asked for per request with extra body fields (`max_thinking_tokens`,
`min_thinking_tokens`, `min_thinking_mode`, `num_ignore`, `ignore_strings`, `max_answer_tokens`) or the
standard `reasoning_effort`; chat responses carry `reasoning_content` apart from `content` and usage
with `completion_tokens_details.reasoning_tokens`. Requests that arrive together share engine batches
(`serve_engine`). Every refusal is an OpenAI-style error body with a 4xx status naming the field.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

try:
    from fastapi import FastAPI, Request
except ImportError as exc:  # an optional dependency: name the extra that brings it
    raise ImportError("s1 serve needs FastAPI and uvicorn: pip install 's1[serve]'") from exc
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from s1 import defaults
from s1.backends.base import Backend, EngineBackend
from s1.forcing.request import LiveTokens
from s1.records import Generation
from s1.serve.engine import BatchingEngine
from s1.serve.plain import PlainEngine, PlainResult
from s1.serve.policy import (
    BadRequest,
    ModelView,
    ServeLimits,
    Work,
    chat_work,
    completion_work,
)
from s1.serve.schema import EFFORTS, ChatRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest
from s1.serve.stream import SSE, failed_records, failure, first_progress, live_stream

MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    """How the server presents itself and what it allows."""

    model_name: str
    limits: ServeLimits
    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    batch_window_s: float = 0.01


def error_response(status: int, message: str, param: str | None = None, kind: str | None = None) -> JSONResponse:
    kind = kind or {401: "authentication_error", 404: "not_found_error", 413: "request_too_large"}.get(
        status, "invalid_request_error" if status < 500 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


class Guard:
    """ASGI middleware: the bearer token (when the server has an API key) and the body size limit (413,
    by header or while reading). Pure ASGI, so streaming responses pass through untouched."""

    def __init__(self, app: Any, api_key: str | None, limit: int):
        self.app, self.api_key, self.limit = app, api_key, limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if (self.api_key and scope.get("path") != "/health"
                and headers.get(b"authorization", b"") != f"Bearer {self.api_key}".encode()):
            response = error_response(401, "missing or wrong API key: send 'Authorization: Bearer <key>'")
            return await response(scope, receive, send)
        too_big = error_response(413, f"request body exceeds {self.limit} bytes")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await too_big(scope, receive, send)
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(backend: EngineBackend, config: ServeConfig) -> FastAPI:
    """The FastAPI app serving `backend` (a model in this process; an `HFBackend` also decodes plain
    continuations)."""
    plain = PlainEngine.for_backend(backend)
    engine = BatchingEngine(backend, plain, window_s=config.batch_window_s, max_batch=max(16, backend.batch_size))
    model = ModelView(backend, plain is not None)  # the handlers' tokenizer: the engine thread uses the backend's

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = FastAPI(title="s1 serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.add_middleware(Guard, api_key=config.api_key, limit=config.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(BadRequest)
    async def bad(_: Request, exc: BadRequest) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    def check_model(name: str | None) -> None:
        if name is not None and name != config.model_name:
            raise BadRequest(f"model {name!r} is not served here; this server serves {config.model_name!r}",
                             "model", status=404)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{
            "id": config.model_name, "object": "model", "created": 0, "owned_by": "s1",
            "max_model_len": model.context_length, "reasoning_format": model.format.name,
            "eos_token_ids": model.eos_ids,
        }]}

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest) -> dict[str, Any]:
        check_model(body.model)
        tok = model.tokenizer
        if body.messages is not None:
            try:
                text = tok.apply_chat_template([{"role": m.role, "content": m.text()} for m in body.messages],
                                               tokenize=False, add_generation_prompt=body.add_generation_prompt,
                                               continue_final_message=body.continue_final_message)
            except Exception as exc:  # noqa: BLE001 - a template error is the client's to fix
                raise BadRequest(f"the chat template cannot render these messages: {exc}", "messages") from None
            ids = tok.encode(text, add_special_tokens=bool(body.add_special_tokens))
        else:
            special = True if body.add_special_tokens is None else body.add_special_tokens
            ids = tok.encode(body.prompt or "", add_special_tokens=special)
        return {"tokens": ids, "count": len(ids), "max_model_len": model.context_length}

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest) -> dict[str, Any]:
        check_model(body.model)
        if any(t >= len(model.tokenizer) for t in body.tokens):
            raise BadRequest(f"token ids must be < {len(model.tokenizer)}", "tokens")
        return {"prompt": model.tokenizer.decode(body.tokens, skip_special_tokens=False)}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Any:
        check_model(body.model)
        rid = f"cmpl-{uuid.uuid4().hex}"
        work = completion_work(body, model, config.limits, rid)
        return await _respond(engine, work, body, rid, config.model_name, chat=False, view=model)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        check_model(body.model)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        work = chat_work(body, model, config.limits, rid)
        return await _respond(engine, work, body, rid, config.model_name, chat=True, view=model)

    return app


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """Pydantic's errors as one message naming each field (malformed JSON included)."""
    by_field: dict[str, list[str]] = {}
    got: dict[str, Any] = {}
    for e in exc.errors():
        kind = e.get("type")
        if kind == "json_invalid":
            return error_response(400, f"request body is not valid JSON: {e.get('ctx', {}).get('error', e['msg'])}")
        path = ".".join(str(x) for x in e.get("loc", ()) if x != "body" and not _union_tag(str(x)))
        if not path and kind in ("model_attributes_type", "dict_type"):
            return error_response(400, "request body must be a JSON object (send Content-Type: application/json)")
        if kind == "extra_forbidden":
            message = "unknown or unsupported field"
        elif kind == "missing":
            message = "field required"
        else:
            message = e["msg"].replace("Input should be", "should be").replace("Value error, ", "")
            got.setdefault(path, e.get("input"))
        by_field.setdefault(path, [])
        if message not in by_field[path]:
            by_field[path].append(message)
    parts = [f"{path or 'body'}: {' or '.join(msgs)}" + (f" (got {got[path]!r})" if path in got else "")
             for path, msgs in by_field.items()]
    return error_response(400, "; ".join(parts) or "invalid request", next(iter(by_field), None) or None)


def _union_tag(part: str) -> bool:
    """Pydantic names the union member in error locations ('constrained-int', 'literal[...]', 'str')."""
    return (not part.isdigit() and not part.isidentifier()) or part in ("str", "int", "float", "list", "dict")


async def _respond(engine: BatchingEngine, work: Work, body: ChatRequest | CompletionRequest, rid: str,
                   model: str, chat: bool, view: ModelView) -> Any:
    head = {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": model}
    sse = SSE(head, chat)
    include_usage = bool(body.stream and body.stream_options and body.stream_options.include_usage)
    if work.plain:
        outs: list[PlainResult] = await engine.run_plain(work.plain)
        choices = [_plain_choice(i, o, body, chat) for i, o in enumerate(outs)]
        usage = _usage(work, sum(len(o.token_ids) for o in outs), 0)
        if body.stream:
            return StreamingResponse(_whole_sse(sse, choices, usage, include_usage), media_type="text/event-stream")
        return _response(head, choices, usage, work, body)
    if body.stream:  # tokens are sent while the batch decodes
        lives = [LiveTokens() for _ in work.requests]
        task = asyncio.ensure_future(engine.generate([replace(r, live=live) for r, live in zip(work.requests, lives,
                                                                                                  strict=True)]))
        task.add_done_callback(_observe)
        await first_progress(lives, task)
        if task.done() and (why := failure(task)):  # nothing sent yet: answer with an error status
            return error_response(500, why)
        events = live_stream(sse, lives, task, view.format, view.tokenizer, _s1_info,
                             lambda gens: _forced_usage(work, gens), include_usage)
        return StreamingResponse(events, media_type="text/event-stream")
    gens: list[Generation] = await engine.generate(work.requests)
    if why := failed_records(gens):
        return error_response(500, why)
    choices = [_forced_choice(i, g, body, chat) for i, g in enumerate(gens)]
    return _response(head, choices, _forced_usage(work, gens), work, body)


def _response(head: dict[str, Any], choices: list[dict[str, Any]], usage: dict[str, Any], work: Work,
              body: Any) -> dict[str, Any]:
    response = {**head, "choices": choices, "usage": usage}
    if body.return_token_ids:
        response["prompt_token_ids"] = work.prompt_ids
    return response


def _usage(work: Work, completion: int, reasoning: int) -> dict[str, Any]:
    return {"prompt_tokens": len(work.prompt_ids), "completion_tokens": completion,
            "total_tokens": len(work.prompt_ids) + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}


def _forced_usage(work: Work, gens: list[Generation]) -> dict[str, Any]:
    return _usage(work, sum(len(g.token_ids) for g in gens),
                  sum(g.thinking_tokens + g.thinking_forced_tokens for g in gens))


def _observe(task: asyncio.Future[Any]) -> None:
    """Retrieve a streamed generation's exception (the stream reports it; a client that left does not)."""
    if not task.cancelled():
        task.exception()


def _plain_choice(index: int, out: PlainResult, body: Any, chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "finish_reason": out.finish_reason, "stop_reason": out.stop_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": out.text}
    else:
        choice["text"] = out.text
    if body.return_token_ids:
        choice["token_ids"] = out.token_ids
    return choice


def _s1_info(g: Generation) -> dict[str, Any]:
    """The forcing figures of one choice (`s1` in responses and in a stream's finish chunk)."""
    return {
        "thinking_tokens": g.thinking_tokens, "thinking_forced_tokens": g.thinking_forced_tokens,
        "answer_tokens": g.answer_tokens, "answer_forced_tokens": g.answer_forced_tokens,
        "ignores_applied": g.ignores_applied, "cap_hit": g.cap_hit, "thinking_budget": g.thinking_budget,
        "thinking_closed": g.thinking_closed,
    }


def _forced_choice(index: int, g: Generation, body: Any, chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "finish_reason": g.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": g.answer, "reasoning_content": g.thinking}
    else:
        choice["text"] = g.text
        choice["reasoning_content"] = g.thinking
    choice["s1"] = _s1_info(g)
    if body.return_token_ids:
        choice["token_ids"] = g.token_ids
    return choice


async def _whole_sse(sse: SSE, choices: list[dict[str, Any]], usage: dict[str, Any],
                     include_usage: bool) -> AsyncIterator[str]:
    """A stream of finished plain choices (plain decoding runs as one batch): role, content line by line,
    finish, usage, [DONE]."""
    for c in choices:
        i = c["index"]
        text = c["message"]["content"] if sse.chat else c["text"]
        if sse.chat:
            yield sse.role(i)
        for piece in text.splitlines(keepends=True):
            for event in sse.deltas(i, "", piece):
                yield event
        yield sse.finish(i, c["finish_reason"], None)
    if include_usage:
        yield sse.usage(usage)
    yield "data: [DONE]\n\n"


def serve(backend: EngineBackend, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "warning") -> None:
    """Run the server until interrupted (uvicorn, one process: the model lives in it)."""
    import uvicorn

    uvicorn.run(create_app(backend, config), host=host, port=port, log_level=log_level, access_log=False)


def default_limits(backend: Backend, max_tokens: int | None = None, effort: dict[str, int] | None = None,
                   max_n: int = 16) -> ServeLimits:
    """Limits from the backend: completion ceiling = context length, greedy if the model's generation config
    says so, answer cap and `reasoning_effort` budgets from the context (`s1.defaults`)."""
    context = backend.context_length or defaults.FALLBACK_CONTEXT
    return ServeLimits(
        max_tokens=max_tokens or context, default_answer_tokens=defaults.answer_tokens(context),
        default_temperature=backend.default_temperature,
        effort={**defaults.effort_budgets(context), **(effort or {})}, max_n=max_n,
    )



def parse_effort(text: str) -> dict[str, int]:
    """`low=8,medium=16,high=48` -> budgets per `reasoning_effort` level; unnamed levels keep their defaults."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        if name not in EFFORTS:
            raise ValueError(f"reasoning effort level must be one of {', '.join(EFFORTS)}, got {name!r}")
        if not value.isdigit():
            raise ValueError(f"reasoning effort {name}: the budget must be an integer >= 0, got {value!r}")
        out[name] = int(value)
    return out
