"""Budget forcing over any OpenAI-compatible server (vLLM, SGLang, llama.cpp, `s1 serve`, hosted APIs).

The server only continues text; this backend forces budgets in rounds, driving the same
`ForcingMachine` as the transformers backend, so the semantics (and, under greedy decoding, the
tokens) are the same:

1. THINK round: continue the context with `max_tokens` = what is left of the thinking budget and the
   end of thinking (closer, think stops, their token ids) as stops. The returned tokens are fed to the
   machine; a stop is a natural end (`end_thinking()`), which the machine turns into an ignore string or
   the closer; running out of budget makes it force the cap.
2. The forced tokens are appended and the context is sent again; ANSWER rounds run to the answer stop
   or `max_answer_tokens`.

The rounds are the forcing runtime's (`s1.forcing.rounds`): this module turns a `RoundSpec` into an
HTTP call and the reply into a `RoundResult`. Continuation uses `/v1/completions` with the context as
token ids (or text, without a tokenizer) when the server has it, else `/v1/chat/completions` with the
assistant message continued (`continue_final_message`, as vLLM and `s1 serve` offer). Counting: see
`codec` (exact with a local tokenizer or the server's `/tokenize`; from `usage` otherwise, and records
say so).

Samples run concurrently (at most `concurrency` at a time) on a private event loop, over one pooled
HTTP client with timeouts and retries (`http_client`). A sample whose call still fails is a failed
`Generation` carrying the error; no error text ever becomes model output.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from s1.backends.base import Backend
from s1.backends.openai.client import JSONClient, RetryPolicy, UpstreamError
from s1.backends.openai.codec import Codec, LocalCodec, ServerCodec, UsageCodec
from s1.backends.openai.images import has_images, inline_images
from s1.forcing.drive import arun_rounds
from s1.forcing.formats import PRESETS, ReasoningFormat, get_format
from s1.forcing.machine import ForcingTokens, Phase
from s1.forcing.policy import BudgetPolicy, PolicyError
from s1.forcing.request import Branch, Request
from s1.forcing.rounds import RoundResult, RoundSpec, RoundStops
from s1.forcing.sequence import Sequence, failed_record, open_sequence, record
from s1.forcing.text import NO_TOKEN, arun
from s1.records import Generation

APIS = ("auto", "completions", "chat")
TOKENIZER_MODES = ("auto", "server", "none")
FINISH_REASONS = ("stop", "length")
log = logging.getLogger(__name__)
T = TypeVar("T")


class BackendError(ValueError):
    """The server cannot be used as asked (unreachable, no usable API, no way to know the format)."""


@dataclass(kw_only=True, eq=False)
class HTTPSequence(Sequence):
    """A sample in flight over HTTP: also the API it continues through and, for chat, its messages."""

    api: str  # "completions" or "chat"
    messages: list[dict[str, Any]] | None = None


class _LoopThread:
    """A private event loop on a daemon thread: sync callers submit coroutines, the HTTP client and its
    pooled connections live on across calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="s1-openai", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("OpenAIBackend's sync API cannot be called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


def _shut_down(loop: _LoopThread, client: JSONClient) -> None:
    try:
        loop.run(client.aclose())
    finally:
        loop.close()


class OpenAIBackend(Backend):
    """Budget forcing through an OpenAI-compatible endpoint (see the module docstring).

    base_url: the API base, e.g. http://localhost:8000/v1. model: the served model id (None: the first
    the server lists). format: a preset name, a `ReasoningFormat`, or "auto" (from a local tokenizer, or
    the `reasoning_format` that `s1 serve` reports). tokenizer: "auto" (the server's /tokenize, else usage
    counts), "server", "none", or a local tokenizer path. api: "auto", "completions" or "chat".
    server_extras: send vLLM's extra fields (token ids in and out, stop_token_ids, special tokens kept);
    turn off for servers that refuse unknown fields.
    """

    name = "openai"

    def __init__(self, base_url: str, api_key: str | None = None, model: str | None = None,
                 format: str | ReasoningFormat = "auto", tokenizer: str = "auto", api: str = "auto",
                 concurrency: int = 16, timeout_s: float = 120.0, max_retries: int = 4, backoff_s: float = 0.5,
                 context_length: int | None = None, server_extras: bool = True):
        if api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.model, self.concurrency = model, concurrency
        self.apis: tuple[str, ...] = () if api == "auto" else (api,)  # usable continuation APIs, preferred first
        self.context_length, self.server_extras = context_length, server_extras
        self.batch_size = 4 * concurrency  # sweeps hand this many requests at a time
        self._format_arg, self._tokenizer_arg = format, tokenizer
        self._format: ReasoningFormat | None = format if isinstance(format, ReasoningFormat) else None
        self._loop = _LoopThread()
        self.client = self._loop.run(self._open(base_url, api_key, timeout_s,
                                                RetryPolicy(max_retries=max_retries, backoff_s=backoff_s)))
        # closes the connections and stops the loop thread when the backend goes away (or at exit)
        self._finalizer = weakref.finalize(self, _shut_down, self._loop, self.client)
        self.codec: Codec = UsageCodec()
        self.counting = "not connected yet"
        self._stops = RoundStops()
        self._ready = False

    async def _open(self, base_url: str, api_key: str | None, timeout_s: float, retry: RetryPolicy) -> JSONClient:
        self._setup_lock = asyncio.Lock()  # on the loop that uses it
        return JSONClient(base_url, api_key, timeout_s, retry, max_connections=self.concurrency)

    # -- setup -------------------------------------------------------------------------------------
    def connect(self) -> OpenAIBackend:
        """Find the model, tokenizer, format and API now (else on first use); raises `BackendError`."""
        self._loop.run(self._setup())
        return self

    @property
    def format(self) -> ReasoningFormat:
        if self._format is None:
            self.connect()
        assert self._format is not None
        return self._format

    async def _setup(self) -> None:
        if self._ready:
            return
        async with self._setup_lock:  # samples that start together set up once
            if not self._ready:
                await self._discover()

    async def _discover(self) -> None:
        listed: dict[str, Any] = {}
        if self.model is None or self.context_length is None or self._tokenizer_arg in ("auto", "server") or (
                self._format_arg == "auto"):
            listed = await self._list_models()
        if self.context_length is None and isinstance(listed.get("max_model_len"), int):
            self.context_length = listed["max_model_len"]
        eos = listed.get("eos_token_ids")
        self.codec = await self._pick_codec(eos if isinstance(eos, list) else None)
        self._format = self._pick_format(listed.get("reasoning_format"))
        if not self.apis:
            self.apis = await self._pick_apis()
        self._stops = await self._stop_strings()
        exact = "exact token counts" if self.codec.exact else "usage counts (no tokenizer)"
        self.counting = f"{' + '.join(self.apis)} API, {exact} via the {self.codec.name} codec"
        self._ready = True

    async def _stop_strings(self) -> RoundStops:
        """The stop strings of each phase. A stop that is one token is caught by its id (`stop_token_ids`),
        as the transformers backend catches it; as a string it would also match inside other tokens'
        text. Without the id route (no tokenizer, or no server extras) every stop goes as a string."""
        fmt = self.format
        think, answer = (fmt.close_marker, *fmt.think_stops), fmt.answer_stops
        if not (self.codec.exact and self.server_extras):
            return RoundStops(think, answer)
        single = {x for x in {*think, *answer} if len(await self.codec.encode(x)) == 1}
        return RoundStops(tuple(x for x in think if x not in single), tuple(x for x in answer if x not in single))

    async def _list_models(self) -> dict[str, Any]:
        try:
            data = await self.client.get("/models")
        except UpstreamError as exc:
            if exc.status in (401, 403):
                raise BackendError(f"the server refused the API key: {exc}") from None
            if exc.status is None:
                raise BackendError(f"cannot reach the server: {exc}") from None
            if self.model is None:
                raise BackendError(f"cannot list the server's models ({exc}); pass the model name") from None
            return {}
        entries = [e for e in data.get("data") or [] if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if self.model is None:
            if not entries:
                raise BackendError(f"the server at {self.client.api_base} lists no models; pass the model name")
            self.model = entries[0]["id"]
        return next((e for e in entries if e["id"] == self.model), {})

    async def _pick_codec(self, eos_ids: list[int] | None) -> Codec:
        mode = self._tokenizer_arg
        if mode == "none":
            return UsageCodec()
        if mode not in TOKENIZER_MODES:
            from transformers import AutoTokenizer

            try:
                return LocalCodec(AutoTokenizer.from_pretrained(mode))
            except (OSError, ValueError) as exc:
                raise BackendError(f"cannot load tokenizer {mode!r}: {exc}") from None
        codec = ServerCodec(self.client, self.model or "", [t for t in eos_ids or [] if isinstance(t, int)])
        try:
            await codec.encode("a")
        except UpstreamError as exc:
            if mode == "server" or exc.status is None or exc.status >= 500:
                raise BackendError(f"the server's /tokenize does not work ({exc})") from None
            log.warning("%s has no /tokenize (%s): token counts come from usage; pass --tokenizer PATH for "
                        "exact budgets", self.client.root, exc)
            return UsageCodec()
        return codec

    def _pick_format(self, reported: Any) -> ReasoningFormat:
        if self._format is not None:
            return self._format
        if self._format_arg != "auto":
            return get_format(self._format_arg)
        if isinstance(self.codec, LocalCodec):
            return get_format("auto", self.codec.tokenizer)
        if reported in PRESETS:
            return PRESETS[reported]
        raise BackendError(f"cannot tell the reasoning format of {self.model!r} without a local tokenizer; pass "
                           f"format (one of: {', '.join(PRESETS)}) or a tokenizer")

    async def _pick_apis(self) -> tuple[str, ...]:
        """Raw completions if the server has them (preferred: exact token ids in and out) and chat
        continuation if it has that (for messages that cannot be rendered here: no tokenizer, images);
        neither is a clear error."""
        probe = {"model": self.model, "max_tokens": 1, "temperature": 0}
        apis: list[str] = []
        problems: list[str] = []
        try:
            await self.client.post("/completions", {**probe, "prompt": "Hi"})
            apis.append("completions")
        except UpstreamError as exc:
            if exc.status is None or exc.status >= 500:
                raise BackendError(f"cannot reach the server: {exc}") from None
            problems.append(f"raw completions (/v1/completions: {exc})")
        try:
            await self.client.post("/chat/completions", {
                **probe, "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                "continue_final_message": True, "add_generation_prompt": False})
            apis.append("chat")
        except UpstreamError as exc:
            problems.append(f"chat continuation (continue_final_message: {exc})")
        if not apis:
            raise BackendError("budget forcing needs to continue the model's text, and this server offers neither "
                               + " nor ".join(problems))
        return tuple(apis)

    # -- the sync API (Backend / BranchingBackend) -------------------------------------------------
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        """Generate every request; a sample that cannot run or whose calls fail is a failed record."""
        policy = policy or BudgetPolicy()
        try:
            policy = self.resolve_protocol([r for r in requests if r.policy is None], policy)
        except PolicyError as exc:
            return [failed_record(r, r.policy or policy, str(exc), self._label()) for r in requests]
        return self._loop.run(self._gather([self._sample(r, r.policy or policy) for r in requests]))

    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Finish branched generations (thinking up to a cut plus the forced closer or cap): answer rounds only."""
        return self._loop.run(self._gather([self._sample(b.request, b.policy, b) for b in branches]))

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        return self._loop.run(self._tokens(policy))

    def encode(self, text: str) -> list[int]:
        async def ids() -> list[int]:
            await self._setup()
            return await self.codec.encode(text)

        return self._loop.run(ids())

    def prompt_tokens(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[int | None]:
        fmt = self.format_of(policy) if policy else self.format
        return self._loop.run(self._gather([self._prompt_tokens(r, fmt) for r in requests]))  # type: ignore[arg-type]

    async def _prompt_tokens(self, req: Request, fmt: ReasoningFormat) -> int | None:
        await self._setup()
        if not self.codec.exact or req.image_sources():
            return None
        if req.messages is None:
            return len(await self.codec.encode(fmt.ensure_open(req.prompt or ""), special=True))
        text = await self.codec.render(fmt, req.chat() or [])
        return None if text is None else len(await self.codec.encode(text))

    def close(self) -> None:
        self._finalizer()

    # -- samples -----------------------------------------------------------------------------------
    async def _gather(self, samples: list[Coroutine[Any, Any, Generation]]) -> list[Generation]:
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(coro: Coroutine[Any, Any, Generation]) -> Generation:
            async with gate:
                return await coro

        return list(await asyncio.gather(*(bounded(c) for c in samples)))

    async def _tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        await self._setup()
        return await self.codec.forcing_tokens(self.format_of(policy), policy)

    async def _sample(self, req: Request, policy: BudgetPolicy, branch: Branch | None = None) -> Generation:
        started = time.perf_counter()
        prompt = ""
        try:
            await self._setup()
            s = await self._start(req, policy)
            prompt = s.prompt
            if branch is not None:
                s.machine, s.emitted = branch.machine, list(branch.emitted)
            await arun_rounds(s, self._stops, self._round, self.codec)
            return await arun(record(s, self.format_of(policy), self._label(s.api)), self.codec)
        except (UpstreamError, PolicyError, ValueError) as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one sample's failure is recorded; the run goes on
            error = f"{type(exc).__name__}: {exc}"
        return failed_record(req, policy, error, self._label(), prompt, time.perf_counter() - started)

    def _label(self, api: str | None = None) -> str:
        return f"{self.name}:{api or '+'.join(self.apis)}:{self.codec.name}"

    async def _start(self, req: Request, policy: BudgetPolicy) -> HTTPSequence:
        """Render the prompt (choosing the API that can take it) and open the sequence."""
        tokens = await self._tokens(policy)
        fmt, codec = self.format_of(policy), self.codec
        text: str | None
        ids: list[int] | None = None
        messages: list[dict[str, Any]] | None = None
        if req.messages is not None:
            messages = req.chat() or []  # the system turn and the request's images in place
            images = has_images(messages)
            text = None if images else await codec.render(fmt, messages)
            api = "completions" if text is not None and "completions" in self.apis else "chat"
            if api not in self.apis:
                need = "images go through the chat API" if images else (
                    "chat messages need a tokenizer to become a raw prompt for /v1/completions")
                raise ValueError(f"{need}, and this server offers no chat continuation")
            if images:
                try:
                    messages = inline_images(messages)
                except (OSError, TypeError, ValueError) as exc:
                    raise ValueError(f"request {req.id!r}: cannot read an image: {exc}") from None
            if codec.exact and text is not None:
                ids = await codec.encode(text)
        else:
            api = "completions"
            if api not in self.apis:
                raise ValueError("a raw prompt needs /v1/completions, which this server does not offer")
            text = fmt.ensure_open(req.prompt or "")
            if codec.exact:
                ids = await codec.encode(text, special=True)
        if policy.min_thinking_tokens and policy.min_thinking_mode == "suppress" and not codec.exact:
            raise PolicyError("min_thinking_mode 'suppress' bans the end-of-thinking token ids, which needs a "
                              "tokenizer; give one, or use min_thinking_mode 'wait'")
        if policy.max_thinking_tokens == "auto" and ids is None:
            raise PolicyError("max_thinking_tokens='auto' needs the prompt's token count; give an integer budget "
                              "or a tokenizer")
        seq = open_sequence(req, policy, tokens, self.context_length, text or "", ids or [], len(ids or []),
                            kind=HTTPSequence, api=api, messages=None if api == "completions" else messages)
        assert isinstance(seq, HTTPSequence)
        return seq

    # -- one HTTP round ----------------------------------------------------------------------------
    async def _round(self, s: Sequence, spec: RoundSpec) -> RoundResult:
        """One round as a continuation request: the spec's quota, sampling and stops; a ban through
        `logit_bias` (and vLLM's `min_tokens`, which also holds back an EOS this client may not know)."""
        assert isinstance(s, HTTPSequence)
        sampling = spec.sampling
        body: dict[str, Any] = {"model": self.model, "max_tokens": spec.quota, "temperature": sampling.temperature,
                                "top_p": sampling.top_p}
        if spec.stop_strings:
            body["stop"] = list(spec.stop_strings)
        if sampling.presence_penalty:
            body["presence_penalty"] = sampling.presence_penalty
        if sampling.frequency_penalty:
            body["frequency_penalty"] = sampling.frequency_penalty
        if sampling.repetition_penalty != 1.0:  # vLLM's (and s1 serve's) extension, transformers' formula
            body["repetition_penalty"] = sampling.repetition_penalty
        if sampling.seed is not None:  # one reproducible stream per (seed, sample, round)
            body["seed"] = (sampling.seed * 1_000_003 + s.request.sample_index * 1009 + spec.round + 1) % (2**31 - 1)
        if spec.ban and spec.min_tokens >= spec.quota:  # no end of thinking for the whole round
            body["logit_bias"] = {str(t): -100 for t in sorted(spec.ban) if t >= 0}
        if spec.ban and self.server_extras:
            body["min_tokens"] = min(spec.min_tokens, spec.quota)
        if self.server_extras:
            body.update(skip_special_tokens=False, include_stop_str_in_output=False, return_token_ids=True)
            if any(t >= 0 for t in spec.stop_ids):
                body["stop_token_ids"] = sorted(t for t in spec.stop_ids if t >= 0)
            if sampling.top_k:
                body["top_k"] = sampling.top_k
        so_far = [t for t in s.emitted if t != NO_TOKEN]
        if s.api == "completions":
            if s.prompt_ids:
                body["prompt"] = s.prompt_ids + so_far
            else:
                body["prompt"] = s.prompt + await self.codec.decode(so_far)
            data = await self.client.post("/completions", body)
        else:
            fmt = self.format_of(s.policy)
            content = (fmt.think_open if fmt.open_in_prompt else "") + await self.codec.decode(so_far)
            body.update(messages=[*(s.messages or []), {"role": "assistant", "content": content}],
                        continue_final_message=True, add_generation_prompt=False)
            data = await self.client.post("/chat/completions", body)
        result = await self._parse(data, s.api, spec.stop_ids)
        if spec.phase is Phase.THINK:  # the machine asks whether thinking ends a line (the cap's newline)
            await self.codec.learn(result.ids[-1:])
        return result

    async def _parse(self, data: dict[str, Any], api: str, stop_ids: frozenset[int]) -> RoundResult:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UpstreamError(f"the server's response has no choices: {str(data)[:200]}")
        choice = choices[0]
        finish = choice.get("finish_reason")
        if finish not in FINISH_REASONS:
            raise UpstreamError(f"the server ended a round with finish_reason {finish!r}")
        if api == "completions":
            text = choice.get("text")
        else:
            msg = choice.get("message") or {}
            text = (msg.get("reasoning_content") or "") + (msg.get("content") or "")
        if not isinstance(text, str):
            raise UpstreamError(f"the server's response has no text: {str(choice)[:200]}")
        natural = finish == "stop"
        token_ids = choice.get("token_ids")
        if self.codec.exact and isinstance(token_ids, list) and all(isinstance(t, int) for t in token_ids):
            return await self._from_ids(list(token_ids), text, natural, choice.get("stop_reason"), stop_ids)
        if self.codec.exact:
            return RoundResult(await self.codec.encode(text), natural)
        usage = data.get("usage") or {}
        count = usage.get("completion_tokens")
        if not isinstance(count, int):
            raise UpstreamError("without a tokenizer the server must report usage.completion_tokens")
        assert isinstance(self.codec, UsageCodec)
        return RoundResult(self.codec.pieces(text, count - 1 if natural else count), natural)

    async def _from_ids(self, ids: list[int], text: str, natural: bool, reason: Any,
                        stop_ids: frozenset[int]) -> RoundResult:
        """The round's tokens from the ids the server returned. A stop string stays in them (the runtime
        strips it at the token boundary); a stop token is split off as `stop_token`."""
        if not natural or not ids or isinstance(reason, str):
            return RoundResult(ids, natural)
        if ids[-1] in stop_ids or isinstance(reason, int):
            return RoundResult(ids[:-1], True, ids[-1])
        last = await self.codec.decode(ids[-1:])
        if not last or not text.endswith(last):  # the EOS token: in the ids, not in the text
            if isinstance(self.codec, ServerCodec):
                self.codec.learn_eos(ids[-1])
            return RoundResult(ids[:-1], True, ids[-1])
        return RoundResult(ids, True)
