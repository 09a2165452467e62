"""The backend contract: requests in, `Generation` records out, budget forcing by `BudgetPolicy`.

`Backend` declares everything the callers use (the sweep, the server, REBASE, the methods, the CLI);
there is no capability probing. `EngineBackend` is the part the in-process engines (transformers, vLLM)
share: a tokenizer here, the format bound to its ids, requests started by the forcing runtime and run a
batch at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from s1.forcing.binding import BoundFormat, bind_engine_format, bind_format, check_engine_args
from s1.forcing.formats import ReasoningFormat
from s1.forcing.machine import ForcingTokens
from s1.forcing.policy import AUTO, BudgetPolicy, PolicyError
from s1.forcing.protocols import S1_MAX_GEN_TOKS, get_protocol, s1_auto_budget
from s1.forcing.request import Branch, Request
from s1.forcing.rounds import RoundStops
from s1.forcing.sequence import Sequence, failed_record, open_sequence, record, text_prompt, thinking_budget
from s1.forcing.text import TokenizerText, run
from s1.records import Generation


class Backend(ABC):
    """Anything that turns requests into generations under a budget policy.

    name: the backend's name in records and manifests. format: the reasoning format it forces.
    batch_size: requests a caller should hand it at a time (sweeps chunk by it). context_length: the
    model's context in tokens (None when unknown). default_temperature: what the model's generation
    config asks for when a request leaves sampling open (the server's default).
    """

    name: ClassVar[str]
    format: ReasoningFormat
    batch_size: int
    context_length: int | None
    default_temperature: float = 1.0

    @abstractmethod
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        """One record per request, in order; a request that cannot run is a failed record in its place.
        A request's own `policy` overrides the batch's."""

    @abstractmethod
    def continue_answers(self, branches: list[Branch]) -> list[Generation]:
        """Finish branched generations (a sweep's): each carries the tokens emitted so far (thinking up to
        its cut, then the forced closer or cap) and the machine that emitted them; the answer remains."""

    @abstractmethod
    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        """The format's forced strings as this model's ids, for `policy`'s ignore strings."""

    def thinking_budget(self, policy: BudgetPolicy, prompt_tokens: int) -> int:
        """`policy`'s thinking budget for a prompt of `prompt_tokens` tokens ("auto" resolved)."""
        return thinking_budget(policy, self.forcing_tokens(policy), self.context_length, prompt_tokens)

    def resolve_protocol(self, requests: list[Request], policy: BudgetPolicy) -> BudgetPolicy:
        """`policy` with s1's `auto` budget computed as the s1 repo computes it over a batch: from the longest
        prompt of `requests` (before the opener) and this model's context (`s1_auto_budget`). Other
        policies come back as they are."""
        if policy.protocol != "s1" or policy.max_thinking_tokens != AUTO:
            return policy
        fmt = self.format_of(policy)
        start = len(self.encode(fmt.think_open))
        lengths = [n for n in self.prompt_tokens(requests, policy) if n is not None]
        if not lengths:
            raise PolicyError("s1's auto budget needs the prompts' token counts (no tokenizer here); give an integer")
        context = self.context_length or S1_MAX_GEN_TOKS
        budget = s1_auto_budget(max(lengths) - start, start, len(self.encode(fmt.cap.lstrip("\n"))),
                                min(S1_MAX_GEN_TOKS, context))
        if budget < 1:
            raise PolicyError(f"s1's auto budget leaves {budget} thinking tokens after the longest prompt "
                              f"({max(lengths) - start} tokens) of a {context}-token context; give an integer budget")
        return policy.replace(max_thinking_tokens=budget)

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """`text`'s token ids in this model's tokenizer (no special tokens added)."""

    def format_of(self, policy: BudgetPolicy) -> ReasoningFormat:
        """The strings a policy forces: its protocol's (`s1.forcing.protocols`), else the backend's format."""
        return get_protocol(policy.protocol).format if policy.protocol else self.format

    @abstractmethod
    def prompt_tokens(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[int | None]:
        """Each request's prompt length in tokens as this backend renders it for `policy` (None where it
        cannot tell without running it, e.g. an image prompt), for checking settings before generating."""

    @contextmanager
    def retain_prefixes(self) -> Iterator[None]:
        """Within the block, `continue_answers` may reuse what `generate` computed (a KV cache); a backend
        without such reuse does nothing."""
        yield

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release what the backend holds (connections, engine processes)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class Rendered:
    """A request's prompt as an engine takes it: text, ids, and the engine's own inputs for it (pixel
    values, images) plus record facts (`meta`, e.g. image tokens)."""

    prompt: str
    ids: list[int]
    state: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class EngineBackend(Backend):
    """A model in this process (transformers, vLLM): its tokenizer here, the format bound to its ids.

    mode: "auto" (single pass when every end of thinking is one atomic token, else rounds), "single"
    or "multi". Subclasses render image prompts (`_render_images`), run a batch in one pass
    (`_single_pass`) or in rounds (`run_rounds`).
    """

    def __init__(self, tokenizer: Any, format: str | ReasoningFormat, gen_eos: Any, mode: str, batch_size: int,
                 context_length: int | None):
        check_engine_args(mode, batch_size)
        self.tokenizer = tokenizer
        self.format, self.binding, self.single_pass = bind_engine_format(format, tokenizer, gen_eos, mode)
        self.bound = BoundFormat(self.binding, tokenizer)
        self._eos = self.binding.eos_ids
        self._bound_formats: dict[ReasoningFormat, BoundFormat] = {self.format: self.bound}
        self.text = TokenizerText(tokenizer)
        self.stops = RoundStops(think=self.binding.stop_strings)
        self.mode, self.batch_size, self.context_length = mode, batch_size, context_length
        self.vocab_limit = len(tokenizer)  # ids past the tokenizer (padded embedding rows) are never picked

    @property
    def label(self) -> str:
        """The `backend` of records: name and how forcing ran."""
        return f"{self.name}:{'single' if self.single_pass else 'multi'}"

    def forcing_tokens(self, policy: BudgetPolicy) -> ForcingTokens:
        return self.bound_format(self.format_of(policy)).forcing_tokens(policy)

    def encode(self, text: str) -> list[int]:
        return self.text.encode(text)

    def bound_format(self, fmt: ReasoningFormat) -> BoundFormat:
        """`fmt` bound to this tokenizer (a protocol's strings; bound once)."""
        if fmt not in self._bound_formats:
            self._bound_formats[fmt] = BoundFormat(bind_format(fmt, self.tokenizer, set(self._eos)), self.tokenizer)
        return self._bound_formats[fmt]

    # -- generate ------------------------------------------------------------------------------------
    def generate(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[Generation]:
        policy = policy or BudgetPolicy()
        try:
            policy = self.resolve_protocol([r for r in requests if r.policy is None], policy)
        except PolicyError as exc:
            return [failed_record(r, r.policy or policy, str(exc), self.name) for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        ready: list[tuple[int, Sequence]] = []
        for i, req in enumerate(requests):
            try:
                ready.append((i, self.start(req, req.policy or policy)))
            except (PolicyError, ValueError) as exc:
                results[i] = failed_record(req, req.policy or policy, str(exc), self.name)
        for first in range(0, len(ready), self.batch_size):
            self.finish_batch(results, ready[first : first + self.batch_size], self._run_batch)
        return [r for r in results if r is not None]

    def _run_batch(self, seqs: list[Sequence]) -> None:
        """A batch in one pass where it can run so; a protocol's sequences always in rounds."""
        rounds = [s for s in seqs if s.policy.protocol or not self.single_pass]
        single = [s for s in seqs if not (s.policy.protocol or not self.single_pass)]
        if single:
            self._single_pass(single)
        if rounds:
            self.run_rounds(rounds)

    def finish_batch(self, results: list[Generation | None], batch: list[tuple[int, Sequence]],
                     run_batch: Callable[[list[Sequence]], None]) -> None:
        """Run one batch of (slot, sequence) and put each sequence's record in its slot; an engine failure
        (e.g. out of memory) becomes a failed record for every sequence of the batch."""
        seqs = [s for _, s in batch]
        try:
            run_batch(seqs)
        except (RuntimeError, MemoryError) as exc:
            for i, s in batch:
                results[i] = failed_record(s.request, s.policy, f"{type(exc).__name__}: {exc}", self.name, s.prompt)
            return
        for i, s in batch:
            results[i] = self.record(s)

    def prompt_tokens(self, requests: list[Request], policy: BudgetPolicy | None = None) -> list[int | None]:
        fmt = self.format_of(policy) if policy else self.format
        return [None if r.image_sources() else len(self.render(r, fmt).ids) for r in requests]

    def render(self, req: Request, fmt: ReasoningFormat | None = None) -> Rendered:
        """`req`'s prompt in `fmt` (the backend's format by default): text through the tokenizer's chat
        template, images through `_render_images`."""
        fmt = fmt or self.format
        if req.image_sources():
            return self._render_images(req, fmt)
        prompt, ids = run(text_prompt(req, fmt), self.text)
        return Rendered(prompt, ids)

    def start(self, req: Request, policy: BudgetPolicy, rendered: Rendered | None = None) -> Sequence:
        """A sequence for `req` (its prompt already `rendered`, or rendered now): budget, context check,
        machine, and this engine's state for it."""
        r = rendered or self.render(req, self.format_of(policy))
        return open_sequence(req, policy, self.forcing_tokens(policy), self.context_length, r.prompt, r.ids,
                             kind=self.sequence_kind, meta=dict(r.meta), **r.state, **self._sequence_state(req, policy))

    def start_branch(self, branch: Branch, rendered: Rendered | None = None) -> Sequence:
        """A sequence that continues `branch` (its machine and tokens), forced tokens appended."""
        seq = self.start(branch.request, branch.policy, rendered)
        seq.machine, seq.emitted = branch.machine, list(branch.emitted)
        seq.emitted.extend(seq.machine.take_forced())
        return seq

    def record(self, seq: Sequence) -> Generation:
        return run(record(seq, self.format_of(seq.policy), self.label), self.text)

    # -- what each engine provides ------------------------------------------------------------------------
    sequence_kind: type[Sequence] = Sequence

    def _sequence_state(self, req: Request, policy: BudgetPolicy) -> dict[str, Any]:
        """Engine state a new sequence starts with (samplers, request keys)."""
        return {}

    def _render_images(self, req: Request, fmt: ReasoningFormat) -> Rendered:
        raise ValueError(f"request {req.id!r} has images, but the {self.name} backend cannot take them")

    @abstractmethod
    def _single_pass(self, seqs: list[Sequence]) -> None:
        """Generate a batch in one pass, forcing inside the engine's decoding loop."""

    @abstractmethod
    def run_rounds(self, seqs: list[Sequence]) -> None:
        """Generate a batch in rounds (`s1.forcing.rounds.run_rounds` with this engine's round batch)."""
