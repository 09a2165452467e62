"""The models curation calls: teachers, weaker models, the judge and the domain classifier.

Two kinds, one interface (`complete(prompts) -> [Completion]`, in order, failures as records):

- ``backend``: any `s1.backends` engine through `load_backend`, with a `BudgetPolicy` (so budget
  forcing applies): ``hf`` (transformers in this process; the embedded tiny model when `model` is
  empty), ``vllm`` (an engine in this process), ``openai`` (a completions server at `base_url`,
  driven round by round). `options` passes further keyword arguments to the backend.
- ``chat``: plain ``/chat/completions`` on any OpenAI-compatible endpoint (a hosted reasoning API such
  as DeepSeek-R1, a vLLM or SGLang server), `concurrency` requests in flight, no forcing. The
  reasoning comes from the reply's ``reasoning_content`` / ``reasoning`` field, or from a
  ``<think>...</think>`` block in the content.
"""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from s1.curate.io import CurateError
from s1.curate.table import Table

KINDS: tuple[str, ...] = ("backend", "chat")
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_THINK_RE = re.compile(r"^\s*<think>(.*?)</think>\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    system: str | None = None


@dataclass
class Completion:
    """One model reply: its reasoning (`thinking`, may be empty) and the text after it."""

    thinking: str = ""
    text: str = ""
    error: str | None = None
    thinking_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str = "stop"
    wall_time_s: float = 0.0


class TextModel(Protocol):
    name: str

    def complete(self, prompts: list[Prompt]) -> list[Completion]: ...


@dataclass(frozen=True)
class ModelSpec:
    """A named model of the config (`[models.<name>]`)."""

    name: str
    kind: str
    model: str | None = None
    # backend
    backend: str = "hf"
    format: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_thinking_tokens: int | str = "auto"
    max_answer_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    # chat
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 8
    max_tokens: int | None = None
    timeout: float = 600.0
    max_retries: int = 4
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, name: str, t: Table) -> ModelSpec:
        from s1.backends import BACKENDS

        kind = t.str("kind", choices=KINDS)
        budget = t.raw("max_thinking_tokens", "auto")
        options = t.raw("options", {})
        if not isinstance(options, dict):
            raise CurateError(f"{t.path('options')} must be a table of keyword arguments, got {options!r}")
        if budget != "auto" and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise CurateError(f"{t.path('max_thinking_tokens')} must be an integer >= 0 or 'auto', got {budget!r}")
        spec = cls(
            name=name, kind=kind, model=t.str("model", None), backend=t.str("backend", "hf", choices=BACKENDS),
            format=t.str("format", "auto"), device=t.str("device", "auto"), dtype=t.str("dtype", "auto"),
            batch_size=t.int("batch_size", 16, minimum=1), max_thinking_tokens=budget,
            max_answer_tokens=t.int("max_answer_tokens", 1024, minimum=1),
            temperature=t.float("temperature", 0.0, minimum=0.0), top_p=t.float("top_p", 1.0),
            seed=t.int("seed", None, minimum=0), base_url=t.str("base_url", None),
            api_key_env=t.str("api_key_env", None),
            concurrency=t.int("concurrency", 8, minimum=1), max_tokens=t.int("max_tokens", None, minimum=1),
            timeout=t.float("timeout", 600.0, minimum=0.001), max_retries=t.int("max_retries", 4, minimum=0),
            options=dict(options),
        )
        if kind == "chat" and (spec.base_url is None or spec.model is None):
            raise CurateError(f"{t.where}: a chat model needs base_url (the API root, .../v1) and model")
        if kind == "backend" and spec.backend == "openai" and spec.base_url is None:
            raise CurateError(f"{t.where}: backend 'openai' needs base_url (the server's API root, .../v1)")
        t.done()
        return spec


def build_model(spec: ModelSpec) -> TextModel:
    """The client for a spec; a backend model is loaded now (and shared between specs that differ only
    in their budget policy)."""
    return BackendModel(spec) if spec.kind == "backend" else ChatModel(spec)


# ---------------------------------------------------------------------------------------------- backend

_LOADED: dict[tuple, Any] = {}
_LOAD_LOCK = threading.Lock()


