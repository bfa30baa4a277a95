"""The single-machine accelerator, behind one interface: what a run does around its pipelines when
the runner's workers share this machine, and nothing when they do not.

On one machine (the DirectRunner, Prism and the embedded Flink, whose SDK harness is this process:
LOOPBACK), most of a story's CPU is Python that holds the GIL, so a run hands the preparing stage's
chunks to worker processes beside the pipeline (`pipeline.workers`), lets each worker read the
records it prepares (`kafka_source.DeferredRead`), prepares the next pipeline's first reads while
the current one ends (`workers.CallsAhead`), passes prepared rows to their files as spilled Arrow
streams by local path, and tunes the allocator and the garbage collector (`pipeline.memory`).

On a cluster (`flink-cluster`) all of that would be wrong: a local path means nothing on another
machine and the runner's own parallelism does the work. There the run gets `Plain`, which does
nothing, and `run.build_pipeline` builds the plain graph. `accelerator_for` is the one place that
chooses.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pipeline.kafka_source import OffsetRange
from pipeline.memory import freeze_loaded_objects, keep_freed_memory, release_memory
from pipeline.rows import CHUNK_SIZE
from pipeline.runners import runs_locally
from pipeline.tagging import Taxonomy
from pipeline.transforms import prepare_ahead
from pipeline.workers import WORKERS
from pipeline.write import spill_dir, spill_root
from wirestream.config import Config

__all__ = ["Accelerator", "Plain", "LocalAccelerator", "accelerator_for", "AHEAD_READS"]

# Deferred reads of the next pipeline prepared ahead, per worker: ~1.4 s of a worker's time, about
# what a 50k part's end leaves the workers while this process clusters and writes.
AHEAD_READS = 6


class Accelerator:
    """What a run asks of the machine around its pipelines."""

    local = False  # whether the pipeline may pass rows by local path (`build_pipeline`)

    def start(self) -> None:
        """Before a run's first pipeline."""

    def before_pipeline(
        self,
        ranges: list[OffsetRange],
        following: tuple[list[OffsetRange], Path, int, int] | None,
        pipeline_version: str,
        taxonomy: Taxonomy,
    ) -> int:
        """Before one pipeline over ``ranges``; returns the worker processes it may use. With
        ``following`` (the next pipeline's ranges, staging folder, part and shards), that one's
        first reads may be prepared meanwhile."""
        return 0

    def after_pipeline(self, staging: Path, part: int) -> None:
        """After one pipeline, whether it succeeded or not."""

    def end_run(self, staging_root: Path) -> None:
        """After a run's last pipeline: drop what was prepared for a pipeline that did not come."""

    def spill(self, staging: Path, part: int) -> Path | None:
        """Where a pipeline's prepared rows wait for their files (only where paths are shared)."""
        return None


class Plain(Accelerator):
    """A runner with workers of its own (a cluster): nothing beside the pipeline."""


class LocalAccelerator(Accelerator):
    local = True

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
    ) -> int:
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
        return workers

    def after_pipeline(self, staging: Path, part: int) -> None:
        shutil.rmtree(spill_dir(staging, part), ignore_errors=True)  # read by now, or abandoned
        release_memory()

    def end_run(self, staging_root: Path) -> None:
        WORKERS.ahead.drop()
        shutil.rmtree(spill_root(staging_root), ignore_errors=True)

    def spill(self, staging: Path, part: int) -> Path | None:
        return spill_dir(staging, part)


def accelerator_for(config: Config, runner: str) -> Accelerator:
    """The local accelerator for a runner whose workers share this machine, else `Plain`."""
    return LocalAccelerator(config) if runs_locally(runner) else Plain()


def close_workers() -> Any:
    """Stop this process's worker processes (a test session's end)."""
    return WORKERS.close()
