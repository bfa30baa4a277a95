"""The single-machine accelerator, behind one interface: what a run does around its pipelines when
the runner's workers share this machine, and nothing when they do not.

On one machine (the DirectRunner, Prism and the embedded Flink, whose SDK harness is this process:
LOOPBACK), most of a story's CPU is Python that holds the GIL, so a run hands the preparing stage's
chunks to worker processes beside the pipeline (`pipeline.workers`), lets each worker read the
records it prepares (`kafka_source.DeferredRead`), prepares the next pipeline's first reads while
the current one ends (`workers.CallsAhead`), and tunes the allocator and the garbage collector
(`pipeline.memory`).

On a cluster (`flink-cluster`) all of that would be wrong: worker processes beside the submitting
process are not where the runner works, and the runner's own parallelism does the work. There the
run gets `Plain`, which does nothing, and `run.build_pipeline` builds the same graph with the
runner's own DoFns. `accelerator_for` is the one place that chooses.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.kafka_source import OffsetRange
from pipeline.memory import freeze_loaded_objects, keep_freed_memory, release_memory
from pipeline.prepare import pack_chunk
from pipeline.rows import CHUNK_SIZE
from pipeline.runners import runs_locally
from pipeline.tagging import Taxonomy
from pipeline.transforms import PrepareChunks, PrepareFn, deferred_reads, prepare_call, prepared_outputs
from pipeline.workers import WORKERS, InFlight
from pipeline.write import spill_dir, spill_root
from wirestream.config import Config

__all__ = [
    "Accelerator",
    "Plain",
    "LocalAccelerator",
    "PrepareInWorkers",
    "accelerator_for",
    "in_workers",
    "prepare_ahead",
    "AHEAD_READS",
]

# Deferred reads of the next pipeline prepared ahead, per worker: ~1.4 s of a worker's time, about
# what a 50k part's end leaves the workers while this process clusters and writes.
AHEAD_READS = 6


class PrepareInWorkers(PrepareChunks):
    """`transforms.PrepareChunks` with its calls handed to ``processes`` worker processes, while
    this process takes the next elements and handles the rows of those before (`workers.InFlight`);
    a call made ahead of the pipeline (`prepare_ahead`) is adopted, not made again."""

    def __init__(
        self, pipeline_version: str, taxonomy: Taxonomy, shards: int, spill: str, processes: int
    ) -> None:
        super().__init__(pipeline_version, taxonomy, shards, spill)
        if processes < 1:
            raise ValueError("PrepareInWorkers needs at least one process")
        self._processes = processes
        self._in_flight = InFlight(processes)

    def start_bundle(self) -> None:
        self._in_flight = InFlight(self._processes)

    def calls(self, fn: Callable[..., Any], args: tuple[Any, ...], context: Any) -> Iterator[tuple[Any, Any]]:
        return self._in_flight.submit(fn, args, context)

    def finish_bundle(self):  # type: ignore[no-untyped-def]
        WORKERS.ahead.start()  # every read of the bundle is handed out: the next run's may start
        for prepared, (wrap, many) in self._in_flight.drain():
            yield from prepared_outputs(prepared, wrap, many)


def in_workers(processes: int) -> PrepareFn:
    """The maker of `PrepareStories`' DoFn that prepares in ``processes`` worker processes."""
    return partial(PrepareInWorkers, processes=processes)


def prepare_ahead(
    processes: int,
    client_options: dict[str, Any],
    ranges: list[OffsetRange],
    pipeline_version: str,
    taxonomy: Taxonomy,
    shards: int,
    spill: str | Path,
    reads: int,
) -> None:
    """Offer the first ``reads`` deferred reads of a next pipeline's `PrepareStories` (the same
    arguments, packed for ``shards`` files and spilled to ``spill``) to be prepared ahead, while the
    current pipeline ends (`workers.CallsAhead`)."""
    stages = (pipeline_version, taxonomy, shards, str(spill))
    calls = [
        prepare_call(pack_chunk, read, stages)
        for read, _ in zip(deferred_reads(client_options, ranges), range(reads), strict=False)
    ]
    WORKERS.ahead.offer(processes, calls)


class Accelerator:
    """What a run asks of the machine around its pipelines."""

    local = False  # whether the runner's workers share this machine (files of a batch: `run._shards`)
    # Whether a next part is prepared while a part ends (runs then end with a short part:
    # `kafka_source.part_budget`).
    prepares_ahead = False

    def start(self) -> None:
        """Before a run's first pipeline."""

    def before_pipeline(
        self,
        ranges: list[OffsetRange],
        following: tuple[list[OffsetRange], Path, int, int] | None,
        pipeline_version: str,
        taxonomy: Taxonomy,
    ) -> PrepareFn | None:
        """Before one pipeline over ``ranges``; returns the maker of its preparing DoFn, or None
        for the runner's own (`transforms.PrepareChunks`). With ``following`` (the next pipeline's
        ranges, staging folder, part and shards), that one's first reads may be prepared meanwhile."""
        return None

    def after_pipeline(self, staging: Path, part: int) -> None:
        """After one pipeline, whether it succeeded or not."""

    def end_run(self, staging_root: Path) -> None:
        """After a run's last pipeline: drop what was prepared for a pipeline that did not come."""


class Plain(Accelerator):
    """A runner with workers of its own (a cluster): nothing beside the pipeline."""


class LocalAccelerator(Accelerator):
    local = True
    prepares_ahead = True

    def __init__(self, config: Config) -> None:
        self._config = config

    def _workers_for(self, ranges: list[OffsetRange]) -> int:
        # A trickle (a batch under one chunk: continuous mode's usual batch) is prepared in the
        # pipeline's process, without starting workers for it. A larger batch starts them with its
        # pipeline and hands them every chunk.
        return self._config.workers if sum(r.size for r in ranges) >= CHUNK_SIZE else 0

    def start(self) -> None:
        WORKERS.start_server(self._config.workers)

    def before_pipeline(
        self,
        ranges: list[OffsetRange],
        following: tuple[list[OffsetRange], Path, int, int] | None,
        pipeline_version: str,
        taxonomy: Taxonomy,
    ) -> PrepareFn | None:
        keep_freed_memory()
        freeze_loaded_objects()
        workers = self._workers_for(ranges)
        if workers:
            WORKERS.warm(workers)
            if following and self._workers_for(following[0]) == workers:
                # The next pipeline's first reads, prepared while this one clusters and writes.
                next_ranges, next_staging, next_part, next_shards = following
                prepare_ahead(
                    workers,
                    self._config.kafka_client_options(),
                    next_ranges,
                    pipeline_version,
                    taxonomy,
                    next_shards,
                    spill_dir(next_staging, next_part),
                    AHEAD_READS * workers,
                )
        return in_workers(workers) if workers else None

    def after_pipeline(self, staging: Path, part: int) -> None:
        release_memory()

    def end_run(self, staging_root: Path) -> None:
        WORKERS.ahead.drop()
        shutil.rmtree(spill_root(staging_root), ignore_errors=True)


def accelerator_for(config: Config, runner: str) -> Accelerator:
    """The local accelerator for a runner whose workers share this machine, else `Plain`."""
    return LocalAccelerator(config) if runs_locally(runner) else Plain()


def close_workers() -> Any:
    """Stop this process's worker processes (a test session's end)."""
    return WORKERS.close()
