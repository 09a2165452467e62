"""vLLM backend: budget forcing inside vLLM's engine, in one pass, with the transformers backend's semantics.

Single pass (when every end of thinking is one atomic token): each request carries its policy in
`SamplingParams.extra_args`; `BudgetForcingLogitsProcessor` (s1/backends/vllm_processor.py) drives its
`ForcingMachine` inside the engine, so vLLM keeps scheduling continuously: no re-prefill, no rounds
waiting for the slowest sequence. Afterwards the frontend replays each output through a fresh machine
(told where the engine's machine replaced a proposal), which rebuilds the counts and marked segments
and checks that both machines agree token for token.

Multi-round (multi-token closers such as plain-text `</think>`, and `mode="multi"`): rounds continue
from token ids with prefix caching on, through the same helpers as the transformers backend
(`s1.backends.rounds`). Sweeps branch answers by submitting prompt + emitted ids; prefix caching
serves the shared thinking.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from s1.backends.base import Branch, Request
from s1.backends.images import load_image
from s1.backends.rounds import InFlight, absorb_thinking, finish_batch, machine_record, run_requests, think_quota
from s1.backends.sampling import stream_seed
from s1.backends.tokens import MODES, bind_engine_format, check_engine_args, encode
from s1.backends.vllm_processor import (
    EXTENSION_FQCN,
    FORCING_KEY,
    MASK_KEY,
    PROCESSOR_FQCN,
    spec_args,
    tokens_args,
)
from s1.budget import BudgetPolicy, ForcingMachine, ForcingTokens, Phase, PolicyError
from s1.formats import ReasoningFormat
from s1.records import Generation

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class _Seq(InFlight):
    """A request in flight here: also its engine request key, images and rounds run."""

    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    images: list[Any] = field(default_factory=list)  # PIL images, sent as `multi_modal_data` with every call
    rounds: int = 0


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


class VLLMBackend:
    """Budget forcing on a vLLM engine (continuous batching; the engine schedules, s1 plugs in)."""

    name = "vllm"

    def __init__(self, llm: Any, tokenizer: Any = None, format: str | ReasoningFormat = "auto", mode: str = "auto",
                 batch_size: int = 256, context_length: int | None = None):
        check_engine_args(mode, batch_size)
        self.llm = llm
        model_config = llm.llm_engine.model_config
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_config.tokenizer,
                                                      trust_remote_code=model_config.trust_remote_code)
        self.tokenizer = tokenizer
        gen_eos = (model_config.try_get_generation_config() or {}).get("eos_token_id")
        self.format, self.binding, self.single_pass = bind_engine_format(format, tokenizer, gen_eos, mode)
        self.mode = mode
        self.batch_size = batch_size
        self.vocab_limit = len(tokenizer)
        self.context_length = context_length or model_config.max_model_len
        self.reused_cache_tokens = 0  # prompt tokens served from vLLM's prefix cache
        self._tokens_cache: dict[tuple[str, ...] | None, ForcingTokens] = {}
        self._tokens_args: dict[int, dict[str, Any]] = {}
        self._processor: Any = None

    @classmethod
    def from_pretrained(cls, model: str, *, format: str | ReasoningFormat = "auto", mode: str = "auto",
                        batch_size: int = 256, device: str = "auto", gguf_file: str | None = None,
                        **options: Any) -> VLLMBackend:
        """Start an engine on `model` (a Hub id or local directory); `options` go to `engine_options`.
        vLLM runs on the platform it was built for, so `device` must stay "auto"."""
        if device != "auto":
            raise ValueError(f"device must be 'auto' with the vLLM backend (it uses the platform vLLM was built "
                             f"for), got {device!r}")
        if gguf_file is not None:
            raise ValueError("gguf_file is not supported by the s1 vLLM backend; pass a model directory or Hub id")
        llm = make_llm(model, **engine_options(**options))
        return cls(llm, format=format, mode=mode, batch_size=batch_size)

    # -- public API ------------------------------------------------------------------------------
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        """Generate for every request; a request that cannot run is returned as a failed record."""
        run = self._single_pass if self.single_pass else self._multi_round
        return run_requests(requests, policy or BudgetPolicy(), self._start, self.batch_size, run, self._failed,
                            self._record)

    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Finish branched generations (budget sweeps): each is submitted as prompt + emitted ids, so vLLM's
        prefix cache serves the thinking the longest run already computed; only the answer is new."""
        results: list[Generation | None] = [None] * len(branches)
        for start in range(0, len(branches), self.batch_size):
            batch = []
            for i in range(start, min(start + self.batch_size, len(branches))):
                b = branches[i]
                seq = self._start(b.request, b.policy)
                seq.machine, seq.emitted = b.machine, list(b.emitted)
                seq.emitted.extend(seq.machine.take_forced())
                batch.append((i, seq))
            finish_batch(results, batch, self._multi_round, self._failed, self._record)
        return [r for r in results if r is not None]

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        """The format's forced strings as this tokenizer's ids, for `policy`'s ignore strings (cached)."""
        key = policy.ignore_strings
        if key not in self._tokens_cache:
            self._tokens_cache[key] = self.binding.forcing_tokens(self.tokenizer, policy)
        return self._tokens_cache[key]

    def thinking_budget(self, policy: BudgetPolicy, prompt_tokens: int) -> int:
        """`policy`'s thinking budget for a prompt of `prompt_tokens` tokens ("auto" resolved)."""
        reserve = self.forcing_tokens(policy).forced_reserve(policy)
        return policy.resolve_thinking_budget(self.context_length, prompt_tokens, reserve)

    # -- preparation -----------------------------------------------------------------------------
    def _start(self, req: Request, policy: BudgetPolicy) -> _Seq:
        images: list[Any] = []
        if req.image_sources():
            # vLLM expands each image placeholder itself, so prompt_ids hold one placeholder per image and
            # prompt_tokens exclude the image tokens (never thinking either way)
            images = [load_image(src, f"request {req.id!r}: image {k}") for k, src in enumerate(req.image_sources())]
            prompt = self.format.ensure_open(self._chat_template_owner().apply_chat_template(
                req.chat(), tokenize=False, add_generation_prompt=True))
            prompt_ids = list(encode(self.tokenizer, prompt))
        elif req.messages is not None:
            prompt = self.format.render_prompt(self.tokenizer, req.messages, system=req.system)
            prompt_ids = list(encode(self.tokenizer, prompt))
        else:
            prompt = self.format.ensure_open(req.prompt or "")
            prompt_ids = self.tokenizer.encode(prompt)
        tokens = self.forcing_tokens(policy)
        reserve = tokens.forced_reserve(policy)
        budget = self.thinking_budget(policy, len(prompt_ids))
        if len(prompt_ids) + budget + reserve + policy.max_answer_tokens > self.context_length:
            raise PolicyError(
                f"prompt ({len(prompt_ids)} tokens) + max_thinking_tokens ({budget}) + max_answer_tokens "
                f"({policy.max_answer_tokens}) + forced ({reserve}) exceeds the context length "
                f"({self.context_length}); raise max_model_len or lower the budgets"
            )
        return _Seq(req, policy, prompt, prompt_ids, ForcingMachine.for_policy(policy, tokens, budget), budget,
                    images=images)

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

    def _spec(self, s: _Seq) -> dict[str, Any]:
        tokens = s.machine.tokens
        if id(tokens) not in self._tokens_args:
            self._tokens_args[id(tokens)] = tokens_args(tokens)
        return spec_args(s.key, s.machine, self._tokens_args[id(tokens)], s.policy.thinking,
                         s.policy.answer_sampling, s.request.sample_index, self.vocab_limit)

    def _forcing_params(self, s: _Seq) -> Any:
        """A request whose every token the engine's forcing machine picks (vLLM emits it greedily)."""
        from vllm import SamplingParams

        m = s.machine
        if m.phase is Phase.ANSWER:
            max_tokens = m.max_answer - m.answer_tokens + 1
        else:
            max_tokens = s.budget + m.tokens.forced_reserve(s.policy) + s.policy.max_answer_tokens + 1
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, stop_token_ids=sorted(m.tokens.answer_stops),
                              detokenize=False, skip_special_tokens=False, extra_args={FORCING_KEY: self._spec(s)})

    def _round_params(self, s: _Seq, quota: int, ban: frozenset[int]) -> Any:
        """A thinking round: vLLM samples with the thinking settings and stops at an end of thinking."""
        from vllm import SamplingParams

        t = s.policy.thinking
        seed = None if t.greedy else (stream_seed(t, s.request.sample_index) + s.rounds) % (2**31)
        stops = set(s.machine.tokens.end_triggers) | {s.machine.tokens.end_token}
        return SamplingParams(
            temperature=t.temperature, top_p=t.top_p, top_k=t.top_k if t.top_k else -1, seed=seed,
            max_tokens=max(1, quota), stop=list(self.binding.stop_strings) or None, stop_token_ids=sorted(stops),
            include_stop_str_in_output=True, skip_special_tokens=False,
            extra_args={MASK_KEY: {"ban": sorted(ban), "vocab_limit": self.vocab_limit}},
        )

    def _run(self, seqs: list[_Seq], params: list[Any]) -> list[list[int]]:
        """One engine call from token ids; returns each request's new tokens."""
        prompts = [{"prompt_token_ids": s.context, **({"multi_modal_data": {"image": s.images}} if s.images else {})}
                   for s in seqs]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        self.reused_cache_tokens += sum(o.num_cached_tokens or 0 for o in outs)
        return [list(o.outputs[0].token_ids) for o in outs]

    def _reports(self, seqs: list[_Seq]) -> dict[str, dict[int, int]]:
        """Where each request's engine-side machine replaced a proposal (merged over workers)."""
        merged: dict[str, dict[int, int]] = {}
        for worker in self.llm.collective_rpc("s1_forcing_reports", args=([s.key for s in seqs],)):
            for key, report in (worker or {}).items():
                merged.setdefault(key, {int(k): int(v) for k, v in report.items()})
        return merged

    # -- single pass -----------------------------------------------------------------------------
    def _single_pass(self, seqs: list[_Seq]) -> None:
        outs = self._run(seqs, [self._forcing_params(s) for s in seqs])
        reports = self._reports(seqs)
        for s, new in zip(seqs, outs, strict=True):
            s.emitted.extend(replay(s.machine, new, reports.get(s.key, {})))
            if not s.machine.done:  # the engine stopped first (max_tokens / max_model_len): never hide it
                s.machine.finish("length")

    # -- multi round -----------------------------------------------------------------------------
    def _multi_round(self, seqs: list[_Seq]) -> None:
        """Rounds until every machine is done: thinking rounds stop at an end of thinking (token or text);
        answers run through the forcing processor (their own seeded sampler, as in a single pass)."""
        while True:
            for s in seqs:
                s.emitted.extend(s.machine.take_forced())
            active = [s for s in seqs if not s.machine.done]
            if not active:
                return
            params, quotas = [], []
            for s in active:
                if s.machine.phase is Phase.THINK:
                    quota, ban = think_quota(s.machine, self.binding.closer_ids[0])
                    params.append(self._round_params(s, quota, ban))
                else:
                    quota = s.machine.max_answer - s.machine.answer_tokens
                    params.append(self._forcing_params(s))
                quotas.append(quota)
            outs = self._run(active, params)
            answering = [s for s in active if s.machine.phase is Phase.ANSWER]
            reports = self._reports(answering) if answering else {}
            for s, new, quota in zip(active, outs, quotas, strict=True):
                s.rounds += 1
                if s.machine.phase is Phase.THINK:
                    s.emitted.extend(absorb_thinking(s.machine, new[:quota], self.tokenizer, self.binding.stop_strings))
                else:
                    s.emitted.extend(replay(s.machine, new, reports.get(s.key, {})))
                    if not s.machine.done:
                        s.machine.finish("length")

    # -- records ---------------------------------------------------------------------------------
    def _failed(self, req: Request, policy: BudgetPolicy, error: str, prompt: str = "") -> Generation:
        return Generation.failed(req.id, error, sample_index=req.sample_index, prompt=prompt,
                                 setting=req.setting or policy.label(), backend=self.name)

    def _record(self, s: _Seq) -> Generation:
        label = f"{self.name}:{'single' if self.single_pass else 'multi'}"
        return machine_record(self.tokenizer, self.format, s, label)


def replay(machine: ForcingMachine, ids: list[int], replaced: dict[int, int]) -> list[int]:
    """Feed an engine's output through the frontend's machine. At the positions in `replaced` the
    engine's machine replaced a proposal (a natural end of thinking), so that proposal is fed there.
    Returns the tokens the machine emits; a disagreement with the engine is an error, never hidden."""
    out: list[int] = []
    for pos, token in enumerate(ids):
        if machine.done:
            break
        if pos in replaced:
            got = machine.feed(replaced[pos])
        else:
            forced = machine.forced()
            got = machine.feed(token if forced is None else forced)
        if got != token:
            raise RuntimeError(f"vLLM emitted token {token} at output position {pos} where the forcing machine "
                               f"emits {got}; engine and frontend disagree")
        out.append(got)
    return out


__all__ = ["MODES", "VLLMBackend", "engine_options", "make_llm", "replay"]
