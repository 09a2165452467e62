"""vLLM backend: budget forcing inside vLLM's engine, in one pass, with the transformers backend's semantics.

Single pass (when every end of thinking is one atomic token): each request carries its policy in
`SamplingParams.extra_args` (`wire.ForcingSpec`); `BudgetForcingLogitsProcessor` (`processor.py`) drives
its `ForcingMachine` inside the engine, so vLLM keeps scheduling continuously: no re-prefill, no rounds
waiting for the slowest sequence. Afterwards the frontend replays each output through a fresh machine
(told where the engine's machine replaced a proposal), which rebuilds the counts and marked segments
and checks that both machines agree token for token.

Rounds (multi-token closers such as plain-text `</think>`, and `mode="multi"`): the forcing runtime's
round loop runs; each round is one engine call from token ids with prefix caching on. Thinking rounds
use vLLM's sampling with stop strings and ids (plus a ban-only processor mode, `MASK_KEY`); answers
run through the forcing processor. Sweeps branch answers by submitting prompt + emitted ids; prefix
caching serves the shared thinking.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from s1.backends.base import EngineBackend, Rendered
from s1.backends.images import load_image
from s1.backends.sampling import stream_seed
from s1.backends.vllm.processor import EXTENSION_FQCN, PROCESSOR_FQCN
from s1.backends.vllm.wire import FORCING_KEY, MASK_KEY, ForcingSpec, tokens_args
from s1.forcing.binding import MODES, encode
from s1.forcing.drive import run_rounds
from s1.forcing.formats import ReasoningFormat
from s1.forcing.machine import Phase
from s1.forcing.request import Branch, Request
from s1.forcing.rounds import RoundResult, RoundSpec
from s1.forcing.sequence import Sequence, replay
from s1.records import FinishReason, Generation

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(kw_only=True, eq=False)
class VLLMSequence(Sequence):
    """A sequence in the vLLM backend: also its engine request key and its images."""

    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    images: list[Any] = field(default_factory=list)  # PIL images, sent as `multi_modal_data` with every call


def engine_options(*, dtype: str = "auto", tensor_parallel_size: int = 1, data_parallel_size: int = 1,
                   max_model_len: int | None = None, gpu_memory_utilization: float = 0.9,
                   enable_prefix_caching: bool = True, max_num_seqs: int | None = None, seed: int = 0,
                   trust_remote_code: bool = False, enforce_eager: bool = False) -> dict[str, Any]:
    """Validated `vllm.LLM` keyword arguments; a bad value raises naming the option."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    for name, value, minimum in (("tensor_parallel_size", tensor_parallel_size, 1),
                                 ("data_parallel_size", data_parallel_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    for name, value in (("max_model_len", max_model_len), ("max_num_seqs", max_num_seqs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(gpu_memory_utilization, bool) or not isinstance(gpu_memory_utilization, int | float) or not (
            0 < gpu_memory_utilization <= 1):
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}")
    if data_parallel_size > 1:
        raise ValueError(
            "data_parallel_size > 1: vLLM's offline engine runs one data-parallel rank per process; run one "
            "`s1` process per GPU group on a slice of the prompts, or serve with `vllm serve "
            "--data-parallel-size N --logits-processors " + PROCESSOR_FQCN + "`"
        )
    opts: dict[str, Any] = dict(dtype=dtype, tensor_parallel_size=tensor_parallel_size, seed=seed,
                                gpu_memory_utilization=float(gpu_memory_utilization),
                                enable_prefix_caching=enable_prefix_caching, trust_remote_code=trust_remote_code,
                                enforce_eager=enforce_eager)
    if max_model_len is not None:
        opts["max_model_len"] = max_model_len
    if max_num_seqs is not None:
        opts["max_num_seqs"] = max_num_seqs
    return opts


def make_llm(model: str, **options: Any) -> Any:
    """A `vllm.LLM` with the forcing processor and its report RPC installed.

    The processor implements the V1 logits-processor interface, so the V1 model runner is selected
    (`VLLM_USE_V2_MODEL_RUNNER=0`) unless the environment already chose.
    """
    if os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "0") not in ("0", "false", "False"):
        raise ValueError("the s1 vLLM backend needs the V1 model runner; unset VLLM_USE_V2_MODEL_RUNNER or set it to 0")
    os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    from vllm import LLM

    return LLM(model=model, logits_processors=[PROCESSOR_FQCN], worker_extension_cls=EXTENSION_FQCN, **options)


class VLLMBackend(EngineBackend):
    """Budget forcing on a vLLM engine (continuous batching; the engine schedules, s1 plugs in)."""

    name = "vllm"
    sequence_kind = VLLMSequence

    def __init__(self, llm: Any, tokenizer: Any = None, format: str | ReasoningFormat = "auto", mode: str = "auto",
                 batch_size: int = 256, context_length: int | None = None):
        self.llm = llm
        model_config = llm.llm_engine.model_config
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_config.tokenizer,
                                                      trust_remote_code=model_config.trust_remote_code)
        generation = model_config.try_get_generation_config() or {}
        super().__init__(tokenizer, format, generation.get("eos_token_id"), mode, batch_size,
                         context_length or model_config.max_model_len)
        if generation.get("do_sample") is False:
            self.default_temperature = 0.0
        elif generation.get("temperature"):
            self.default_temperature = float(generation["temperature"])
        self.reused_cache_tokens = 0  # prompt tokens served from vLLM's prefix cache
        self._tokens_args: dict[int, dict[str, Any]] = {}
        self._processor: Any = None

    @classmethod
    def from_pretrained(cls, model: str, *, format: str | ReasoningFormat = "auto", mode: str = "auto",
                        batch_size: int = 256, device: str = "auto", gguf_file: str | None = None,
                        tokenizer: str | None = None, **options: Any) -> VLLMBackend:
        """Start an engine on `model` (a Hub id or local directory); `options` go to `engine_options`.
        vLLM runs on the platform it was built for, so `device` must stay "auto"."""
        if device != "auto":
            raise ValueError(f"device must be 'auto' with the vLLM backend (it uses the platform vLLM was built "
                             f"for), got {device!r}")
        if gguf_file is not None:
            raise ValueError("gguf_file is not supported by the s1 vLLM backend; pass a model directory or Hub id")
        llm = make_llm(model, **engine_options(**options), **({"tokenizer": tokenizer} if tokenizer else {}))
        return cls(llm, format=format, mode=mode, batch_size=batch_size)

    # -- the contract --------------------------------------------------------------------------------
    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Each branch is submitted as prompt + emitted ids, so vLLM's prefix cache serves the thinking the
        longest run already computed; only the answer is new."""
        results: list[Generation | None] = [None] * len(branches)
        for first in range(0, len(branches), self.batch_size):
            batch = [(i, self.start_branch(branches[i])) for i in range(first, min(first + self.batch_size,
                                                                                  len(branches)))]
            self.finish_batch(results, batch, self.run_rounds)
        return [r for r in results if r is not None]

    # -- sequences -----------------------------------------------------------------------------------
    def _render_images(self, req: Request, fmt: ReasoningFormat) -> Rendered:
        """vLLM expands each image placeholder itself, so the prompt ids hold one placeholder per image and
        the prompt tokens exclude the image tokens (never thinking either way)."""
        images = [load_image(src, f"request {req.id!r}: image {k}") for k, src in enumerate(req.image_sources())]
        prompt = fmt.ensure_open(self._chat_template_owner().apply_chat_template(
            req.chat(), tokenize=False, add_generation_prompt=True))
        return Rendered(prompt, list(encode(self.tokenizer, prompt)), {"images": images})

    def _chat_template_owner(self) -> Any:
        """What renders image chats: the model's processor (Qwen2-VL keeps its chat template there)."""
        if self._processor is None:
            from transformers import AutoProcessor

            config = self.llm.llm_engine.model_config
            try:
                self._processor = AutoProcessor.from_pretrained(config.tokenizer,
                                                                trust_remote_code=config.trust_remote_code)
            except (OSError, ValueError) as exc:
                raise ValueError(f"images need the model's processor, which cannot be loaded: {exc}") from None
        return self._processor

    def _forcing_params(self, s: VLLMSequence, max_tokens: int) -> Any:
        """A request whose every token the engine's forcing machine picks (vLLM emits it greedily, with its
        own penalties off: the machine's sampler applies them)."""
        from vllm import SamplingParams

        tokens = s.machine.tokens
        if id(tokens) not in self._tokens_args:
            self._tokens_args[id(tokens)] = tokens_args(tokens)
        spec = ForcingSpec.of(s.key, s.machine, self._tokens_args[id(tokens)], s.policy.thinking,
                              s.policy.answer_sampling, s.request.sample_index, self.vocab_limit)
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, stop_token_ids=sorted(tokens.answer_stops),
                              detokenize=False, skip_special_tokens=False, extra_args={FORCING_KEY: spec.to_args()})

    def _round_params(self, s: VLLMSequence, spec: RoundSpec) -> Any:
        """A thinking round: vLLM samples with the thinking settings and stops at an end of thinking."""
        from vllm import SamplingParams

        t = spec.sampling
        seed = None if t.greedy else (stream_seed(t, s.request.sample_index) + spec.round) % (2**31)
        mask: dict[str, Any] = {"ban": sorted(spec.ban) if spec.min_tokens >= spec.quota else [],
                                "vocab_limit": self.vocab_limit}
        return SamplingParams(
            temperature=t.temperature, top_p=t.top_p, top_k=t.top_k if t.top_k else -1, seed=seed,
            repetition_penalty=t.repetition_penalty, presence_penalty=t.presence_penalty,
            frequency_penalty=t.frequency_penalty, max_tokens=spec.quota,
            min_tokens=spec.min_tokens if spec.min_tokens < spec.quota else 0,
            stop=list(spec.stop_strings) or None, stop_token_ids=sorted(spec.stop_ids | {s.machine.tokens.end_token}),
            include_stop_str_in_output=True, skip_special_tokens=False, extra_args={MASK_KEY: mask},
        )

    def _run(self, seqs: list[VLLMSequence], params: list[Any]) -> list[list[int]]:
        """One engine call from token ids; returns each request's new tokens."""
        prompts = [{"prompt_token_ids": s.context, **({"multi_modal_data": {"image": s.images}} if s.images else {})}
                   for s in seqs]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        self.reused_cache_tokens += sum(o.num_cached_tokens or 0 for o in outs)
        return [list(o.outputs[0].token_ids) for o in outs]

    def _reports(self, seqs: list[VLLMSequence]) -> dict[str, set[int]]:
        """Where each request's engine-side machine replaced a proposal (merged over workers)."""
        merged: dict[str, set[int]] = {}
        for worker in self.llm.collective_rpc("s1_forcing_reports", args=([s.key for s in seqs],)):
            for key, report in (worker or {}).items():
                merged.setdefault(key, {int(p) for p in report})
        return merged

    # -- single pass ---------------------------------------------------------------------------------
    def _single_pass(self, seqs: list[VLLMSequence]) -> None:  # type: ignore[override]
        outs = self._run(seqs, [self._forcing_params(s, s.limit) for s in seqs])
        reports = self._reports(seqs)
        for s, new in zip(seqs, outs, strict=True):
            s.emitted.extend(replay(s.machine, new, reports.get(s.key, set())))
            if not s.machine.done:  # the engine stopped first (max_tokens / max_model_len): never hide it
                s.machine.finish(FinishReason.LENGTH)

    # -- rounds ----------------------------------------------------------------------------------------
    def run_rounds(self, seqs: list[Sequence]) -> None:
        run_rounds(seqs, self.stops, self._round_batch, self.text)

    def _round_batch(self, batch: list[tuple[Sequence, RoundSpec]]) -> list[RoundResult]:
        """One engine call for a round of every sequence: thinking rounds sample in vLLM and stop at an end
        of thinking; answer rounds run through the forcing processor (their own seeded sampler, as in a
        single pass), replayed here."""
        seqs: list[VLLMSequence] = [s for s, _ in batch]  # type: ignore[misc]
        params = [self._round_params(s, spec) if spec.phase is Phase.THINK else self._forcing_params(s, spec.quota + 1)
                  for s, spec in batch]
        outs = self._run(seqs, params)
        answering = [s for s, spec in batch if spec.phase is Phase.ANSWER]
        reports = self._reports(answering) if answering else {}
        results = []
        for (s, spec), new in zip(batch, outs, strict=True):
            if spec.phase is Phase.ANSWER and reports.get(s.key):  # nothing is replaced while answering
                raise RuntimeError(f"the engine replaced answer tokens of {s.request.id!r}")
            results.append(RoundResult(new))
        return results


__all__ = ["MODES", "VLLMBackend", "engine_options", "make_llm", "replay"]
