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

import time
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
from s1.backends.sampling import RowSampler, pick_rows
from s1.backends.tokens import FormatBinding, bind_format, encode
from s1.budget import BudgetPolicy, ForcingMachine, Kind, Phase, PolicyError
from s1.formats import ReasoningFormat, get_format
from s1.records import Generation, Segment

MODES = ("auto", "single", "multi")


@dataclass
class _Seq:
    """One request in flight: its prompt, machine, samplers and the tokens emitted so far."""

    request: Request
    policy: BudgetPolicy
    prompt: str
    prompt_ids: list[int]
    machine: ForcingMachine
    think_sampler: RowSampler
    answer_sampler: RowSampler
    budget: int
    emitted: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    cache: Any = None  # KV cache from this sequence's last round (multi-round, one row at a time)
    cache_ids: list[int] = field(default_factory=list)

    @property
    def sampler(self) -> RowSampler:
        return self.think_sampler if self.machine.phase is Phase.THINK else self.answer_sampler

    @property
    def context(self) -> list[int]:
        return self.prompt_ids + self.emitted


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
    """Budget forcing on any transformers causal LM (batched, left-padded)."""

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, format: str | ReasoningFormat = "auto",
                 mode: str = "auto", batch_size: int = 16, context_length: int | None = None,
                 answer_batch_size: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.format = get_format(format, tokenizer)
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = {gen_eos} if isinstance(gen_eos, int) else set(gen_eos or ())
        self.binding: FormatBinding = bind_format(self.format, tokenizer, eos)
        if mode == "single" and not self.binding.single_pass:
            raise ValueError(
                f"mode 'single' needs an end of thinking that is one special token; with this tokenizer "
                f"{self.format.close_marker!r} is several tokens, so use mode 'multi' or 'auto'"
            )
        self.mode = mode
        self.single_pass = self.binding.single_pass and mode != "multi"
        self.batch_size = batch_size
        # Branched answers (sweeps) are short: a wider batch finishes them in fewer decode steps.
        self.answer_batch_size = answer_batch_size or 4 * batch_size
        self.vocab_limit = len(tokenizer)
        self.context_length = context_length or getattr(model.config, "max_position_embeddings", None)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.binding.eos_ids)
        self._tokens_cache: dict[tuple[str, ...] | None, Any] = {}
        self._stop_criteria: StopStringCriteria | None = None
        self.reused_cache_tokens = 0  # prefill tokens saved by KV-cache reuse across rounds

    @classmethod
    def from_pretrained(cls, model: str, *, gguf_file: str | None = None, device: str = "auto",
                        dtype: str = "auto", trust_remote_code: bool = False, **kwargs: Any) -> HFBackend:
        from s1.backends.loading import load_hf

        m, tok = load_hf(model, gguf_file=gguf_file, device=device, dtype=dtype,
                         trust_remote_code=trust_remote_code)
        return cls(m, tok, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- public API ----------------------------------------------------------------------------
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        """Generate for every request; a request that cannot run is returned as a failed record."""
        policy = policy or BudgetPolicy()
        results: list[Generation | None] = [None] * len(requests)
        ready: list[tuple[int, _Seq]] = []
        for i, req in enumerate(requests):
            try:
                ready.append((i, self._start(req, req.policy or policy)))
            except (PolicyError, ValueError) as exc:
                results[i] = self._failed(req, req.policy or policy, str(exc))
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            seqs = [s for _, s in chunk]
            try:
                with torch.inference_mode():
                    if self.single_pass:
                        self._single_pass(seqs)
                    else:
                        self._multi_round(seqs)
            except (RuntimeError, MemoryError) as exc:  # engine failure (e.g. out of memory): record, go on
                for i, seq in chunk:
                    results[i] = self._failed(seq.request, seq.policy, f"{type(exc).__name__}: {exc}", seq.prompt)
                continue
            for i, seq in chunk:
                results[i] = self._record(seq)
        return [r for r in results if r is not None]

    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Finish branched generations: each carries the tokens already emitted (thinking up to its
        cut and the forced closer or cap) and the machine that emitted them; only the answer remains.
        Used by budget sweeps, which think once and branch an answer at every setting."""
        results: list[Generation] = []
        for start in range(0, len(branches), self.answer_batch_size):
            seqs = []
            for b in branches[start : start + self.answer_batch_size]:
                seq = self._start(b.request, b.policy)
                seq.machine, seq.emitted = b.machine, list(b.emitted)
                seqs.append(seq)
            try:
                with torch.inference_mode():
                    self._multi_round(seqs)
            except (RuntimeError, MemoryError) as exc:
                results += [self._failed(s.request, s.policy, f"{type(exc).__name__}: {exc}", s.prompt) for s in seqs]
                continue
            results += [self._record(s) for s in seqs]
        return results

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

    def _start(self, req: Request, policy: BudgetPolicy) -> _Seq:
        if req.messages is not None:
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
            budget=budget,
        )

    def _batch(self, contexts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, ctx in enumerate(contexts):
            ids[row, width - len(ctx):] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _run(self, contexts: list[list[int]], processor: LogitsProcessor, max_new: int, eos: set[int],
             stop_strings: bool = False, owner: _Seq | None = None) -> list[list[int]]:
        """One `generate` call over left-padded contexts; returns each row's new tokens.

        A round of one sequence (`owner`) continues from that sequence's KV cache (cropped to the prefix it
        shares with the new context, since a stop token may have been replaced), so later rounds
        prefill only what was appended. Batched rounds re-prefill: left padding shifts each row.
        """
        ids, mask = self._batch(contexts)
        config = GenerationConfig(
            do_sample=False, max_new_tokens=max(1, max_new), eos_token_id=sorted(eos), pad_token_id=self.pad_id,
            temperature=None, top_p=None, top_k=None, return_dict_in_generate=owner is not None,
        )
        kwargs: dict[str, Any] = {}
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
        if owner is None:
            return out[:, ids.shape[1]:].tolist()
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
        self._run([s.prompt_ids for s in seqs], ForcingLogitsProcessor(seqs, self.vocab_limit), max_new, eos)
        for s in seqs:
            if not s.machine.done:  # engine limit reached first; should not happen, never hide it
                s.machine.finish("length")

    # -- multi round ---------------------------------------------------------------------------
    def _multi_round(self, seqs: list[_Seq]) -> None:
        while True:
            for s in seqs:
                s.emitted.extend(s.machine.take_forced())
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
            m = s.machine
            ban = m.banned()
            if ban:  # below the minimum: generate exactly up to it with every end of thinking masked
                ban = ban | {self.binding.closer_ids[0]}
                quotas.append(m.min_thinking - m.thinking_tokens)
            else:
                quotas.append(m.max_thinking - m.thinking_tokens)
            banned.append(ban)
        triggers = set().union(*(s.machine.tokens.end_triggers for s in seqs))
        end = seqs[0].machine.tokens.end_token
        proc = RoundLogitsProcessor([s.think_sampler for s in seqs], banned, quotas, end, self.vocab_limit)
        outs = self._run([s.context for s in seqs], proc, max(quotas), triggers | {end},
                         stop_strings=bool(self.binding.stop_strings), owner=_only(seqs))
        for s, new, quota in zip(seqs, outs, quotas, strict=True):
            self._absorb_thinking(s, new[:quota])  # past its quota a row only got end tokens

    def _absorb_thinking(self, s: _Seq, new: list[int]) -> None:
        """Feed one round's thinking tokens to the machine, up to the first end of thinking."""
        m = s.machine
        if self.binding.stop_strings:
            text = self.tokenizer.decode(new, skip_special_tokens=False)
            idx = _find_stop(text, self.binding.stop_strings)
            if idx is not None:  # a multi-token closer: strip it at the text level
                kept, residual = _split_at_text(self.tokenizer, new, idx)
                for t in [*kept, *encode(self.tokenizer, residual)]:
                    s.emitted.append(m.feed(t))
                s.emitted.extend(m.end_thinking())
                return
        for t in new:
            s.emitted.append(m.feed(t))
            if t in m.tokens.end_triggers:  # replaced by an ignore string, or closed
                s.emitted.extend(m.take_forced())
                return

    def _answer_round(self, seqs: list[_Seq]) -> None:
        quotas = [s.machine.max_answer - s.machine.answer_tokens for s in seqs]
        stops = set().union(*(s.machine.tokens.answer_stops for s in seqs))
        end = seqs[0].machine.tokens.end_token
        proc = RoundLogitsProcessor([s.answer_sampler for s in seqs], [frozenset()] * len(seqs), quotas, end,
                                    self.vocab_limit)
        outs = self._run([s.context for s in seqs], proc, max(quotas), stops, owner=_only(seqs))
        for s, new, quota in zip(seqs, outs, quotas, strict=True):
            for t in new[:quota]:  # at the quota the next loop's take_forced() ends it as "length"
                s.emitted.append(s.machine.feed(t))
                if s.machine.done:
                    break

    # -- records -------------------------------------------------------------------------------
    def _record(self, s: _Seq) -> Generation:
        m = s.machine
        ids = s.emitted[: len(m.kinds)]
        kinds = m.kinds[: len(ids)]
        body = ids[:-1] if kinds and kinds[-1] is Kind.STOP else ids
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        thinking, answer, closed = self.format.split(text)
        return Generation(
            prompt_id=s.request.id, sample_index=s.request.sample_index,
            setting=s.request.setting or s.policy.label(), prompt=s.prompt,
            thinking=thinking, answer=answer, text=text,
            thinking_tokens=m.thinking_tokens, thinking_forced_tokens=m.thinking_forced,
            answer_tokens=m.answer_tokens, answer_forced_tokens=m.answer_forced,
            ignores_applied=m.ignores_applied, cap_hit=m.cap_hit, thinking_closed=closed,
            finish_reason=m.finish_reason or "length", wall_time_s=time.perf_counter() - s.started,
            prompt_tokens=len(s.prompt_ids), thinking_budget=s.budget, token_ids=ids,
            segments=_segments(self.tokenizer, ids, kinds),
            backend=f"{self.name}:{'single' if self.single_pass else 'multi'}",
        )


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


def _find_stop(text: str, stop_strings: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
    return min(hits) if hits else None


def _split_at_text(tokenizer: Any, ids: list[int], char_index: int) -> tuple[list[int], str]:
    """Keep the tokens wholly before `char_index`; return them and the text between them and it."""
    lo, hi = 0, len(ids)
    while lo < hi:  # largest j whose decoded prefix fits within char_index characters
        mid = (lo + hi + 1) // 2
        if len(tokenizer.decode(ids[:mid], skip_special_tokens=False)) <= char_index:
            lo = mid
        else:
            hi = mid - 1
    prefix = tokenizer.decode(ids[:lo], skip_special_tokens=False)
    full = tokenizer.decode(ids, skip_special_tokens=False)
    return ids[:lo], full[len(prefix):char_index]


def _segments(tokenizer: Any, ids: list[int], kinds: list[Kind]) -> list[Segment]:
    out: list[Segment] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or kinds[i] is not kinds[start]:
            out.append(Segment(kinds[start].value, tokenizer.decode(ids[start:i], skip_special_tokens=False),
                               i - start))
            start = i
    return out
