"""Worker processes beside the pipeline process, for the CPU-bound steps of a batch.

A step that holds the GIL leaves the second core idle however Beam schedules it (the DirectRunner's
own multi-process mode cost more than it gave). `transforms.PrepareStories` hands each chunk of
records (or each range of offsets, which the worker reads) to a worker while the pipeline process
goes on with the next. Workers fork from a ``forkserver`` that imported the stages once (a script
that runs a pipeline itself needs the ``if __name__ == "__main__":`` guard, as with ``spawn``), live
as long as the pipeline process, and end with it however it ends, SIGKILL included.

Writing the data files in the workers too was measured and dropped: handing a file's rows over
cost the pipeline process about what writing them saved it.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.memory import freeze_loaded_objects, keep_freed_memory
from wirestream.processes import forkserver

__all__ = ["WORKERS", "InFlight", "CallsAhead"]

log = logging.getLogger(__name__)


# Workers yield the CPU to the pipeline process: while it clusters and writes the end of one part,
# they prepare the next part's first stories (`CallsAhead`) with what it leaves idle, instead of
# stretching its end (a 50k part's end took 3 s beside them at equal priority, 1.6 s alone).
WORKER_NICENESS = 10


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group, but stopping is the pipeline process's call (it
    # finishes or abandons its batch): a worker must not die of it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    from pipeline.clean import _identifier

    _identifier()  # the language model, loaded before the first chunk
    # A chunk's records and rows live through many young-generation collections, and each full one
    # also walked the imported modules and the model (~6% of a worker's CPU): those are frozen out
    # of collection, and collections come 70 times rarer. What a chunk makes is freed by reference
    # counting; the collector is only for cycles, which are rare here.
    freeze_loaded_objects()
    gc.set_threshold(50_000, 20, 100)
    keep_freed_memory()


def _exit_with(parent_sentinel: int) -> None:
    """A worker holds both ends of its task pipe, so it never sees the pipe close: when the pipeline
    process dies (even of SIGKILL), this ends the worker instead of leaving it waiting for ever."""
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


def _start_method() -> multiprocessing.context.BaseContext:
    """Workers fork from a server process that imported the stages once (``forkserver``): each
    spawned worker had imported the stages itself (~0.85 s of CPU apiece, when that included Beam).
    The stage modules do not import Beam (`pipeline.transforms` does), and a test keeps it so: the
    server is ready in ~0.4 s. It holds no threads, so forking it is safe. ``spawn`` where there
    is no fork."""
    return forkserver(["pipeline.prepare"])


def _ready() -> None:
    """What `_Workers.warm` asks of a new worker: nothing beyond starting."""


_Call = tuple[Callable[..., Any], tuple[Any, ...]]


def _call_key(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """A call's identity: its function and its arguments' bytes (small here: deferred reads)."""
    return pickle.dumps((fn.__module__, fn.__qualname__, args), protocol=pickle.HIGHEST_PROTOCOL)


class CallsAhead:
    """Calls of a run's next pipeline, made while this one ends (`_Workers.ahead`).

    A backfill runs one pipeline per part, and each part ends with work for this process alone
    (clustering, verdicts, writing: ~1.6 s a 50k part) while the workers idle. A run that knows its
    next part offers the first calls that part's workers will get (`offer`); when this pipeline's
    reading is done its last stage starts them (`start`), and the next pipeline adopts each one as
    it reaches the very same call (`InFlight.submit`). A call no pipeline reaches (the next plan
    turned out different) is waited for and forgotten (`drop`): ahead, never instead.
    """

    def __init__(self, workers: _Workers) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._offered: tuple[int, list[_Call]] = (0, [])  # (processes, calls)
        self._started: dict[bytes, tuple[ProcessPoolExecutor, Future[Any]]] = {}
        self.adopted = 0  # calls a pipeline took from here (for tests and inspection)

    def offer(self, processes: int, calls: list[_Call]) -> None:
        with self._lock:
            self._offered = (processes, calls)

    def start(self) -> None:
        with self._lock:
            (processes, calls), self._offered = self._offered, (0, [])
            for fn, args in calls:
                self._started[_call_key(fn, args)] = self._workers.submit(processes, fn, *args)

    def take(
        self, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[ProcessPoolExecutor, Future[Any]] | None:
        with self._lock:
            if not self._started:
                return None
            made = self._started.pop(_call_key(fn, args), None)
            self.adopted += made is not None
            return made

    def drop(self) -> None:
        """Forget what is offered and not started; wait for every started call no pipeline took
        (its outputs, such as spilled files, are then complete before whoever removes them)."""
        with self._lock:
            started, self._started, self._offered = self._started, {}, (0, [])
        for _pool, future in started.values():
            future.cancel()
            try:
                future.exception()
            except Exception as exc:  # cancelled, or a broken pool: nothing of it is kept
                log.debug("a call made ahead was not used: %r", exc)


class _Workers:
    """This process's workers, started on first use and kept for its life: a backfill runs one
    pipeline per part, and a worker's start (the server's imports, then the language model) is
    best paid once. A worker exits with this process however it ends (`_exit_with`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[int, ProcessPoolExecutor] = {}
        self.ahead = CallsAhead(self)

    def get(self, processes: int) -> ProcessPoolExecutor:
        with self._lock:
            if processes not in self._pools:
                self._pools[processes] = ProcessPoolExecutor(
                    processes, mp_context=_start_method(), initializer=_start_worker
                )
            return self._pools[processes]

    def start_server(self, processes: int) -> None:
        """Starts the server workers fork from, which imports the stages (~0.4 s of one core),
        without starting a worker, when a run may use ``processes`` workers: it calls this first,
        so those imports overlap its planning (Kafka metadata, the table's current snapshot)."""
        if processes:
            _start_method()

    def warm(self, processes: int) -> None:
        """Starts a pool's workers, so that their start (the server importing the stages, ~0.4 s,
        then each worker loading the language model) overlaps the pipeline's own instead of
        following its first chunk. From a thread of its own: starting the first worker waits for
        the server's imports, and this process meanwhile builds and starts its pipeline."""
        threading.Thread(target=self._warm, args=(processes,), name="start-workers", daemon=True).start()

    def _warm(self, processes: int) -> None:
        pool = self.get(processes)  # the pool starts a worker per call waiting for one
        try:
            for _ in range(processes):
                pool.submit(_ready)
        except BrokenProcessPool:
            self.retire(pool)
        except RuntimeError as exc:  # shut down meanwhile (`close`): the next call starts a new one
            log.debug("workers not warmed: %r", exc)

    def submit(self, processes: int, *call: Any) -> tuple[ProcessPoolExecutor, Future[Any]]:
        """``call`` on a pool of ``processes`` workers: (the pool, the future). A pool broken by a
        worker that died since the last call is replaced first."""
        pool = self.get(processes)
        try:
            return pool, pool.submit(*call)
        except BrokenProcessPool:
            self.retire(pool)
            pool = self.get(processes)
            return pool, pool.submit(*call)

    def close(self) -> None:
        """Ends every worker now, and with them the Kafka consumers they keep, instead of when this
        process ends (a test's broker stops first, and their consumers would log its absence)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def retire(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            self._pools = {n: pool for n, pool in self._pools.items() if pool is not broken}
        broken.shutdown(wait=False, cancel_futures=True)


WORKERS = _Workers()


# Calls queued beyond one per worker. With one, a 100k backfill kept its workers 1.45 of 2 cores
# busy while reading; with three, 1.6 (a chunk's ~2 MB held once more per extra call).
QUEUED = 3


class InFlight:
    """Calls one DoFn hands to ``processes`` workers, taken back in the order they were made.

    At most `QUEUED` calls more than there are workers are in flight, so a worker never waits for
    work (the pipeline process reads the next chunk from Kafka while a worker finishes one) and
    memory holds a few inputs at most. Each call carries a ``context`` (its element's timestamp and
    window: results may leave while a later element is processed). A call whose worker dies is made
    again in this process: a dead worker costs time, never data.
    """

    def __init__(self, processes: int) -> None:
        self._processes = processes
        self._pending: deque[
            tuple[ProcessPoolExecutor, Future[Any], Callable[..., Any], tuple[Any, ...], Any]
        ]
        self._pending = deque()

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], context: Any
    ) -> Iterator[tuple[Any, Any]]:
        """Hands ``fn(*args)`` to a worker (or adopts the same call made ahead of this pipeline,
        `CallsAhead`); yields ``(result, context)`` of the calls that are done."""
        pool, future = WORKERS.ahead.take(fn, args) or WORKERS.submit(self._processes, fn, *args)
        self._pending.append((pool, future, fn, args, context))
        while self._pending and (len(self._pending) > self._processes + QUEUED or self._pending[0][1].done()):
            yield self._take()

    def drain(self) -> Iterator[tuple[Any, Any]]:
        """``(result, context)`` of every call still in flight (for ``finish_bundle``)."""
        while self._pending:
            yield self._take()

    def _take(self) -> tuple[Any, Any]:
        pool, future, fn, args, context = self._pending.popleft()
        try:
            return future.result(), context
        except BrokenProcessPool:
            log.warning("a worker died; its %s call is made in this process", fn.__name__)
            WORKERS.retire(pool)
            return fn(*args), context
