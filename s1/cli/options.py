"""The one group of backend and engine options that every model-running command shares.

`engine_options` adds them to a command's signature (typer reads the signature) and hands the command
one `EngineOptions` instead of eighteen loose parameters; the command's own options stay its own.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

from s1.forcing.formats import PRESETS, ReasoningFormat


@dataclass(frozen=True)
class EngineOptions:
    """Which model, on which backend, with which engine settings."""

    model: str | None = None
    backend: str = "hf"
    gguf_file: str | None = None
    format: str | ReasoningFormat = "auto"  # a protocol preset sets its own strings
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    base_url: str | None = None
    api_key: str | None = None
    tokenizer: str = "auto"
    concurrency: int = 16
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int | None = None
    enable_prefix_caching: bool = True
    trust_remote_code: bool = False

    VLLM_ONLY = ("tensor_parallel_size", "data_parallel_size", "max_model_len", "gpu_memory_utilization",
                 "max_num_seqs", "enable_prefix_caching")
    OPENAI_ONLY = ("base_url", "api_key", "concurrency")

    def check(self) -> None:
        """Options of one backend given to another are an error naming the option and the backend."""
        from s1.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        defaults = EngineOptions()
        for names, backend in ((self.VLLM_ONLY, "vllm"), (self.OPENAI_ONLY, "openai")):
            changed = [n for n in names if getattr(self, n) != getattr(defaults, n) and n != "api_key"]
            if changed and self.backend != backend:
                raise ValueError(f"--{changed[0].replace('_', '-')} is a {backend} backend option; add --backend "
                                 f"{backend}")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")

    @property
    def model_label(self) -> str:
        return self.model or "tiny reasoning model"

    def context_length(self) -> int | None:
        """The model's context length without loading it, when it can be told (else None)."""
        if self.backend == "openai":
            return None
        if self.backend == "vllm" and self.max_model_len:
            return self.max_model_len
        from s1.models import context_length_of

        return context_length_of(self.model, self.gguf_file)

    def load(self, seed: int | None = None, **extra: Any) -> Any:
        """The backend, loaded (the model in this process, or a connection for `openai`)."""
        from s1.backends import load_backend

        self.check()
        if self.backend == "openai":
            return load_backend(self.model, backend="openai", base_url=self.base_url, api_key=self.api_key,
                                tokenizer=self.tokenizer, concurrency=self.concurrency, format=self.format)
        common = dict(format=self.format, batch_size=self.batch_size,
                      tokenizer=None if self.tokenizer == "auto" else self.tokenizer, **extra)
        if self.backend == "vllm":
            os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs to stdout; keep --json clean
            options = {n: getattr(self, n) for n in self.VLLM_ONLY}
            return load_backend(self.model, backend="vllm", dtype=self.dtype, seed=seed or 0,
                                trust_remote_code=self.trust_remote_code, **options, **common)
        return load_backend(self.model, backend="hf", gguf_file=self.gguf_file, device=self.device, dtype=self.dtype,
                            trust_remote_code=self.trust_remote_code, **common)


_HELP = {
    "model": (str | None, "Hub id, local dir, .gguf file or smollm2 (default: the embedded tiny model)."),
    "backend": (str, "hf (transformers in this process), vllm (a vLLM engine in this process) or openai (an "
                     "OpenAI-compatible server)."),
    "gguf_file": (str | None, "GGUF file name inside --model."),
    "format": (str, f"Reasoning format: auto, {', '.join(PRESETS)}."),
    "device": (str, "auto, cpu, cuda, cuda:N, mps."),
    "dtype": (str, "auto, float32, bfloat16, float16."),
    "batch_size": (int, "Sequences per batch."),
    "base_url": (str | None, "--backend openai: API base, e.g. http://localhost:8000/v1."),
    "api_key": (str | None, "--backend openai: bearer token (env OPENAI_API_KEY)."),
    "tokenizer": (str, "The tokenizer (and chat template) to run with: a Hub id or path (s1-32B ran with "
                       "Qwen2.5-32B-Instruct's). --backend openai: also server (/tokenize) or none (usage counts)."),
    "concurrency": (int, "--backend openai: samples in flight."),
    "tensor_parallel_size": (int, "--backend vllm: tensor-parallel GPUs."),
    "data_parallel_size": (int, "--backend vllm: data-parallel ranks (one process each)."),
    "max_model_len": (int | None, "--backend vllm: context length (default: the model's)."),
    "gpu_memory_utilization": (float, "--backend vllm: fraction of GPU memory for weights + KV cache."),
    "max_num_seqs": (int | None, "--backend vllm: sequences per engine step."),
    "enable_prefix_caching": (bool, "--backend vllm: prefix caching (sweeps share thinking through it)."),
    "trust_remote_code": (bool, "Run the model repository's own code."),
}


def _parameter(name: str, default: Any) -> inspect.Parameter:
    kind, help_text = _HELP[name]
    option = typer.Option(help=help_text, envvar="OPENAI_API_KEY" if name == "api_key" else None)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])


def engine_options(batch_size: int = 16, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Any]:
    """Add the engine options (but `exclude`) to a command, which receives them as `engine: EngineOptions`."""
    names = [f.name for f in fields(EngineOptions) if f.name not in exclude]
    defaults = {**{f.name: f.default for f in fields(EngineOptions)}, "batch_size": batch_size}

    def decorate(command: Callable[..., Any]) -> Any:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "engine"]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            chosen = {n: kwargs.pop(n) for n in names}
            return command(engine=EngineOptions(**{**defaults, **chosen}), **kwargs)

        params = [*own, *(_parameter(n, defaults[n]) for n in names)]
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the new signature, not the command's own
        return wrapper

    return decorate
