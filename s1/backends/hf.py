"""Transformers backend: budget forcing inside `model.generate`.

Single pass (the default when every end of thinking is one atomic token): a `LogitsProcessor` asks
each sequence's `ForcingMachine` for the next token, samples it itself when nothing is forced, and
returns a one-hot row that greedy decoding then emits. No re-prefill, no batch-wide rounds.

Multi-round (formats whose closer spans several tokens, e.g. plain-text `</think>`, and the reference
path): each round generates until an end of thinking or the round's quota, feeds the tokens to the
same machine, appends what it forces, and re-submits. Both paths make identical tokens under greedy
decoding; that is a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
    StopStringCriteria,
)

from s1.backends.base import Branch, Request
from s1.backends.images import load_image
from s1.backends.prefix_cache import RetainedRow, prefixed_batch, reusable
from s1.backends.rounds import (
    InFlight,
    absorb_answer,
    absorb_thinking,
    finish_batch,
    machine_record,
    run_requests,
    think_quota,
)
from s1.backends.sampling import RowSampler, pick_rows
from s1.backends.tokens import bind_engine_format, check_engine_args, encode
from s1.budget import BudgetPolicy, ForcingMachine, Phase, PolicyError
from s1.formats import ReasoningFormat
from s1.records import Generation

BRANCH_FIRST_ROUND = 4  # branched answers decode in rounds of 4, 8, 16, ... tokens; finished rows then leave


@dataclass(kw_only=True)
class _Seq(InFlight):
    """A request in flight here: also its samplers, its KV cache between rounds and its image inputs."""

    think_sampler: RowSampler
    answer_sampler: RowSampler
    cache: Any = None  # KV cache from this sequence's last round (multi-round, one row at a time)
    cache_ids: list[int] = field(default_factory=list)
    vision: dict[str, torch.Tensor] | None = None  # the processor's pixel inputs for an image prompt
    image_tokens: int = 0  # prompt tokens that stand for images (in prompt_tokens, never in thinking)

    @property
    def sampler(self) -> RowSampler:
        return self.think_sampler if self.machine.phase is Phase.THINK else self.answer_sampler


def _one_hot_(scores: torch.Tensor, chosen: list[int]) -> torch.Tensor:
    scores.fill_(float("-inf"))
    scores[torch.arange(len(chosen), device=scores.device), torch.tensor(chosen, device=scores.device)] = 0.0
    return scores


class ForcingLogitsProcessor(LogitsProcessor):
    """Drives one `ForcingMachine` per batch row inside `generate` (single pass)."""

    def __init__(self, seqs: list[_Seq], vocab_limit: int):
        self.seqs = seqs
        self.vocab_limit = vocab_limit

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen: list[int] = [0] * len(self.seqs)
        free: list[int] = []
        for i, seq in enumerate(self.seqs):
            token = seq.machine.forced()
            if token is None:
                free.append(i)
            else:
                chosen[i] = seq.machine.feed(token)
        if free:
            samplers = [self.seqs[i].sampler for i in free]
            banned = [self.seqs[i].machine.banned() for i in free]
            proposals = pick_rows(scores, free, samplers, banned, self.vocab_limit)
            for i, token in zip(free, proposals, strict=True):
                chosen[i] = self.seqs[i].machine.feed(token)
        for i, token in enumerate(chosen):
            if len(self.seqs[i].machine.kinds) > len(self.seqs[i].emitted):
                self.seqs[i].emitted.append(token)
        return _one_hot_(scores, chosen)


class RoundLogitsProcessor(LogitsProcessor):
    """One multi-round round: per-row sampling, bans and a token quota (then the row is ended)."""

    def __init__(self, samplers: list[RowSampler], banned: list[frozenset[int]], quotas: list[int],
                 end_token: int, vocab_limit: int):
        self.samplers, self.banned, self.quotas = samplers, banned, quotas
        self.end_token, self.vocab_limit = end_token, vocab_limit
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = [i for i, q in enumerate(self.quotas) if self.steps < q]
        picked = pick_rows(scores, rows, [self.samplers[i] for i in rows], [self.banned[i] for i in rows],
                           self.vocab_limit)
        chosen = [self.end_token] * len(self.quotas)
        for i, token in zip(rows, picked, strict=True):
            chosen[i] = token
        self.steps += 1
        return _one_hot_(scores, chosen)


class HFBackend:
    """Budget forcing on any transformers causal LM (batched, left-padded).

    Vision-language models (Qwen2-VL, Qwen2.5-VL): pass the model's processor as `tokenizer` (or as
    `processor`). Requests with images then go through the processor's chat template and image
    processing; the pixel inputs are passed to every `generate` call beside the token ids.
    """

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, format: str | ReasoningFormat = "auto",
                 mode: str = "auto", batch_size: int = 16, context_length: int | None = None,
                 answer_batch_size: int | None = None, processor: Any = None):
        if processor is None and hasattr(tokenizer, "image_processor"):  # a processor given as the tokenizer
            processor, tokenizer = tokenizer, tokenizer.tokenizer
        self.processor = processor
        check_engine_args(mode, batch_size)
        self.model = model.eval()
        self.tokenizer = tokenizer
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self.format, self.binding, self.single_pass = bind_engine_format(format, tokenizer, gen_eos, mode)
        self.mode = mode
        self.batch_size = batch_size
        # Branched answers (sweeps) are short: a wider batch finishes them in fewer decode steps.
        self.answer_batch_size = answer_batch_size or 4 * batch_size
        self.vocab_limit = len(tokenizer)
        self.context_length = context_length or getattr(model.config.get_text_config(), "max_position_embeddings",
                                                        None)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.binding.eos_ids)
        self._tokens_cache: dict[tuple[str, ...] | None, Any] = {}
        self._stop_criteria: StopStringCriteria | None = None
        self.reused_cache_tokens = 0  # prefill tokens saved by KV-cache reuse (rounds and branches)
        self._retained: dict[tuple[str, int], RetainedRow] | None = None

    @classmethod
    def from_pretrained(cls, model: str, *, gguf_file: str | None = None, device: str = "auto",
                        dtype: str = "auto", trust_remote_code: bool = False, **kwargs: Any) -> HFBackend:
        from s1.backends.images import is_vision_model, load_vision_model
        from s1.backends.loading import load_hf

        if gguf_file is None and is_vision_model(model, trust_remote_code):
            m, tok = load_vision_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            m, tok = load_hf(model, gguf_file=gguf_file, device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code)
        return cls(m, tok, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- public API ----------------------------------------------------------------------------
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        """Generate for every request; a request that cannot run is returned as a failed record."""
        run = self._single_pass if self.single_pass else self._multi_round
        return run_requests(requests, policy or BudgetPolicy(), self._start, self.batch_size, _inference(run),
                            self._failed, self._record)

    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Finish branched generations: each carries the tokens already emitted (thinking up to its
        cut and the forced closer or cap) and the machine that emitted them; only the answer remains.
        Used by budget sweeps, which think once and branch an answer at every setting. Inside
        `retain_prefixes()`, a branch of a retained row continues from that row's KV cache."""
        results: list[Generation | None] = [None] * len(branches)
        retained = self._retained or {}
        groups: dict[int, list[int]] = {}  # branches batched per source cache (or none: -1)
        for i, b in enumerate(branches):
            src = retained.get((b.request.id, b.request.sample_index))
            groups.setdefault(id(src.cache) if src else -1, []).append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: len(branches[i].emitted))  # similar cuts share a batch: less padding
            for start in range(0, len(indices), self.answer_batch_size):
                batch = []
                for i in indices[start : start + self.answer_batch_size]:
                    src = retained.get((branches[i].request.id, branches[i].request.sample_index))
                    seq = self._start(branches[i].request, branches[i].policy,
                                      rendered=(src.prompt, src.prompt_ids) if src else None)
                    seq.machine, seq.emitted = branches[i].machine, list(branches[i].emitted)
                    batch.append((i, seq))

                def answer(seqs: list[_Seq]) -> None:
                    for s in seqs:
                        s.emitted.extend(s.machine.take_forced())
                    self._answer_from_prefixes([s for s in seqs if s.machine.phase is Phase.ANSWER
                                                and not s.machine.done], retained)
                    self._multi_round(seqs)

                finish_batch(results, batch, _inference(answer), self._failed, self._record)
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

    def thinking_budget(self, policy: BudgetPolicy, prompt_tokens: int) -> int:
        """`policy`'s thinking budget for a prompt of `prompt_tokens` tokens ("auto" resolved)."""
        reserve = self.forcing_tokens(policy).forced_reserve(policy)
        return policy.resolve_thinking_budget(self.context_length, prompt_tokens, reserve)

    def _failed(self, req: Request, policy: BudgetPolicy, error: str, prompt: str = "") -> Generation:
        return Generation.failed(req.id, error, sample_index=req.sample_index, prompt=prompt,
                                 setting=req.setting or policy.label(), backend=self.name)

    # -- preparation ---------------------------------------------------------------------------
    def forcing_tokens(self, policy: BudgetPolicy) -> Any:
        """The format's forced strings as this tokenizer's ids, for `policy`'s ignore strings (cached)."""
        key = policy.ignore_strings
        if key not in self._tokens_cache:
            self._tokens_cache[key] = self.binding.forcing_tokens(self.tokenizer, policy)
        return self._tokens_cache[key]

    def _start(self, req: Request, policy: BudgetPolicy, rendered: tuple[str, list[int]] | None = None) -> _Seq:
        vision, image_tokens = None, 0
        if rendered is not None:  # the prompt of a retained row this request continues
            prompt, prompt_ids = rendered
        elif req.image_sources():
            prompt, prompt_ids, vision, image_tokens = self._render_images(req)
        elif req.messages is not None:
            prompt = self.format.render_prompt(self.tokenizer, req.messages, system=req.system)
            prompt_ids = list(encode(self.tokenizer, prompt))
        else:
            prompt = self.format.ensure_open(req.prompt or "")
            prompt_ids = self.tokenizer.encode(prompt)
        tokens = self.forcing_tokens(policy)
        reserve = tokens.forced_reserve(policy)
        budget = self.thinking_budget(policy, len(prompt_ids))
        if self.context_length and len(prompt_ids) + budget + reserve + policy.max_answer_tokens > self.context_length:
            raise PolicyError(
                f"prompt ({len(prompt_ids)} tokens) + max_thinking_tokens ({budget}) + max_answer_tokens "
                f"({policy.max_answer_tokens}) + forced ({reserve}) exceeds the context length "
                f"({self.context_length})"
            )
        return _Seq(
            request=req, policy=policy, prompt=prompt, prompt_ids=prompt_ids,
            machine=ForcingMachine.for_policy(policy, tokens, budget),
            think_sampler=RowSampler(policy.thinking, req.sample_index),
            answer_sampler=RowSampler(policy.answer_sampling, req.sample_index),
            budget=budget, vision=vision, image_tokens=image_tokens,
        )

    def _render_images(self, req: Request) -> tuple[str, list[int], dict[str, torch.Tensor], int]:
        """An image prompt through the processor: its chat template (image placeholders before the text),
        then its image processing, which expands each placeholder to the image's token count."""
        if self.processor is None:
            raise ValueError(f"request {req.id!r} has images, but this backend has no processor: load a "
                             "vision-language model (e.g. Qwen2-VL) or pass HFBackend(model, processor)")
        images = [load_image(src, f"request {req.id!r}: image {k}") for k, src in enumerate(req.image_sources())]
        prompt = self.format.ensure_open(self.processor.apply_chat_template(
            req.chat(), tokenize=False, add_generation_prompt=True))
        enc = self.processor(text=[prompt], images=images, return_tensors="pt")
        prompt_ids = enc["input_ids"][0].tolist()
        image_id = getattr(self.processor, "image_token_id", None)
        image_tokens = sum(t == image_id for t in prompt_ids)
        vision = {k: v for k, v in enc.items() if k in ("pixel_values", "image_grid_thw", "image_sizes")}
        return prompt, prompt_ids, vision, image_tokens

    def _vision_kwargs(self, seqs: list[_Seq], ids: torch.Tensor) -> dict[str, Any]:
        """The pixel inputs of a batch's image rows, in row order ({} when no row has images). Every call
        re-prefills such rows: position ids (Qwen2-VL's M-RoPE) are derived from the whole prompt."""
        rows = [s.vision for s in seqs if s.vision]
        if not rows:
            return {}
        out = {k: torch.cat([r[k] for r in rows]).to(self.device) for k in rows[0]}
        image_id = getattr(self.processor, "image_token_id", None)
        out["mm_token_type_ids"] = (ids == image_id).long()
        return out

    def _batch(self, contexts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, ctx in enumerate(contexts):
            ids[row, width - len(ctx):] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _run(self, contexts: list[list[int]], processor: LogitsProcessor, max_new: int, eos: set[int],
             stop_strings: bool = False, owner: _Seq | None = None, retain: list[_Seq] | None = None,
             batch: tuple[torch.Tensor, torch.Tensor, Any] | None = None,
             seqs: list[_Seq] | None = None) -> list[list[int]]:
        """One `generate` call over left-padded contexts; returns each row's new tokens.

        A round of one sequence (`owner`) continues from that sequence's KV cache (cropped to the prefix it
        shares with the new context, since a stop token may have been replaced), so later rounds
        prefill only what was appended. Batched rounds re-prefill: left padding shifts each row.
        `retain` keeps the batch's cache for branches (`retain_prefixes`); `batch` is a prepared
        (ids, mask, cache) that starts from one. `seqs` are the rows, whose images (if any) go along;
        a batch with images neither reuses nor keeps a cache.
        """
        kwargs: dict[str, Any] = {}
        if batch is not None:
            ids, mask, kwargs["past_key_values"] = batch
        else:
            ids, mask = self._batch(contexts)
        if seqs is not None and any(s.vision for s in seqs):
            kwargs.update(self._vision_kwargs(seqs, ids))
            owner, retain = None, None
        config = GenerationConfig(
            do_sample=False, max_new_tokens=max(1, max_new), eos_token_id=sorted(eos), pad_token_id=self.pad_id,
            temperature=None, top_p=None, top_k=None, return_dict_in_generate=owner is not None or bool(retain),
        )
        if stop_strings:
            if self._stop_criteria is None:  # its vocabulary tables are costly: build them once
                self._stop_criteria = StopStringCriteria(self.tokenizer, list(self.binding.stop_strings))
            kwargs["stopping_criteria"] = StoppingCriteriaList([self._stop_criteria])
        if owner is not None and owner.cache is not None:
            keep = min(_common_prefix(owner.cache_ids, contexts[0]), len(contexts[0]) - 1)
            drop = owner.cache.get_seq_length() - keep
            if drop > 0:
                owner.cache.crop(-drop)
            kwargs["past_key_values"] = owner.cache
            self.reused_cache_tokens += keep
        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                  logits_processor=LogitsProcessorList([processor]), **kwargs)
        if owner is None and not retain:
            return out[:, ids.shape[1]:].tolist()
        if retain and self._retained is not None and reusable(out.past_key_values):
            for row, s in enumerate(retain):
                self._retained[s.request.id, s.request.sample_index] = RetainedRow(
                    out.past_key_values, row, ids.shape[1], s.prompt, s.prompt_ids, s.emitted)
        if owner is None:
            return out.sequences[:, ids.shape[1]:].tolist()
        owner.cache = out.past_key_values
        owner.cache_ids = out.sequences[0, : owner.cache.get_seq_length()].tolist()
        return out.sequences[:, ids.shape[1]:].tolist()

    # -- single pass ---------------------------------------------------------------------------
    def _single_pass(self, seqs: list[_Seq]) -> None:
        tokens = [s.machine.tokens for s in seqs]
        max_new = max(
            s.budget + t.forced_reserve(s.policy) + s.policy.max_answer_tokens + 1
            for s, t in zip(seqs, tokens, strict=True)
        )
        eos = set().union(*(t.answer_stops for t in tokens))
        self._run([s.prompt_ids for s in seqs], ForcingLogitsProcessor(seqs, self.vocab_limit), max_new, eos,
                  retain=seqs if self._retained is not None else None, seqs=seqs)
        for s in seqs:
            if not s.machine.done:  # engine limit reached first; should not happen, never hide it
                s.machine.finish("length")

    # -- multi round ---------------------------------------------------------------------------
    def _multi_round(self, seqs: list[_Seq]) -> None:
        while True:
            for s in seqs:
                s.emitted.extend(s.machine.take_forced())
                if not s.machine.done and len(s.emitted) >= _limit(s):
                    s.machine.finish("length")  # the single pass's engine limit: a run-away is recorded, not looped
            active = [s for s in seqs if not s.machine.done]
            if not active:
                return
            thinking = [s for s in active if s.machine.phase is Phase.THINK]
            answering = [s for s in active if s.machine.phase is Phase.ANSWER]
            if thinking:
                self._think_round(thinking)
            if answering:
                self._answer_round(answering)

    def _think_round(self, seqs: list[_Seq]) -> None:
        quotas, banned = [], []
        for s in seqs:
            quota, ban = think_quota(s.machine, self.binding.closer_ids[0])
            quotas.append(min(quota, _limit(s) - len(s.emitted)))
            banned.append(ban)
        triggers = set().union(*(s.machine.tokens.end_triggers for s in seqs))
        end = seqs[0].machine.tokens.end_token
        proc = RoundLogitsProcessor([s.think_sampler for s in seqs], banned, quotas, end, self.vocab_limit)
        outs = self._run([s.context for s in seqs], proc, max(quotas), triggers | {end},
                         stop_strings=bool(self.binding.stop_strings), owner=_only(seqs), seqs=seqs)
        for s, new, quota in zip(seqs, outs, quotas, strict=True):
            self._absorb_thinking(s, new[:quota])  # past its quota a row only got end tokens

    def _absorb_thinking(self, s: _Seq, new: list[int]) -> None:
        """Feed one round's thinking tokens to the machine, up to the first end of thinking."""
        s.emitted.extend(absorb_thinking(s.machine, new, self.tokenizer, self.binding.stop_strings))

    def _answer_round(self, seqs: list[_Seq], batch: tuple[torch.Tensor, torch.Tensor, Any] | None = None) -> None:
        quotas = [s.machine.max_answer - s.machine.answer_tokens for s in seqs]
        stops = set().union(*(s.machine.tokens.answer_stops for s in seqs))
        end = seqs[0].machine.tokens.end_token
        proc = RoundLogitsProcessor([s.answer_sampler for s in seqs], [frozenset()] * len(seqs), quotas, end,
                                    self.vocab_limit)
        outs = self._run([s.context for s in seqs], proc, max(quotas), stops,
                         owner=None if batch else _only(seqs), batch=batch, seqs=seqs)
        for s, new, quota in zip(seqs, outs, quotas, strict=True):
            # at the quota the next loop's take_forced() ends it as "length"
            s.emitted.extend(absorb_answer(s.machine, new[:quota]))

    def _answer_from_prefixes(self, seqs: list[_Seq], retained: dict[tuple[str, int], RetainedRow]) -> None:
        """Answer branches whose thinking a retained row already holds in its KV cache.

        Decodes in rounds of 4, 8, 16, ... tokens; after each, rows that finished leave the batch (their
        cache rows dropped), so a few long answers do not keep every short one decoding to the cap.
        """
        sources = [retained.get((s.request.id, s.request.sample_index)) for s in seqs]
        if not seqs or any(src is None for src in sources):
            return
        shared = [src.usable(s.emitted) for src, s in zip(sources, seqs, strict=True)]
        if min(shared) <= 0:
            return
        ids, mask, cache = prefixed_batch(sources, shared, [s.emitted[k:] for s, k in zip(seqs, shared, strict=True)],
                                          self.pad_id, self.device)
        self.reused_cache_tokens += sum(len(src.prompt_ids) + k for src, k in zip(sources, shared, strict=True))
        active, round_tokens = list(seqs), BRANCH_FIRST_ROUND
        while active:
            quotas = [min(s.machine.max_answer - s.machine.answer_tokens, round_tokens) for s in active]
            round_tokens *= 2
            stops = set().union(*(s.machine.tokens.answer_stops for s in active))
            proc = RoundLogitsProcessor([s.answer_sampler for s in active], [frozenset()] * len(active), quotas,
                                        active[0].machine.tokens.end_token, self.vocab_limit)
            config = GenerationConfig(
                do_sample=False, max_new_tokens=max(quotas), eos_token_id=sorted(stops), pad_token_id=self.pad_id,
                temperature=None, top_p=None, top_k=None, return_dict_in_generate=True,
            )
            out = self.model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache,
                                      generation_config=config, logits_processor=LogitsProcessorList([proc]))
            new = out.sequences[:, ids.shape[1]:]
            for s, row, quota in zip(active, new.tolist(), quotas, strict=True):
                for t in row[:quota]:
                    s.emitted.append(s.machine.feed(t))
                    if s.machine.done:
                        break
            keep = [r for r, s in enumerate(active)
                    if not s.machine.done and s.machine.answer_tokens < s.machine.max_answer]
            if not keep:
                return
            rows = torch.tensor(keep, dtype=torch.long, device=self.device)
            ids = out.sequences[rows]
            mask = torch.cat([mask, torch.ones_like(new)], dim=1)[rows]
            cache = out.past_key_values
            cache.batch_select_indices(rows)
            active = [active[r] for r in keep]

    # -- records -------------------------------------------------------------------------------
    def _record(self, s: _Seq) -> Generation:
        label = f"{self.name}:{'single' if self.single_pass else 'multi'}"
        return machine_record(self.tokenizer, self.format, s, label,
                              {"image_tokens": s.image_tokens} if s.image_tokens else None)


def _inference(run: Any) -> Any:
    """`run` under `torch.inference_mode()` (no autograd bookkeeping while generating)."""
    def wrapped(seqs: list[_Seq]) -> None:
        with torch.inference_mode():
            run(seqs)
    return wrapped


def _limit(s: _Seq) -> int:
    """Most tokens one generation may emit (what a single pass sizes its `generate` call to)."""
    return s.budget + s.machine.tokens.forced_reserve(s.policy) + s.policy.max_answer_tokens + 1


def _only(seqs: list[_Seq]) -> _Seq | None:
    """The sequence of a one-row round (whose KV cache can carry over), else None."""
    return seqs[0] if len(seqs) == 1 else None


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
