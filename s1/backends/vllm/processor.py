"""Budget forcing inside vLLM's engine: a V1 logits processor that drives one `ForcingMachine` per request.

Runs where vLLM samples (the engine's worker process), so it depends only on torch, numpy, vLLM's
logits-processor interface and the project's pure modules. Per-request settings arrive through
`SamplingParams.extra_args` (a `ForcingSpec`, see `wire`); requests without them are left untouched.

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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from s1.backends.sampling import RowSampler
from s1.backends.vllm.wire import FORCING_KEY, MASK_KEY, ForcingSpec
from s1.forcing.machine import REPICK, ForcingMachine, MachineState, Phase

PROCESSOR_FQCN = "s1.backends.vllm.processor:BudgetForcingLogitsProcessor"
EXTENSION_FQCN = "s1.backends.vllm.processor.ForcingWorkerExtension"
NEG_INF = float("-inf")

# Per worker process: live requests by key (kept across preemption) and the replacements to report.
_LIVE: dict[str, _Row] = {}
_REPORTS: dict[str, set[int]] = {}


# -- one request's state ---------------------------------------------------------------------------
@dataclass
class _Row:
    """A request's machine and samplers, plus what ties the machine to vLLM's output list.

    `fed` tokens of `out` have been fed to the machine; `undo` holds the machine's snapshot (and the
    sampler's stream position) taken before the last token this processor fed itself, restored if vLLM
    discards that token (a partial prefill). `replaced` holds the output positions where the machine
    replaced a proposal. `prompt` is the request's prompt ids (penalties read them).
    """

    key: str
    machine: ForcingMachine
    think_sampler: RowSampler
    answer_sampler: RowSampler
    report: bool
    prompt: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    fed: int = 0
    fresh: bool = True
    undo: tuple[int, MachineState, Any] | None = None
    replaced: set[int] = field(default_factory=set)

    @classmethod
    def from_spec(cls, spec: ForcingSpec) -> _Row:
        think, answer = spec.sampling()
        return cls(key=spec.key, machine=spec.machine(), report=spec.report, think_sampler=RowSampler(
            think, spec.sample_index), answer_sampler=RowSampler(answer, spec.sample_index))

    @property
    def penalized(self) -> bool:
        return self.think_sampler.settings.penalized or self.answer_sampler.settings.penalized

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
        if self.undo is None:
            return False
        pos, state, stream = self.undo
        self.undo = None
        if self.committed() > pos:
            self.fresh = False
            return False
        self.machine.restore(state)
        self.fed = pos
        self.replaced.discard(pos)
        self.sampler.restore(stream)
        return True

    def begin(self, device: torch.device) -> int | None:
        """Catch the machine up with the output, snapshot it, and return the forced token (or None)."""
        n = self.committed()
        while self.fed < n:  # tokens picked on the vectorised path: plain thinking or answer tokens
            self.machine.feed(self.out[self.fed])
            self.fed += 1
        stream = self.sampler.save(device) if self.fresh else None  # a partial prefill may discard this draw
        self.undo = (self.fed, self.machine.snapshot(), stream)
        return self.machine.forced()

    def commit(self, token: int) -> int:
        """Feed the forced token or the proposal; returns what the request gets."""
        got = self.machine.feed(token)
        if got != token:
            self.replaced.add(self.fed)
        if got != REPICK:  # an end ignored with an empty string is picked again at the same position
            self.fed += 1
        return got

    def history(self) -> tuple[list[int], int]:
        """The request's tokens (prompt, then output) and the output count, for penalties."""
        n = self.committed()
        return self.prompt + self.out[:n], n


# -- the processor ---------------------------------------------------------------------------------
class BudgetForcingLogitsProcessor(LogitsProcessor):
    """vLLM V1 logits processor: budget forcing for requests whose `extra_args` carry `s1_forcing`,
    id bans for those carrying `s1_mask` (multi-round thinking rounds)."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        extra = getattr(sampling_params, "extra_args", None) or {}
        if FORCING_KEY in extra:
            ForcingSpec.from_args(extra[FORCING_KEY])

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
        for index, params, prompt, out in batch_update.added:
            self._add(index, params, prompt, out)
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

    def _add(self, i: int, params: Any, prompt: list[int] | None, out: list[int]) -> None:
        self._drop(i)  # an added request may replace the one at this index
        extra = getattr(params, "extra_args", None) or {}
        if MASK_KEY in extra:
            mask = extra[MASK_KEY]
            self.masks[i] = (torch.tensor(sorted(mask.get("ban", ())), dtype=torch.long), int(mask["vocab_limit"]))
            return
        args = extra.get(FORCING_KEY)
        if args is None:
            return
        spec = ForcingSpec.from_args(args)
        row = _LIVE.get(spec.key)
        if row is None:  # new; a preempted request comes back with its state
            row = _LIVE[spec.key] = _Row.from_spec(spec)
            if row.report:
                _REPORTS[spec.key] = row.replaced
        row.out, row.prompt = out, list(prompt or ())
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
        self.vocab_limit = min(self.vocab_limit, spec.vocab_limit)

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
                continue
            if row.penalized:
                row.sampler.penalize(logits[int(i)], *row.history())
            if ban := row.machine.banned():
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
            chosen[i] = self._step(int(i), int(chosen[i]), logits)
        for i in np.flatnonzero(events):
            token = self.rows[i].begin(logits.device)
            chosen[i] = self._step(int(i), int(chosen[i]) if token is None else token, logits)

        picks = torch.from_numpy(chosen.astype(np.int64)).to(logits.device)
        if everyone:
            logits.fill_(NEG_INF)
            logits[torch.arange(batch, device=logits.device), picks] = 0.0
        else:
            rows_dev = our_rows.to(logits.device)
            logits[rows_dev] = NEG_INF
            logits[rows_dev, picks[rows_dev]] = 0.0
        return logits

    def _step(self, i: int, token: int, logits: torch.Tensor) -> int:
        """Feed row `i`'s token to its machine and decide whether the next step may be vectorised."""
        row = self.rows[i]
        got = row.commit(token)
        if got == REPICK:  # the end was ignored with an empty string: pick again with the ends masked
            scores = logits[i]
            scores[list(row.machine.banned())] = NEG_INF
            pick = row.sampler.pick(scores) if not row.sampler.settings.greedy else int(scores.argmax())
            got = row.commit(pick)
        self.pending.add(i)
        m = row.machine
        if (m.done or m.peek() is not None or m.tokens.end_triggers != self.ban_set or row.penalized
                or () in m.tokens.ignores):
            self.slow[i] = True  # penalties read the row's tokens; an empty ignore may repick: never vectorised
            return got
        self.slow[i] = False
        if m.phase is Phase.THINK:
            free = m.max_thinking - m.thinking_tokens
            banning = bool(m.banned())
            if banning:
                free = min(free, m.ban_left())
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

    def s1_forcing_reports(self, keys: list[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for key in keys:
            _LIVE.pop(key, None)
            report = _REPORTS.pop(key, None)
            if report is not None:
                out[key] = sorted(report)
        return out
