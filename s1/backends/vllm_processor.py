"""Budget forcing inside vLLM's engine: a V1 logits processor that drives one `ForcingMachine` per request.

Runs where vLLM samples (the engine's worker process), so it depends only on torch, numpy, vLLM's
logits-processor interface and the project's pure modules. Per-request settings arrive through
`SamplingParams.extra_args` (`spec_args` builds them); requests without them are left untouched.

As in the transformers backend, the processor picks each token itself (argmax, or a draw from the
request's own seeded generator with that phase's settings) and returns a one-hot row that vLLM's
greedy sampler then emits: a natural end of thinking must be *replaced* by an ignore string, which a
processor that only masks cannot do.

Cost: a request only consults its machine ("slow" rows) when something may happen: a forced token is
due, the budget runs out, the token picked would end thinking or the answer, or its previous token may
have been discarded (a partial prefill). All other rows take a vectorised path: one argmax over the
batch, a table lookup for end tokens and a counter; their tokens reach the machine later, in order,
from vLLM's own output list.

The frontend needs to know where the machine replaced a proposal (a sampled "Wait" and a forced one
are the same token), so each request's replacements are kept under its key and fetched after a batch
by `ForcingWorkerExtension.s1_forcing_reports` (a `collective_rpc` method).
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from s1.backends.sampling import RowSampler
from s1.budget import MIN_THINKING_MODES, ForcingMachine, ForcingTokens, Phase, SamplingSettings

FORCING_KEY = "s1_forcing"  # extra_args entry of a budget-forced request
MASK_KEY = "s1_mask"  # extra_args entry of a multi-round request: ids to ban, vocabulary limit
PROCESSOR_FQCN = "s1.backends.vllm_processor:BudgetForcingLogitsProcessor"
EXTENSION_FQCN = "s1.backends.vllm_processor.ForcingWorkerExtension"
NEG_INF = float("-inf")

# Per worker process: live requests by key (kept across preemption) and the replacements to report.
_LIVE: dict[str, _Row] = {}
_REPORTS: dict[str, dict[int, int]] = {}
_TOKENS: dict[str, ForcingTokens] = {}
_SCALARS = tuple(f.name for f in fields(ForcingMachine) if f.name not in ("tokens", "kinds", "_queue"))


# -- the per-request spec (frontend -> worker) ---------------------------------------------------
def tokens_args(tokens: ForcingTokens) -> dict[str, Any]:
    """A `ForcingTokens` as plain JSON-able values, with a digest the worker caches it under."""
    body = {
        "end_triggers": sorted(tokens.end_triggers), "closer": list(tokens.closer),
        "cap_newline": list(tokens.cap_newline), "cap_plain": list(tokens.cap_plain),
        "ignores": [list(ids) for ids in tokens.ignores], "answer_stops": sorted(tokens.answer_stops),
        "end_token": tokens.end_token, "newline_tokens": sorted(tokens.newline_tokens),
        "opener_ends_newline": tokens.opener_ends_newline,
    }
    digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"digest": digest, **body}


def _settings_args(s: SamplingSettings) -> list[Any]:
    return [s.temperature, s.top_p, s.top_k, s.seed]


def spec_args(key: str, machine: ForcingMachine, tokens: dict[str, Any], thinking: SamplingSettings,
              answer: SamplingSettings, sample_index: int, vocab_limit: int, report: bool = True) -> dict[str, Any]:
    """The `extra_args` entry for one request. A machine already in its answer phase (a sweep's branch)
    starts the request there; the worker then only counts and samples the answer."""
    return {
        "key": key, "report": report, "tokens": tokens, "sample_index": sample_index, "vocab_limit": vocab_limit,
        "limits": [machine.max_thinking, machine.min_thinking, machine.min_mode, machine.num_ignore,
                   machine.max_answer - machine.answer_tokens],
        "answer_only": machine.phase is Phase.ANSWER,
        "think": _settings_args(thinking), "answer": _settings_args(answer),
    }


def _forcing_tokens(args: dict[str, Any]) -> ForcingTokens:
    digest = args["digest"]
    if digest not in _TOKENS:
        _TOKENS[digest] = ForcingTokens(
            end_triggers=frozenset(args["end_triggers"]), closer=tuple(args["closer"]),
            cap_newline=tuple(args["cap_newline"]), cap_plain=tuple(args["cap_plain"]),
            ignores=tuple(tuple(ids) for ids in args["ignores"]), answer_stops=frozenset(args["answer_stops"]),
            end_token=int(args["end_token"]), newline_tokens=frozenset(args["newline_tokens"]),
            opener_ends_newline=bool(args["opener_ends_newline"]),
        )
    return _TOKENS[digest]


def _check_spec(spec: Any) -> None:
    """Refuse a malformed spec at admission, naming the field (vLLM turns this into a request error)."""
    if not isinstance(spec, dict):
        raise ValueError(f"extra_args[{FORCING_KEY!r}] must be a dict, got {type(spec).__name__}")
    for name in ("key", "tokens", "limits", "think", "answer", "sample_index", "vocab_limit"):
        if name not in spec:
            raise ValueError(f"extra_args[{FORCING_KEY!r}] lacks the field {name!r}")
    limits = spec["limits"]
    if not (isinstance(limits, list | tuple) and len(limits) == 5 and limits[2] in MIN_THINKING_MODES):
        raise ValueError(f"extra_args[{FORCING_KEY!r}]['limits'] must be [max_thinking, min_thinking, "
                         f"min_mode ({'|'.join(MIN_THINKING_MODES)}), num_ignore, max_answer], got {limits!r}")


# -- one request's state ---------------------------------------------------------------------------
@dataclass
class _Row:
    """A request's machine and samplers, plus what ties the machine to vLLM's output list.

    `fed` tokens of `out` have been fed to the machine; `spec` holds the snapshot taken before the last
    token this processor fed itself, undone if vLLM discards that token (a partial prefill).
    `replaced` maps output positions to the proposal the machine replaced there.
    """

    key: str
    machine: ForcingMachine
    think_sampler: RowSampler
    answer_sampler: RowSampler
    report: bool
    out: list[int] = field(default_factory=list)
    fed: int = 0
    fresh: bool = True
    spec: tuple[int, Any, Any] | None = None
    replaced: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> _Row:
        max_thinking, min_thinking, min_mode, num_ignore, max_answer = spec["limits"]
        machine = ForcingMachine(
            tokens=_forcing_tokens(spec["tokens"]), max_thinking=int(max_thinking), min_thinking=int(min_thinking),
            min_mode=str(min_mode), num_ignore=int(num_ignore), max_answer=int(max_answer),
            _ends_newline=bool(spec["tokens"]["opener_ends_newline"]),
        )
        if spec.get("answer_only"):
            machine.phase = Phase.ANSWER
        index = int(spec["sample_index"])
        return cls(key=str(spec["key"]), machine=machine, report=bool(spec.get("report", False)),
                   think_sampler=RowSampler(SamplingSettings(*spec["think"]), index),
                   answer_sampler=RowSampler(SamplingSettings(*spec["answer"]), index))

    @property
    def sampler(self) -> RowSampler:
        return self.think_sampler if self.machine.phase is Phase.THINK else self.answer_sampler

    def committed(self) -> int:
        """Tokens vLLM has committed to this request (a trailing -1 is an async placeholder)."""
        n = len(self.out)
        while n and self.out[n - 1] < 0:
            n -= 1
        return n

    def confirm(self) -> bool:
        """Check the token fed last step reached the output; if vLLM discarded it, undo. True if undone."""
        if self.spec is None:
            return False
        pos, snap, rng = self.spec
        self.spec = None
        if self.committed() > pos:
            self.fresh = False
            return False
        scalars, n_kinds, queue = snap
        for name, value in scalars.items():
            setattr(self.machine, name, value)
        del self.machine.kinds[n_kinds:]
        self.machine._queue = deque(queue)
        self.fed = pos
        self.replaced.pop(pos, None)
        if rng is not None:
            rng[0].set_state(rng[1])
        return True

    def begin(self, device: torch.device) -> int | None:
        """Catch the machine up with the output, snapshot it, and return the forced token (or None)."""
        n = self.committed()
        while self.fed < n:  # tokens picked on the vectorised path: plain thinking or answer tokens
            self.machine.feed(self.out[self.fed])
            self.fed += 1
        m = self.machine
        scalars = {name: getattr(m, name) for name in _SCALARS}
        rng = None
        if self.fresh and not self.sampler.settings.greedy:  # a partial prefill may discard this draw
            gen = self.sampler._gen(device)
            rng = (gen, gen.get_state())
        self.spec = (self.fed, (scalars, len(m.kinds), tuple(m._queue)), rng)
        return m.forced()

    def commit(self, token: int) -> int:
        """Feed the forced token or the proposal; returns what the request gets."""
        got = self.machine.feed(token)
        if got != token:
            self.replaced[self.fed] = token
        self.fed += 1
        return got


# -- the processor ---------------------------------------------------------------------------------
class BudgetForcingLogitsProcessor(LogitsProcessor):
    """vLLM V1 logits processor: budget forcing for requests whose `extra_args` carry `s1_forcing`,
    id bans for those carrying `s1_mask` (multi-round thinking rounds)."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        extra = getattr(sampling_params, "extra_args", None) or {}
        if FORCING_KEY in extra:
            _check_spec(extra[FORCING_KEY])

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool):
        n = vllm_config.scheduler_config.max_num_seqs
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.rows: list[_Row | None] = [None] * n
        self.masks: dict[int, tuple[torch.Tensor, int]] = {}
        self.ours = np.zeros(n, dtype=bool)
        self.slow = np.ones(n, dtype=bool)  # must consult its machine this step
        self.free = np.zeros(n, dtype=np.int64)  # vectorised steps left before the machine must look
        self.answering = np.zeros(n, dtype=bool)
        self.banning = np.zeros(n, dtype=bool)  # end tokens masked (below min_thinking, suppress)
        self.greedy = np.ones(n, dtype=bool)
        self._arrays = (self.ours, self.slow, self.free, self.answering, self.banning, self.greedy)
        self.pending: set[int] = set()  # rows whose last token this processor fed itself
        self.think_events = np.zeros(self.vocab_size, dtype=bool)
        self.answer_events = np.zeros(self.vocab_size, dtype=bool)
        self.ban_set: frozenset[int] | None = None
        self.ban_cols: torch.Tensor | None = None
        self.vocab_limit = self.vocab_size

    def is_argmax_invariant(self) -> bool:
        return False

    # -- batch bookkeeping ---------------------------------------------------------------------
    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self._drop(index)
        for index, params, _prompt, out in batch_update.added:
            self._add(index, params, out)
        for a, b, how in batch_update.moved:
            if how is MoveDirectionality.SWAP:
                self._swap(a, b)
            else:
                self._move(a, b)

    def _drop(self, i: int) -> None:
        row = self.rows[i]
        if row is not None:
            self.rows[i] = None
            if row.machine.done and not row.report:
                _LIVE.pop(row.key, None)
        self.masks.pop(i, None)
        self.pending.discard(i)
        for arr in self._arrays:
            arr[i] = False if arr.dtype == bool else 0
        self.slow[i] = True
        self.greedy[i] = True

    def _add(self, i: int, params: Any, out: list[int]) -> None:
        self._drop(i)  # an added request may replace the one at this index
        extra = getattr(params, "extra_args", None) or {}
        if MASK_KEY in extra:
            mask = extra[MASK_KEY]
            self.masks[i] = (torch.tensor(sorted(mask.get("ban", ())), dtype=torch.long), int(mask["vocab_limit"]))
            return
        spec = extra.get(FORCING_KEY)
        if spec is None:
            return
        key = str(spec["key"])
        row = _LIVE.get(key)
        if row is None:  # new; a preempted request comes back with its state
            row = _LIVE[key] = _Row.from_spec(spec)
            if row.report:
                _REPORTS[key] = row.replaced
        row.out = out
        row.confirm()  # back from preemption: undo a token that never reached the output
        row.fed, row.fresh = min(row.fed, row.committed()), True
        self.rows[i] = row
        self.ours[i], self.slow[i] = True, True
        tokens = row.machine.tokens
        self.think_events[[t for t in tokens.end_triggers if t < self.vocab_size]] = True
        self.answer_events[[t for t in tokens.answer_stops if t < self.vocab_size]] = True
        if self.ban_set is None:
            self.ban_set = tokens.end_triggers
            self.ban_cols = torch.tensor(sorted(self.ban_set), dtype=torch.long)
        self.vocab_limit = min(self.vocab_limit, int(spec["vocab_limit"]))

    def _move(self, a: int, b: int) -> None:
        row, mask, was_pending = self.rows[a], self.masks.pop(a, None), a in self.pending
        for arr in self._arrays:
            arr[b] = arr[a]
        self.rows[b], self.rows[a] = row, None
        self._drop(a)
        self.masks.pop(b, None)
        if mask is not None:
            self.masks[b] = mask
        self.pending.discard(b)
        if was_pending:
            self.pending.add(b)

    def _swap(self, a: int, b: int) -> None:
        self.rows[a], self.rows[b] = self.rows[b], self.rows[a]
        for arr in self._arrays:
            arr[[a, b]] = arr[[b, a]]
        ma, mb = self.masks.pop(a, None), self.masks.pop(b, None)
        if ma is not None:
            self.masks[b] = ma
        if mb is not None:
            self.masks[a] = mb
        pa, pb = a in self.pending, b in self.pending
        self.pending.difference_update((a, b))
        self.pending.update(x for x, was in ((b, pa), (a, pb)) if was)

    # -- the step --------------------------------------------------------------------------------
    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        batch = logits.shape[0]
        if self.masks:
            self._apply_masks(logits, batch)
        ours = self.ours[:batch]
        if not ours.any():
            return logits
        for i in list(self.pending):
            row = self.rows[i]
            if i < batch and row is not None and row.confirm():
                self.slow[i] = True
        self.pending.clear()

        slow = ours & (self.slow[:batch] | (self.free[:batch] <= 0))
        slow_idx = np.flatnonzero(slow)
        forced: dict[int, int] = {}
        for i in slow_idx:
            row = self.rows[i]
            token = row.begin(logits.device)
            if token is not None:
                forced[int(i)] = token
            elif ban := row.machine.banned():
                logits[int(i), list(ban)] = NEG_INF
        everyone = bool(ours.all())
        our_rows = None if everyone else torch.from_numpy(np.flatnonzero(ours))
        if self.vocab_limit < logits.shape[1]:
            if everyone:
                logits[:, self.vocab_limit:] = NEG_INF
            else:
                logits[our_rows, self.vocab_limit:] = NEG_INF
        fast = ours & ~slow
        banned_fast = np.flatnonzero(fast & self.banning[:batch])
        if banned_fast.size:
            logits[torch.from_numpy(banned_fast)[:, None], self.ban_cols[None, :].to(logits.device)] = NEG_INF

        chosen = logits.argmax(dim=-1).cpu().numpy()
        for i in np.flatnonzero(fast & ~self.greedy[:batch]):
            chosen[i] = self.rows[i].sampler.pick(logits[i])
        for i in slow_idx:
            i = int(i)
            if i in forced:
                chosen[i] = forced[i]
            elif not self.rows[i].sampler.settings.greedy:
                chosen[i] = self.rows[i].sampler.pick(logits[i])

        events = np.zeros(batch, dtype=bool)
        if fast.any():
            picked = np.minimum(chosen, self.vocab_size - 1)
            ends = np.where(self.answering[:batch], self.answer_events[picked], self.think_events[picked])
            events = fast & ends
            quiet = fast & ~events
            self.free[:batch][quiet] -= 1
        for i in slow_idx:
            chosen[i] = self._step(int(i), int(chosen[i]))
        for i in np.flatnonzero(events):
            token = self.rows[i].begin(logits.device)
            chosen[i] = self._step(int(i), int(chosen[i]) if token is None else token)

        picks = torch.from_numpy(chosen.astype(np.int64)).to(logits.device)
        if everyone:
            logits.fill_(NEG_INF)
            logits[torch.arange(batch, device=logits.device), picks] = 0.0
        else:
            rows_dev = our_rows.to(logits.device)
            logits[rows_dev] = NEG_INF
            logits[rows_dev, picks[rows_dev]] = 0.0
        return logits

    def _step(self, i: int, token: int) -> int:
        """Feed row `i`'s token to its machine and decide whether the next step may be vectorised."""
        row = self.rows[i]
        got = row.commit(token)
        self.pending.add(i)
        m = row.machine
        nxt = None if m.done else m.forced()
        if m.done or nxt is not None or m.tokens.end_triggers != self.ban_set:
            self.slow[i] = True
            return got
        self.slow[i] = False
        if m.phase is Phase.THINK:
            free = m.max_thinking - m.thinking_tokens
            banning = bool(m.banned())
            if banning:
                free = min(free, m.min_thinking - m.thinking_tokens)
            self.answering[i], self.banning[i] = False, banning
            self.greedy[i] = row.think_sampler.settings.greedy
        else:
            free = m.max_answer - m.answer_tokens
            self.answering[i], self.banning[i] = True, False
            self.greedy[i] = row.answer_sampler.settings.greedy
        self.free[i] = free
        return got

    def _apply_masks(self, logits: torch.Tensor, batch: int) -> None:
        for i, (ban, limit) in self.masks.items():
            if i >= batch:
                continue
            if ban.numel():
                logits[i, ban.to(logits.device)] = NEG_INF
            if limit < logits.shape[1]:
                logits[i, limit:] = NEG_INF


class ForcingWorkerExtension:
    """Mixed into vLLM's worker (`worker_extension_cls`) so the frontend can fetch, after a batch,
    where each request's machine replaced a proposal (`LLM.collective_rpc`)."""

    def s1_forcing_reports(self, keys: list[str]) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for key in keys:
            _LIVE.pop(key, None)
            report = _REPORTS.pop(key, None)
            if report is not None:
                out[key] = dict(report)
        return out
