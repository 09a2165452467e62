"""Math answer grading: s1-style extraction, then math-verify equivalence in worker processes.

math-verify (``parse`` / ``verify``) is the equivalence engine. Its own timeouts use ``signal.alarm``,
which works only in a main thread, so the comparisons run in a pool of worker processes (spawn or
forkserver, created lazily, reused, shut down at exit). In the worker, where it is the main thread,
a ``setitimer`` alarm bounds each whole comparison (parse of gold and prediction plus verify) to
`timeout` seconds; a worker that does not come back even then (stuck in C code, dead) is killed and
the pool replaced. Grading therefore works, with timeouts, from any thread of the caller.

A comparison that times out, or errs, is WRONG with the cause in its reason; an empty extraction is
WRONG ("no answer found"); nothing is ever credited without math-verify (or an identical string)
saying so.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any

from s1.grading.extract import Extraction, _strip_math, find_answer
from s1.grading.verdict import Verdict, short

__all__ = ["configure_pool", "grade_math", "grade_math_many", "shutdown_pool", "verify_latex"]

# outcomes a worker reports
EQUAL, DIFFERENT, PRED_UNPARSED, GOLD_UNPARSED, TIMEOUT, ERROR = (
    "equal", "different", "pred_unparsed", "gold_unparsed", "timeout", "error"
)
_MAX_RETRIES = 2  # a job whose pool broke under it (another job's timeout, a crash) is retried this often


# ---------------------------------------------------------------------------------------------------
# Worker side (runs in the pool's processes, in their main thread)


class _Deadline(BaseException):
    """Raised by the worker's alarm; a BaseException so that library `except Exception` cannot eat it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Deadline()


def _init_worker() -> None:
    # we disable math-verify's own signal timeouts (ours bound the whole job); silence its warning
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify

    half = math_verify.parse("$1/2$", parsing_timeout=None)
    math_verify.verify(half, math_verify.parse("$0.5$", parsing_timeout=None), timeout_seconds=None)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple:
    from math_verify import parse

    return tuple(parse(text, parsing_timeout=None))


def _compare(gold_latex: str, pred_latex: str) -> tuple[str, str]:
    from math_verify import parse, verify

    gold = _parse_cached(gold_latex)
    if not gold:
        return GOLD_UNPARSED, ""
    pred = parse(pred_latex, parsing_timeout=None)
    if not pred:
        return PRED_UNPARSED, ""
    return (EQUAL if verify(list(gold), pred, timeout_seconds=None) else DIFFERENT), ""


