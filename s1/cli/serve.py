"""`s1 serve`: an OpenAI-compatible server with budget forcing over a model in this process."""

from __future__ import annotations

from typing import Annotated

import typer

from s1.cli.common import err, fail
from s1.cli.options import EngineOptions, engine_options
from s1.forcing.policy import PolicyError


@engine_options(batch_size=32, exclude=EngineOptions.OPENAI_ONLY)
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="S1_API_KEY",
                                                help="Require 'Authorization: Bearer KEY' (env S1_API_KEY).")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="Model id clients send (default: from --model).")] \
    = None,
    reasoning_effort: Annotated[str | None, typer.Option(
        help="Thinking budgets per reasoning_effort, e.g. low=512,medium=2048,high=8192.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Largest max_tokens a request may ask (default: context).")] \
    = None,
    max_n: Annotated[int, typer.Option(help="Largest n (choices per request).")] = 16,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1 << 20,
    batch_window_ms: Annotated[float, typer.Option(
        help="Requests arriving within this gap of each other share an engine batch.")] = 10.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    *,
    engine: EngineOptions,
) -> None:
    """Serve a model over an OpenAI-compatible API with budget forcing (see `s1.serve`)."""
    from s1.backends.loading import quiet_hf_logging

    try:
        from s1.serve.app import ServeConfig, default_limits, parse_effort
        from s1.serve.app import serve as run_server
    except ImportError as exc:
        fail(str(exc))

    if engine.backend not in ("hf", "vllm"):
        fail(f"--backend for s1 serve must be hf or vllm (a model in this process), got {engine.backend!r}")
    for name, value, low in (("--port", port, 0), ("--max-n", max_n, 1), ("--max-body-bytes", max_body_bytes, 1),
                             ("--max-tokens", max_tokens or 1, 1), ("--batch-window-ms", batch_window_ms, 0)):
        if value < low:
            fail(f"{name} must be >= {low}, got {value}")
    quiet_hf_logging()
    try:
        effort = parse_effort(reasoning_effort) if reasoning_effort else None
        with err.status("loading model..."):
            backend = engine.load()
    except (ValueError, PolicyError, ImportError) as exc:
        fail(str(exc))
    model = engine.model
    name = served_model_name or ("tiny-reasoner" if model is None else model.rstrip("/").split("/")[-1])
    config = ServeConfig(name, default_limits(backend, max_tokens, effort, max_n), api_key=api_key,
                         max_body_bytes=max_body_bytes, batch_window_s=batch_window_ms / 1000)
    err.print(f"serving {name} ({backend.format.name} format) on http://{host}:{port}/v1"
              f"{' (API key required)' if api_key else ''}", highlight=False)
    run_server(backend, config, host=host, port=port, log_level=log_level)
