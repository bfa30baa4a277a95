"""Prepare stories: parse, clean, tag and sign each story of a chunk, in worker processes beside the
pipeline's own.

These are the per-story stages: pure functions of one story, holding the GIL, and most of a story's
CPU. In one process a second core idles, so each full chunk goes to a worker whole, through every
stage, and comes back as signed rows plus each stage's dead letters: one hand-over per chunk, not
one per stage. The stages themselves live in their modules (`parse`, `clean`, `tagging`, and
`dedup.sign_rows`); this module chains them and runs the chain in workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.clean import _identifier, clean_chunk
from pipeline.dedup import sign_rows
from pipeline.parse import chunk_outputs, each_story, parse_chunk
from pipeline.rows import CHUNK_SIZE, Chunk
from pipeline.tagging import Taxonomy, tag_row

__all__ = ["PrepareStories", "prepare_chunk", "STAGES"]

log = logging.getLogger(__name__)

# Each stage's dead letters leave on an output of its name (and land in a file of that name).
STAGES = ("parse", "clean", "tag")

Prepared = tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]


def prepare_chunk(records: list[dict[str, Any]], pipeline_version: str, taxonomy: Taxonomy) -> Prepared:
    """(clean rows with topics and signatures, {stage: dead letters}) for a chunk of Kafka records."""
    stories, parse_letters = parse_chunk(records)
    rows, clean_letters = clean_chunk(stories, pipeline_version)
    tagged, tag_letters = each_story("tag", tag_row, rows, taxonomy)
    return sign_rows(tagged), {"parse": parse_letters, "clean": clean_letters, "tag": tag_letters}


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group, but stopping is the pipeline process's call (it
    # finishes or abandons its batch): a worker must not die of it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    _identifier()


def _exit_with(parent_sentinel: int) -> None:
    """A worker holds both ends of its task pipe, so it never sees the pipe close: when the pipeline
    process dies (even of SIGKILL), this ends the worker instead of leaving it waiting for ever."""
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


class _Workers:
    """This process's workers, started on first use and kept for its life: a backfill runs one
    pipeline per part, and starting a worker (it imports Beam) takes about two seconds. A worker
    exits with this process however it ends (`_exit_with`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[int, ProcessPoolExecutor] = {}

    def get(self, processes: int) -> ProcessPoolExecutor:
        with self._lock:
            if processes not in self._pools:
                self._pools[processes] = ProcessPoolExecutor(
                    processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
                )
            return self._pools[processes]

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

    def retire(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            self._pools = {n: pool for n, pool in self._pools.items() if pool is not broken}
        broken.shutdown(wait=False, cancel_futures=True)


_WORKERS = _Workers()


class _PrepareChunks(beam.DoFn):
    """Prepares chunks in worker processes while this process reads the next ones and handles the
    rows of those before.

    At most one chunk more than there are workers is in flight; each result leaves with its own
    chunk's timestamp and window. A chunk under ``min_chunk`` records (continuous mode's trickle, a
    small run) is prepared here, as everything is when ``processes`` is 0: it would not pay for the
    hand-over. A worker that dies costs time, not stories: its chunks are prepared here and the
    next chunk starts a new one.
    """

    def __init__(self, pipeline_version: str, taxonomy: Taxonomy, processes: int, min_chunk: int) -> None:
        self._version = pipeline_version
        self._taxonomy = taxonomy
        self._processes = processes
        self._min_chunk = min_chunk
        self._pending: deque[tuple[ProcessPoolExecutor, Future[Prepared], list[dict[str, Any]], Any, Any]] = (
            deque()
        )

    def start_bundle(self) -> None:
        self._pending = deque()

    def process(  # type: ignore[no-untyped-def]
        self,
        records: list[dict[str, Any]],
        timestamp=beam.DoFn.TimestampParam,  # noqa: B008
        window=beam.DoFn.WindowParam,  # noqa: B008
    ):
        if not self._processes or len(records) < self._min_chunk:
            yield from _outputs(self._prepare(records), timestamp, window)
            return
        pool, future = _WORKERS.submit(self._processes, prepare_chunk, records, self._version, self._taxonomy)
        self._pending.append((pool, future, records, timestamp, window))
        while self._pending and (len(self._pending) > self._processes + 1 or self._pending[0][1].done()):
            yield from self._take()

    def finish_bundle(self):  # type: ignore[no-untyped-def]
        while self._pending:
            yield from self._take()

    def _prepare(self, records: list[dict[str, Any]]) -> Prepared:
        return prepare_chunk(records, self._version, self._taxonomy)

    def _take(self) -> Iterator[Any]:
        pool, future, records, timestamp, window = self._pending.popleft()
        try:
            prepared = future.result()
        except BrokenProcessPool:
            log.warning("a worker died; its %d records are prepared in this process", len(records))
            _WORKERS.retire(pool)
            prepared = self._prepare(records)
        yield from _outputs(prepared, timestamp, window)


def _outputs(prepared: Prepared, timestamp: Any, window: Any) -> Iterator[Any]:
    # A chunk's results may leave while a later chunk is processed: each carries its own chunk's
    # timestamp and window.
    rows, letters = prepared

    def wrap(value: Any) -> WindowedValue:
        return WindowedValue(value, timestamp, (window,))

    yield from chunk_outputs(rows, [], wrap)
    for stage, stage_letters in letters.items():
        yield from chunk_outputs([], stage_letters, wrap, tag=stage)


class PrepareStories(beam.PTransform):
    """Chunks of Kafka records in; outputs ``rows`` (chunks of clean rows, tagged and signed) and
    one dead-letter output per stage of `STAGES`. Bounded or unbounded; every record leaves as one
    row or one dead letter. The stages are those of `ParseRawStories`, `CleanStories` and
    `TagTopics`, then `dedup.sign_rows`. With ``processes`` > 0, full chunks are prepared in that
    many worker processes beside the pipeline's own (see `_PrepareChunks`); the rows are the same
    either way.
    """

    def __init__(
        self, pipeline_version: str, taxonomy: Taxonomy, processes: int = 0, min_chunk: int = CHUNK_SIZE // 2
    ) -> None:
        super().__init__()
        if processes < 0 or min_chunk < 1:
            raise ValueError("processes must be >= 0 and min_chunk >= 1")
        self._version = pipeline_version
        self._taxonomy = taxonomy
        self._processes = processes
        self._min_chunk = min_chunk

    def expand(self, records: beam.PCollection) -> pvalue.DoOutputsTuple:
        return records | "ParseCleanTagSign" >> beam.ParDo(
            _PrepareChunks(self._version, self._taxonomy, self._processes, self._min_chunk)
        ).with_output_types(Chunk).with_outputs(*STAGES, main="rows")
