"""Transformers backend: budget forcing inside `model.generate`.

Single pass (the default when every end of thinking is one atomic token): `ForcingLogitsProcessor`
asks each sequence's `ForcingMachine` for the next token, samples it itself when nothing is forced, and
returns a one-hot row that greedy decoding then emits. No re-prefill, no batch-wide rounds.

Rounds (formats whose closer spans several tokens, e.g. plain-text `</think>`, and `mode="multi"`):
the forcing runtime's round loop (`s1.forcing.rounds`) runs; each round here is one `generate` call
per phase over the batch. Both paths make identical tokens under greedy decoding; that is a test.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
    StopStringCriteria,
)
from transformers.generation.utils import GenerationMixin

from s1.backends.base import EngineBackend, Rendered
from s1.backends.hf.prefix_cache import RetainedRow, prefixed_batch, reusable
from s1.backends.hf.processors import ForcingLogitsProcessor, HFSequence, RoundLogitsProcessor
from s1.backends.images import load_image
from s1.backends.sampling import RowSampler
from s1.forcing.drive import run_rounds
from s1.forcing.formats import ReasoningFormat
from s1.forcing.machine import Phase
from s1.forcing.policy import BudgetPolicy
from s1.forcing.request import Branch, Request
from s1.forcing.rounds import RoundResult, RoundSpec
from s1.forcing.sequence import Sequence
from s1.records import FinishReason, Generation

# transformers renamed generate's KV-cache argument (and output field) from `past_key_values` to `cache`
CACHE = "cache" if "cache" in inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters \
    else "past_key_values"
BRANCH_FIRST_ROUND = 4  # branched answers decode in rounds of 4, 8, 16, ... tokens; finished rows then leave

RoundBatch = list[tuple[Sequence, RoundSpec]]


class HFBackend(EngineBackend):
    """Budget forcing on any transformers causal LM (batched, left-padded).

    Vision-language models (Qwen2-VL, Qwen2.5-VL): pass the model's processor as `tokenizer` (or as
    `processor`). Requests with images then go through the processor's chat template and image
    processing; the pixel inputs are passed to every `generate` call beside the token ids.
    """

    name = "hf"
    sequence_kind = HFSequence

    def __init__(self, model: Any, tokenizer: Any, format: str | ReasoningFormat = "auto",
                 mode: str = "auto", batch_size: int = 16, context_length: int | None = None,
                 answer_batch_size: int | None = None, processor: Any = None):
        if processor is None and hasattr(tokenizer, "image_processor"):  # a processor given as the tokenizer
            processor, tokenizer = tokenizer, tokenizer.tokenizer
        self.processor = processor
        self.model = model.eval()
        gen_config = getattr(model, "generation_config", None)
        super().__init__(tokenizer, format, getattr(gen_config, "eos_token_id", None), mode, batch_size,
                         context_length or getattr(model.config.get_text_config(), "max_position_embeddings", None))
        if gen_config is not None and not getattr(gen_config, "do_sample", True):
            self.default_temperature = 0.0
        elif gen_config is not None and getattr(gen_config, "temperature", None):
            self.default_temperature = float(gen_config.temperature)
        # Branched answers (sweeps) are short: a wider batch finishes them in fewer decode steps.
        self.answer_batch_size = answer_batch_size or 4 * batch_size
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.binding.eos_ids)
        self._stop_criteria: dict[tuple[str, ...], StopStringCriteria] = {}
        self.reused_cache_tokens = 0  # prefill tokens saved by KV-cache reuse (rounds and branches)
        self._retained: dict[tuple[str, int], RetainedRow] | None = None

    @classmethod
    def from_pretrained(cls, model: str, *, gguf_file: str | None = None, device: str = "auto",
                        dtype: str = "auto", trust_remote_code: bool = False, tokenizer: str | None = None,
                        **kwargs: Any) -> HFBackend:
        from s1.backends.images import is_vision_model, load_vision_model
        from s1.backends.loading import load_hf

        if gguf_file is None and is_vision_model(model, trust_remote_code):
            m, tok = load_vision_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            m, tok = load_hf(model, gguf_file=gguf_file, device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code, tokenizer=tokenizer)
        return cls(m, tok, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- the contract --------------------------------------------------------------------------------
    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Inside `retain_prefixes()`, a branch of a retained row continues from that row's KV cache."""
        results: list[Generation | None] = [None] * len(branches)
        retained = self._retained or {}
        groups: dict[int, list[int]] = {}  # branches batched per source cache (or none: -1)
        for i, b in enumerate(branches):
            src = retained.get((b.request.id, b.request.sample_index))
            groups.setdefault(id(src.cache) if src else -1, []).append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: len(branches[i].emitted))  # similar cuts share a batch: less padding
            for first in range(0, len(indices), self.answer_batch_size):
                batch = []
                for i in indices[first : first + self.answer_batch_size]:
                    src = retained.get((branches[i].request.id, branches[i].request.sample_index))
                    rendered = Rendered(src.prompt, src.prompt_ids) if src else None
                    batch.append((i, self.start_branch(branches[i], rendered)))

                def answer(seqs: list[Sequence]) -> None:
                    engine = _BranchAnswers.over(self, seqs, retained) or self._round_batch
                    run_rounds(seqs, self.stops, engine, self.text)

                self.finish_batch(results, batch, _inference(answer))
        return [r for r in results if r is not None]

    @contextmanager
    def retain_prefixes(self) -> Iterator[None]:
        """Keep each single-pass batch's KV cache until the block ends, so `continue_answers` can branch
        from it instead of re-prefilling. Memory: one batch's cache per `generate` batch in the block
        (a sweep generates one batch at a time), plus one branch batch's selected copy."""
        previous, self._retained = self._retained, {}
        try:
            yield
        finally:
            self._retained = previous

    # -- sequences -----------------------------------------------------------------------------------
    def _sequence_state(self, req: Request, policy: BudgetPolicy) -> dict[str, Any]:
        return {"think_sampler": RowSampler(policy.thinking, req.sample_index),
                "answer_sampler": RowSampler(policy.answer_sampling, req.sample_index)}

    def _render_images(self, req: Request, fmt: ReasoningFormat) -> Rendered:
        """An image prompt through the processor: its chat template (image placeholders before the text),
        then its image processing, which expands each placeholder to the image's token count."""
        if self.processor is None:
            raise ValueError(f"request {req.id!r} has images, but this backend has no processor: load a "
                             "vision-language model (e.g. Qwen2-VL) or pass HFBackend(model, processor)")
        images = [load_image(src, f"request {req.id!r}: image {k}") for k, src in enumerate(req.image_sources())]
        prompt = fmt.ensure_open(self.processor.apply_chat_template(
            req.chat(), tokenize=False, add_generation_prompt=True))
        enc = self.processor(text=[prompt], images=images, return_tensors="pt")
        prompt_ids = enc["input_ids"][0].tolist()
        image_id = getattr(self.processor, "image_token_id", None)
        vision = {k: v for k, v in enc.items() if k in ("pixel_values", "image_grid_thw", "image_sizes")}
        return Rendered(prompt, prompt_ids, {"vision": vision},
                        {"image_tokens": sum(t == image_id for t in prompt_ids)})

    def _vision_kwargs(self, seqs: list[HFSequence], ids: torch.Tensor) -> dict[str, Any]:
        """The pixel inputs of a batch's image rows, in row order ({} when no row has images). Every call
        re-prefills such rows: position ids (Qwen2-VL's M-RoPE) are derived from the whole prompt."""
        rows = [s.vision for s in seqs if s.vision]
        if not rows:
            return {}
        out = {k: torch.cat([r[k] for r in rows]).to(self.device) for k in rows[0]}
        image_id = getattr(self.processor, "image_token_id", None)
        out["mm_token_type_ids"] = (ids == image_id).long()
        return out

    # -- one generate call ---------------------------------------------------------------------------
    def _batch(self, contexts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, ctx in enumerate(contexts):
            ids[row, width - len(ctx):] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _run(self, seqs: list[HFSequence], processor: LogitsProcessor, max_new: int, eos: set[int],
             stop_strings: tuple[str, ...] = (), retain: bool = False) -> list[list[int]]:
        """One `generate` call over the sequences' left-padded contexts; returns each row's new tokens.

        A round of one sequence continues from that sequence's KV cache (cropped to the prefix it shares
        with the new context, since a stop token may have been replaced), so later rounds prefill only
        what was appended. Batched rounds re-prefill: left padding shifts each row. `retain` keeps the
        batch's cache for branches (`retain_prefixes`). A batch with images neither reuses nor keeps a
        cache.
        """
        contexts = [s.context for s in seqs]
        ids, mask = self._batch(contexts)
        kwargs: dict[str, Any] = {}
        owner = seqs[0] if len(seqs) == 1 and not retain else None
        if any(s.vision for s in seqs):
            kwargs.update(self._vision_kwargs(seqs, ids))
            owner, retain = None, False
        config = GenerationConfig(
            do_sample=False, max_new_tokens=max(1, max_new), eos_token_id=sorted(eos), pad_token_id=self.pad_id,
            temperature=None, top_p=None, top_k=None, return_dict_in_generate=owner is not None or retain,
        )
        if stop_strings:
            if stop_strings not in self._stop_criteria:  # its vocabulary tables are costly: build them once
                self._stop_criteria[stop_strings] = StopStringCriteria(self.tokenizer, list(stop_strings))
            kwargs["stopping_criteria"] = StoppingCriteriaList([self._stop_criteria[stop_strings]])
        if owner is not None and owner.cache is not None:
            keep = min(_common_prefix(owner.cache_ids, contexts[0]), len(contexts[0]) - 1)
            drop = owner.cache.get_seq_length() - keep
            if drop > 0:
                owner.cache.crop(-drop)
            kwargs[CACHE] = owner.cache
            self.reused_cache_tokens += keep
        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                  logits_processor=LogitsProcessorList([processor]), **kwargs)
        if owner is None and not retain:
            return out[:, ids.shape[1]:].tolist()
        cache = getattr(out, CACHE)
        if retain and self._retained is not None and reusable(cache):
            for row, s in enumerate(seqs):
                self._retained[s.request.id, s.request.sample_index] = RetainedRow(
                    cache, row, ids.shape[1], s.prompt, s.prompt_ids, s.emitted)
        if owner is not None:
            owner.cache = cache
            owner.cache_ids = out.sequences[0, : owner.cache.get_seq_length()].tolist()
        return out.sequences[:, ids.shape[1]:].tolist()

    # -- single pass ---------------------------------------------------------------------------------
    def _single_pass(self, seqs: list[HFSequence]) -> None:  # type: ignore[override]
        with torch.inference_mode():
            eos = set().union(*(s.machine.tokens.answer_stops for s in seqs))
            self._run(seqs, ForcingLogitsProcessor(seqs, self.vocab_limit), max(s.limit for s in seqs), eos,
                      retain=self._retained is not None)
        for s in seqs:
            if not s.machine.done:  # engine limit reached first; should not happen, never hide it
                s.machine.finish(FinishReason.LENGTH)

    # -- rounds ----------------------------------------------------------------------------------------
    def run_rounds(self, seqs: list[Sequence]) -> None:
        with torch.inference_mode():
            run_rounds(seqs, self.stops, self._round_batch, self.text)

    def _round_batch(self, batch: RoundBatch) -> list[RoundResult]:
        """One round of every sequence in `batch`: a `generate` call for those thinking, one for those
        answering (their sampling and stops differ)."""
        results: dict[int, RoundResult] = {}
        for phase in (Phase.THINK, Phase.ANSWER):
            part = [(k, s, spec) for k, (s, spec) in enumerate(batch) if spec.phase is phase]
            if part:
                for (k, _, _), ids in zip(part, self._round(phase, [(s, spec) for _, s, spec in part]), strict=True):
                    results[k] = RoundResult(ids)
        return [results[k] for k in range(len(batch))]

    def _round(self, phase: Phase, batch: RoundBatch) -> list[list[int]]:
        seqs: list[HFSequence] = [s for s, _ in batch]  # type: ignore[misc]
        specs = [spec for _, spec in batch]
        end = seqs[0].machine.tokens.end_token
        proc = RoundLogitsProcessor(
            [s.think_sampler if phase is Phase.THINK else s.answer_sampler for s in seqs],
            [spec.ban for spec in specs], [spec.quota for spec in specs], end, self.vocab_limit,
            [spec.min_tokens for spec in specs], _histories(seqs))
        stops = set().union(*(spec.stop_ids for spec in specs)) | {end}
        strings = tuple(dict.fromkeys(x for spec in specs for x in spec.stop_strings))
        return self._run(seqs, proc, max(spec.quota for spec in specs), stops, stop_strings=strings)


