"""Batching concurrent HTTP requests into one engine call, so throughput grows with concurrency.

Requests are queued; a collector takes the first and keeps taking more while they arrive close together
(each within `window_s` of the previous, at most `max_wait_s` in all), so clients that send again as
soon as their answers come back land in one batch rather than in alternating halves. The batch runs on
one worker thread: forcing requests as one `backend.generate` call (each `Request` carries its own
policy), plain jobs as one `PlainEngine.run`. The model is used by that one thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from s1.backends.base import Backend
from s1.forcing.request import Request
from s1.records import Generation
from s1.serve.plain import PlainEngine, PlainJob, PlainResult


@dataclass
class _Job:
    requests: list[Request] = field(default_factory=list)
    plain: list[PlainJob] = field(default_factory=list)
    future: asyncio.Future[list[Any]] | None = None


class BatchingEngine:
    """Collects work from concurrent requests into batches (see module docstring).

    window_s: the longest gap between arrivals that still joins the batch being collected.
    max_wait_s: the longest a first request waits for companions.
    max_batch: sequences per engine call; more wait for the next call.
    """

    def __init__(self, backend: Backend, plain: PlainEngine | None = None, window_s: float = 0.01,
                 max_wait_s: float = 0.05, max_batch: int = 64):
        self.backend, self.plain_engine = backend, plain
        self.window_s, self.max_wait_s, self.max_batch = window_s, max_wait_s, max_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s1-engine")
        self.batches = 0  # engine calls made (observability and tests)
        self.sequences = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def generate(self, requests: list[Request]) -> list[Generation]:
        return await self._submit(_Job(requests=requests))

    async def run_plain(self, jobs: list[PlainJob]) -> list[PlainResult]:
        if self.plain_engine is None:
            raise RuntimeError("plain decoding needs a transformers backend")
        return await self._submit(_Job(plain=jobs))

    async def _submit(self, job: _Job) -> list[Any]:
        if self._queue is None:
            raise RuntimeError("engine not started")
        job.future = asyncio.get_running_loop().create_future()
        await self._queue.put(job)
        return await job.future

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = _size(batch[0])
            last_call = loop.time() + self.max_wait_s
            while size < self.max_batch:
                try:
                    if not self._queue.empty():
                        job = self._queue.get_nowait()
                    else:
                        wait = min(self.window_s, last_call - loop.time())
                        job = await asyncio.wait_for(self._queue.get(), max(0.0, wait))
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(job)
                size += _size(job)
            try:
                results = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as exc:  # noqa: BLE001 - an engine failure fails this batch's requests, not the server
                for job in batch:
                    if job.future is not None and not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if job.future is not None and not job.future.done():
                    job.future.set_result(result)

    def _run(self, batch: list[_Job]) -> list[list[Any]]:
        """On the engine thread: one generate call for all forcing requests, one run for all plain jobs."""
        requests = [r for job in batch for r in job.requests]
        plain = [p for job in batch for p in job.plain]
        gens = self.backend.generate(requests) if requests else []
        outs = self.plain_engine.run(plain) if plain and self.plain_engine is not None else []
        self.batches += 1
        self.sequences += len(requests) + len(plain)
        results, gi, pi = [], 0, 0
        for job in batch:
            if job.requests:
                results.append(gens[gi : gi + len(job.requests)])
                gi += len(job.requests)
            else:
                results.append(outs[pi : pi + len(job.plain)])
                pi += len(job.plain)
        return results


def _size(job: _Job) -> int:
    return len(job.requests) + len(job.plain)