def _job(gold_latex: str, pred_latex: str, timeout: float, func: Any = None) -> tuple[str, str]:
    """One comparison under a `timeout`-second alarm. `func` replaces `_compare` (tests inject one)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3))
    try:
        return (func or _compare)(gold_latex, pred_latex)
    except _Deadline:
        return TIMEOUT, ""
    except Exception as exc:  # noqa: BLE001 - an engine error is a recorded outcome, not a crash
        return ERROR, f"{type(exc).__name__}: {exc}"[:200]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _warmup() -> int:
    time.sleep(0.05)  # let every worker take one warm-up job
    return os.getpid()


# ---------------------------------------------------------------------------------------------------
# Caller side: the pool


class _VerifyPool:
    """A lazily created, reusable process pool with per-job deadlines and replacement of stuck workers.

    At most `workers` jobs are in flight at once (across all calling threads), so a job starts as soon
    as it is submitted and its deadline (`timeout` + `grace`) measures its own run, not queueing.
    """

    def __init__(self, workers: int | None = None, grace: float = 2.0) -> None:
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.grace = grace
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._executor: ProcessPoolExecutor | None = None
        self.replacements = 0

    def _context(self) -> multiprocessing.context.BaseContext:
        methods = multiprocessing.get_all_start_methods()
        return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                ex = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context(),
                                         initializer=_init_worker)
                # start and warm every worker now, outside any job's deadline (the workers are all
                # started here: no later submit starts one)
                try:
                    with _main_hidden():
                        futures = [ex.submit(_warmup) for _ in range(self.workers)]
                    for fut in futures:
                        fut.result(timeout=300)
                except BaseException:
                    _kill(ex)
                    raise
                self._executor = ex
            return self._executor

    def replace(self, ex: ProcessPoolExecutor) -> None:
        """Kill `ex`'s workers and drop it (if it is still the current pool); the next job makes a new one."""
        with self._lock:
            if self._executor is not ex:
                return
            self._executor = None
            self.replacements += 1
        _kill(ex)

    def shutdown(self) -> None:
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            _kill(ex)

    def run(self, jobs: Sequence[tuple[str, str]], timeout: float, func: Any = None) -> list[tuple[str, str]]:
        """Run `(gold_latex, pred_latex)` jobs in parallel; one `(outcome, detail)` per job, in order."""
        results: list[tuple[str, str] | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        tries = [0] * len(jobs)
        inflight: dict[Future, tuple[int, float, ProcessPoolExecutor]] = {}
        try:
            while pending or inflight:
                while pending and self._slots.acquire(blocking=not inflight):
                    i = pending.popleft()
                    ex = None
                    try:
                        ex = self.executor()
                        fut = ex.submit(_job, jobs[i][0], jobs[i][1], timeout, func)
                    except (BrokenProcessPool, RuntimeError) as exc:  # broken or shut down under us
                        self._slots.release()
                        if ex is not None:
                            self.replace(ex)
                        tries[i] += 1
                        if tries[i] > _MAX_RETRIES:
                            results[i] = (ERROR, f"worker pool failed: {type(exc).__name__}: {exc}"[:200])
                        else:
                            pending.appendleft(i)
                        continue
                    except BaseException:
                        self._slots.release()
                        raise
                    inflight[fut] = (i, time.monotonic() + timeout + self.grace, ex)
                if not inflight:
                    continue
                nearest = min(deadline for _, deadline, _ in inflight.values())
                done, _ = wait(list(inflight), timeout=max(0.0, nearest - time.monotonic()),
                               return_when=FIRST_COMPLETED)
                for fut in done:
                    i, _, ex = inflight.pop(fut)
                    self._slots.release()
                    try:
                        results[i] = fut.result()
                    except _Deadline:  # the alarm fired just as the job finished
                        results[i] = (TIMEOUT, "")
                    except (BrokenProcessPool, CancelledError) as exc:
                        self.replace(ex)
                        tries[i] += 1
                        if tries[i] > _MAX_RETRIES:
                            results[i] = (ERROR, f"worker process failed: {type(exc).__name__}")
                        else:
                            pending.appendleft(i)
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                        results[i] = (ERROR, f"{type(exc).__name__}: {exc}"[:200])
                now = time.monotonic()
                expired = [fut for fut, (_, deadline, _) in inflight.items() if deadline <= now]
                dead: set[ProcessPoolExecutor] = set()
                for fut in expired:
                    i, _, ex = inflight.pop(fut)
                    self._slots.release()
                    results[i] = (TIMEOUT, "")
                    dead.add(ex)
                # a worker that did not answer its own alarm is stuck: replace its pool. The other
                # jobs of that pool (ours here; other threads' through BrokenProcessPool) run again.
                for ex in dead:
                    self.replace(ex)
                for fut, (j, _, ex) in list(inflight.items()):
                    if ex in dead:
                        inflight.pop(fut)
                        self._slots.release()
                        pending.appendleft(j)
        finally:
            for _ in inflight:  # an interrupt (KeyboardInterrupt) left jobs running: free their slots
                self._slots.release()
        return [r if r is not None else (ERROR, "no result") for r in results]


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Keep new worker processes from re-running the caller's ``__main__``.

    spawn/forkserver children import the parent's main script (or ``-m`` module) before they work; a
    script without an ``if __name__ == "__main__":`` guard would then run again in every worker and
    fail. The workers only run functions of importable modules, so they need no ``__main__``: for the
    moment the processes start, the main module shows neither a file nor a spec.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    try:
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _kill(ex: ProcessPoolExecutor) -> None:
    """Stop `ex` now: kill its workers (they may be stuck), then shut it down without waiting."""
    processes = dict(getattr(ex, "_processes", None) or {})
    for proc in processes.values():
        with suppress(Exception):  # already gone
            proc.kill()
    with suppress(Exception):
        ex.shutdown(wait=False, cancel_futures=True)
    for proc in processes.values():
        with suppress(Exception):
            proc.join(timeout=5)


_POOL: _VerifyPool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _VerifyPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _VerifyPool()
        return _POOL


def configure_pool(workers: int | None = None, grace: float = 2.0) -> None:
    """Set the number of worker processes (default: min(4, CPUs)) and the backstop grace in seconds.

    Replaces the current pool (its workers are stopped); the next grading call starts the new one.
    """
    global _POOL
    with _POOL_LOCK:
        old, _POOL = _POOL, _VerifyPool(workers, grace)
    if old is not None:
        old.shutdown()


def shutdown_pool() -> None:
    """Stop the worker processes now (they are also stopped at interpreter exit)."""
    with _POOL_LOCK:
        pool = _POOL
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown_pool)


