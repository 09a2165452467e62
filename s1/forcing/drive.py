"""Driving round loops: a batch's rounds together (engines) or one sample's rounds on its own (HTTP).

A sequence runs the default loop (`s1.forcing.rounds.rounds`), or its protocol's
(`s1.forcing.protocols`) when its policy names one; both are generators that yield a `RoundSpec` (or a
text operation) and receive its result, so every engine drives either the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from s1.forcing.protocols import protocol_rounds
from s1.forcing.rounds import RoundResult, Rounds, RoundSpec, RoundStops, rounds
from s1.forcing.sequence import Sequence
from s1.forcing.text import AsyncTextOps, TextOps, aanswer, answer


def loop_of(seq: Sequence, stops: RoundStops) -> Rounds:
    """The round loop `seq` runs: its protocol's, or the default one."""
    return protocol_rounds(seq) if seq.policy.protocol else rounds(seq, stops)


Engine = Callable[[list[tuple[Sequence, RoundSpec]]], list[RoundResult]]


def run_rounds(seqs: list[Sequence], stops: RoundStops, engine: Engine, ops: TextOps) -> None:
    """Drive every sequence's rounds to the end: each `engine` call runs one round of every sequence
    still going (a batch), text operations are answered by `ops` in between."""
    waiting = []
    for s in seqs:
        loop = loop_of(s, stops)
        if spec := _advance(loop, None, ops):
            waiting.append((s, loop, spec))
    while waiting:
        results = engine([(s, spec) for s, _, spec in waiting])
        waiting = [(s, loop, spec) for (s, loop, _), r in zip(waiting, results, strict=True)
                   if (spec := _advance(loop, r, ops))]


def _advance(loop: Rounds, value: Any, ops: TextOps) -> RoundSpec | None:
    """Run `loop` on to its next round (answering text operations), or to its end (None)."""
    try:
        item = loop.send(value)
        while not isinstance(item, RoundSpec):
            item = loop.send(answer(item, ops))
        return item
    except StopIteration:
        return None


async def arun_rounds(seq: Sequence, stops: RoundStops, engine: Callable[[Sequence, RoundSpec], Awaitable[RoundResult]],
                      ops: AsyncTextOps) -> None:
    """Drive one sequence's rounds to the end, awaiting each round on `engine` and each text operation
    on `ops` (the HTTP client: one sample's rounds follow each other, samples run concurrently)."""
    loop = loop_of(seq, stops)
    value: Any = None
    while True:
        try:
            item = loop.send(value)
        except StopIteration:
            return
        value = await engine(seq, item) if isinstance(item, RoundSpec) else await aanswer(item, ops)