class BackendModel:
    """A `s1.backends` engine with the spec's budget policy; one request per prompt."""

    def __init__(self, spec: ModelSpec):
        from s1.backends import load_backend
        from s1.backends.loading import quiet_hf_logging
        from s1.forcing.policy import BudgetPolicy, PolicyError, SamplingSettings

        self.name, self.spec = spec.name, spec
        kwargs = backend_kwargs(spec)
        key = (spec.model, spec.backend, repr(sorted(kwargs.items())))
        try:
            self.policy = BudgetPolicy(
                max_thinking_tokens=spec.max_thinking_tokens, max_answer_tokens=spec.max_answer_tokens,
                thinking=SamplingSettings(temperature=spec.temperature, top_p=spec.top_p, seed=spec.seed))
            with _LOAD_LOCK:
                if key not in _LOADED:
                    quiet_hf_logging()
                    _LOADED[key] = load_backend(spec.model, backend=spec.backend, **kwargs)
        except (ValueError, TypeError, RuntimeError, PolicyError) as exc:
            raise CurateError(f"models.{spec.name}: cannot load backend {spec.backend!r}: {exc}") from None
        self.backend = _LOADED[key]

    def complete(self, prompts: list[Prompt]) -> list[Completion]:
        from s1.forcing.request import Request

        requests = [Request(p.id, messages=p.text, system=p.system) for p in prompts]
        out = []
        for g in self.backend.generate(requests, self.policy):
            out.append(Completion(thinking=g.thinking, text=g.answer, error=g.error,
                                  thinking_tokens=g.thinking_tokens, output_tokens=g.thinking_tokens + g.answer_tokens,
                                  finish_reason=g.finish_reason, wall_time_s=g.wall_time_s))
        return out


def backend_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """`load_backend`'s keyword arguments for the spec's backend (each takes its own), then `options`."""
    kwargs: dict[str, Any] = {"format": spec.format}
    if spec.backend == "hf":
        kwargs.update(device=spec.device, dtype=spec.dtype, batch_size=spec.batch_size)
    elif spec.backend == "vllm":
        kwargs.update(batch_size=spec.batch_size)
    elif spec.backend == "openai":
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else None
        kwargs.update(base_url=spec.base_url, api_key=key or None, concurrency=spec.concurrency,
                      timeout_s=spec.timeout, max_retries=spec.max_retries)
    return {**kwargs, **spec.options}


# ---------------------------------------------------------------------------------------------- chat


class ChatModel:
    """An OpenAI-compatible chat endpoint, `concurrency` requests at a time, retried on 429 / 5xx."""

    def __init__(self, spec: ModelSpec, client: Any = None):
        import httpx

        self.name, self.spec = spec.name, spec
        self.url = f"{(spec.base_url or '').rstrip('/')}/chat/completions"
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        if spec.api_key_env and not key:
            raise CurateError(f"models.{spec.name}: the environment variable {spec.api_key_env} (api_key_env) "
                              f"is not set")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = client or httpx.Client(timeout=spec.timeout)

    def complete(self, prompts: list[Prompt]) -> list[Completion]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.spec.concurrency, len(prompts))) as pool:
            return list(pool.map(self._one, prompts))

    def _body(self, p: Prompt) -> dict[str, Any]:
        messages = ([{"role": "system", "content": p.system}] if p.system else []) + \
            [{"role": "user", "content": p.text}]
        body: dict[str, Any] = {"model": self.spec.model, "messages": messages, "temperature": self.spec.temperature,
                                "top_p": self.spec.top_p}
        if self.spec.max_tokens is not None:
            body["max_tokens"] = self.spec.max_tokens
        if self.spec.seed is not None:
            body["seed"] = self.spec.seed
        return body

    def _one(self, p: Prompt) -> Completion:
        import httpx

        started = time.perf_counter()
        last = "no attempt made"
        for attempt in range(self.spec.max_retries + 1):
            wait_s = min(2.0**attempt, 60.0)
            try:
                r = self.client.post(self.url, json=self._body(p), headers=self.headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if r.status_code == 200:
                    done = _parse_reply(r)
                    done.wall_time_s = time.perf_counter() - started
                    return done
                last = f"HTTP {r.status_code}: {r.text[:200].strip()}"
                if r.status_code not in _RETRY_STATUS:
                    break
                after = r.headers.get("retry-after", "")
                if after.replace(".", "", 1).isdigit():
                    wait_s = min(float(after), 60.0)
            if attempt < self.spec.max_retries:
                time.sleep(wait_s)
        return Completion(error=last, finish_reason="error", wall_time_s=time.perf_counter() - started)


def _parse_reply(r: Any) -> Completion:
    try:
        data = r.json()
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return Completion(error=f"malformed reply ({type(exc).__name__}): {r.text[:200]}", finish_reason="error")
    thinking = message.get("reasoning_content") or message.get("reasoning") or ""
    if not thinking:
        m = _THINK_RE.match(content)
        if m:
            thinking, content = m.group(1), m.group(2)
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return Completion(thinking=thinking.strip(), text=content.strip(),
                      finish_reason=choice.get("finish_reason") or "stop",
                      thinking_tokens=details.get("reasoning_tokens"), output_tokens=usage.get("completion_tokens"))