class _BranchAnswers:
    """The answer rounds of branches whose thinking a retained row already holds in its KV cache.

    The first round continues from the retained cache (selected rows, cropped, masked past each cut);
    every later round continues from the previous round's cache. Rounds decode 4, 8, 16, ... tokens;
    rows whose sequence finished leave the batch (their cache rows dropped), so a few long answers do
    not keep every short one decoding to the cap.
    """

    def __init__(self, backend: HFBackend, seqs: list[HFSequence], batch: tuple[torch.Tensor, torch.Tensor, Any]):
        self.backend, self.rows = backend, list(seqs)
        self.ids, self.mask, self.cache = batch
        self.round_tokens = BRANCH_FIRST_ROUND

    @classmethod
    def over(cls, backend: HFBackend, seqs: list[Sequence], retained: dict[tuple[str, int], RetainedRow]
             ) -> _BranchAnswers | None:
        """The engine for `seqs` if each continues a retained row of one cache, else None (re-prefill)."""
        sources = [retained.get((s.request.id, s.request.sample_index)) for s in seqs]
        if not seqs or any(src is None for src in sources):
            return None
        shared = [src.usable(s.emitted) for src, s in zip(sources, seqs, strict=True)]  # type: ignore[union-attr]
        if min(shared) <= 0:
            return None
        new = [s.emitted[k:] for s, k in zip(seqs, shared, strict=True)]
        batch = prefixed_batch(sources, shared, new, backend.pad_id, backend.device)  # type: ignore[arg-type]
        backend.reused_cache_tokens += sum(len(src.prompt_ids) + k for src, k in zip(sources, shared, strict=True))
        return cls(backend, seqs, batch)  # type: ignore[arg-type]

    def __call__(self, batch: RoundBatch) -> list[RoundResult]:
        wanted = [s for s, _ in batch]
        if any(spec.phase is not Phase.ANSWER for _, spec in batch):
            raise RuntimeError("branched answers only run answer rounds")
        position = {id(s): k for k, s in enumerate(self.rows)}
        keep = [position[id(s)] for s in wanted]
        if keep != list(range(len(self.rows))):  # finished rows leave the batch, their cache rows too
            index = torch.tensor(keep, dtype=torch.long, device=self.backend.device)
            self.ids, self.mask = self.ids[index], self.mask[index]
            self.cache.batch_select_indices(index)
            self.rows = [self.rows[k] for k in keep]
        quotas = [min(spec.quota, self.round_tokens) for _, spec in batch]
        self.round_tokens *= 2
        stops = set().union(*(spec.stop_ids for _, spec in batch))
        b = self.backend
        proc = RoundLogitsProcessor([s.answer_sampler for s in self.rows], [frozenset()] * len(self.rows), quotas,
                                    self.rows[0].machine.tokens.end_token, b.vocab_limit, None, _histories(self.rows))
        config = GenerationConfig(do_sample=False, max_new_tokens=max(quotas), eos_token_id=sorted(stops),
                                  pad_token_id=b.pad_id, temperature=None, top_p=None, top_k=None,
                                  return_dict_in_generate=True)
        out = b.model.generate(input_ids=self.ids, attention_mask=self.mask, generation_config=config,
                               logits_processor=LogitsProcessorList([proc]), **{CACHE: self.cache})
        new = out.sequences[:, self.ids.shape[1]:]
        self.ids, self.cache = out.sequences, getattr(out, CACHE)
        self.mask = torch.cat([self.mask, torch.ones_like(new)], dim=1)
        return [RoundResult(row[:quota]) for row, quota in zip(new.tolist(), quotas, strict=True)]


def _histories(seqs: list[HFSequence]) -> list[tuple[list[int], int]] | None:
    """Each row's tokens before a round, for penalties (None when no row's sampling has any)."""
    if not any(s.think_sampler.settings.penalized or s.answer_sampler.settings.penalized for s in seqs):
        return None
    return [(s.context, len(s.emitted)) for s in seqs]


def _inference(run: Any) -> Any:
    """`run` under `torch.inference_mode()` (no autograd bookkeeping while generating)."""
    def wrapped(seqs: list[Sequence]) -> None:
        with torch.inference_mode():
            run(seqs)
    return wrapped


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