# ---------------------------------------------------------------------------------------------------
# Grading


def _norm(s: str) -> str:
    return "".join(s.split())


def gold_latex(gold: str) -> str:
    """`gold` wrapped so that math-verify parses all of it (``\\boxed{gold}``)."""
    g = str(gold).strip()
    if "\\boxed" in g:
        return g
    return "\\boxed{" + _strip_math(g) + "}"


def pred_latex(found: Extraction) -> str:
    """The extracted answer as math-verify input: a box's content boxed again, prose as is."""
    x = found.text
    if found.method == "boxed":
        return "\\boxed{" + x + "}"
    if "$" in x or "\\(" in x or "\\[" in x:
        return x
    return "$" + x + "$"


def _verdict(found: Extraction, gold: str, outcome: str, detail: str, timeout: float) -> Verdict:
    x, g = found.text, short(str(gold).strip(), 40)
    if outcome == EQUAL:
        return Verdict(True, x, f"equivalent to gold {g}")
    if outcome == DIFFERENT:
        return Verdict(False, x, f"extracted {short(x, 40)}, not equivalent to gold {g}")
    if outcome == PRED_UNPARSED:
        return Verdict(False, x, f"could not parse extracted {short(x, 40)}")
    if outcome == GOLD_UNPARSED:
        return Verdict(False, x, f"could not parse gold {g}")
    if outcome == TIMEOUT:
        return Verdict(False, x, f"timed out after {timeout:g}s")
    return Verdict(False, x, f"grader error: {detail}" if detail else "grader error")


def grade_math_many(
    pairs: Iterable[tuple[str | None, str]],
    timeout: float = 5.0,
    *,
    bare: bool = True,
    exact_shortcut: bool = True,
    _func: Any = None,
) -> list[Verdict]:
    """Grade `(answer_text, gold)` pairs in parallel on the worker pool; one Verdict per pair, in order.

    `answer_text` is the model's text after the thinking delimiter; the answer is extracted from it
    (`s1.grading.extract.find_answer`, with `bare` allowing a short bare answer such as ``42``).
    `timeout` bounds each comparison in seconds. With `exact_shortcut`, an extraction identical to
    the gold (whitespace aside) is credited without math-verify.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    pairs = list(pairs)
    verdicts: list[Verdict | None] = [None] * len(pairs)
    jobs: list[tuple[str, str]] = []
    where: list[tuple[int, Extraction]] = []
    for k, (answer_text, gold) in enumerate(pairs):
        found = find_answer(answer_text, bare=bare)
        if found is None:
            verdicts[k] = Verdict(False, None, "no answer found")
        elif exact_shortcut and _func is None and _norm(found.text) == _norm(_strip_math(str(gold))):
            verdicts[k] = Verdict(True, found.text, f"identical to gold {short(str(gold).strip(), 40)}")
        else:
            jobs.append((gold_latex(gold), pred_latex(found)))
            where.append((k, found))
    if jobs:
        outcomes = _pool().run(jobs, timeout, _func)
        for (k, found), (outcome, detail) in zip(where, outcomes, strict=True):
            verdicts[k] = _verdict(found, pairs[k][1], outcome, detail, timeout)
    return [v for v in verdicts if v is not None]


def grade_math(
    answer_text: str | None, gold: str, timeout: float = 5.0, *, bare: bool = True, exact_shortcut: bool = True
) -> Verdict:
    """Grade one answer text against a gold answer (see `grade_math_many`). Safe from any thread."""
    return grade_math_many([(answer_text, gold)], timeout, bare=bare, exact_shortcut=exact_shortcut)[0]


def verify_latex(gold: str, pred: str, timeout: float = 5.0) -> tuple[str, str]:
    """Compare two already-extracted LaTeX strings on the pool: `(outcome, detail)`; outcome is one
    of ``equal``, ``different``, ``pred_unparsed``, ``gold_unparsed``, ``timeout``, ``error``."""
    return _pool().run([(gold_latex(gold), pred_latex(Extraction(pred, "boxed")))], timeout)[0]
