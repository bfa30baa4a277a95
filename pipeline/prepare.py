"""Prepare stories: parse, clean, tag and sign each story of a chunk, in worker processes beside the
pipeline's own.

These are the per-story stages: pure functions of one story, holding the GIL, and most of a story's
CPU. In one process a second core idles, so each full chunk goes to a worker whole, through every
stage, and comes back as signed rows plus each stage's dead letters: one hand-over per chunk, not
one per stage. The stages themselves live in their modules (`parse`, `clean`, `tagging`, and
`dedup.sign_rows`); this module chains them and runs the chain in workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from pipeline.clean import clean_chunk
from pipeline.dedup import sign_rows, summarise_chunk
from pipeline.kafka_source import DeferredRead, OffsetRange, deferred_reads
from pipeline.parse import chunk_outputs, each_story, parse_chunk
from pipeline.rows import CHUNK_SIZE, Chunk, Packed
from pipeline.tagging import Taxonomy, tag_row
from pipeline.workers import WORKERS, InFlight, windowed
from pipeline.write import pack_files

__all__ = ["PrepareStories", "prepare_chunk", "pack_chunk", "prepare_read", "prepare_ahead", "STAGES"]

# Each stage's dead letters leave on an output of its name (and land in a file of that name).
STAGES = ("parse", "clean", "tag")

Prepared = tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]


def prepare_chunk(records: list[dict[str, Any]], pipeline_version: str, taxonomy: Taxonomy) -> Prepared:
    """(clean rows with topics and signatures, {stage: dead letters}) for a chunk of Kafka records."""
    stories, parse_letters = parse_chunk(records)
    rows, clean_letters = clean_chunk(stories, pipeline_version)
    tagged, tag_letters = each_story("tag", tag_row, rows, taxonomy)
    return sign_rows(tagged), {"parse": parse_letters, "clean": clean_letters, "tag": tag_letters}


def pack_chunk(
    records: list[dict[str, Any]], pipeline_version: str, taxonomy: Taxonomy, shards: int, spill: str
) -> tuple[Packed | None, dict[str, list[dict[str, Any]]]]:
    """`prepare_chunk`, its rows `Packed` for the data files of ``shards`` shards, spilled as Arrow
    to the folder ``spill`` (None: no rows)."""
    rows, letters = prepare_chunk(records, pipeline_version, taxonomy)
    packed = Packed(summarise_chunk(rows), pack_files(rows, shards, spill)) if rows else None
    return packed, letters


def prepare_read(prepare: Callable[..., Any], read: DeferredRead, *args: Any) -> list[Any]:
    """``prepare(chunk, *args)`` for each chunk of records of a deferred Kafka read, read here."""
    return [prepare(chunk, *args) for chunk in read.chunks()]


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
        _call(pack_chunk, read, stages)
        for read, _ in zip(deferred_reads(client_options, ranges), range(reads), strict=False)
    ]
    WORKERS.ahead.offer(processes, calls)


def _call(
    prepare: Callable[..., Any], element: list[dict[str, Any]] | DeferredRead, stages: tuple[Any, ...]
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The call that prepares one element (a chunk, or a deferred read's chunks) with ``prepare``
    and the rest of its arguments: one layout, so that a call made ahead is the very call a
    pipeline makes (`workers.CallsAhead` matches them by their bytes)."""
    if isinstance(element, DeferredRead):
        return prepare_read, (prepare, element, *stages)
    return prepare, (element, *stages)


class _PrepareChunks(beam.DoFn):
    """Prepares chunks, or deferred reads (each its chunks), in worker processes while this process
    takes the next ones and handles the rows of those before (see `workers.InFlight`). A chunk
    under ``min_chunk`` records is prepared here, as everything is when ``processes`` is 0: a
    trickle would not pay for the hand-over. (A run gives workers only to a batch worth them, and
    then sets ``min_chunk`` to 1.)"""

    def __init__(
        self,
        pipeline_version: str,
        taxonomy: Taxonomy,
        processes: int,
        min_chunk: int,
        shards: int | None,
        spill: str | None,
    ) -> None:
        self._version = pipeline_version
        self._taxonomy = taxonomy
        self._processes = processes
        self._min_chunk = min_chunk
        # The chain a chunk goes through: rows, or rows packed for ``shards`` data files.
        self._prepare: Callable[..., Any] = prepare_chunk if shards is None else pack_chunk
        self._extra: tuple[Any, ...] = () if shards is None else (shards, spill)
        self._in_flight = InFlight(processes)

    def start_bundle(self) -> None:
        self._in_flight = InFlight(self._processes)

    def process(  # type: ignore[no-untyped-def]
        self,
        records: list[dict[str, Any]] | DeferredRead,
        timestamp=beam.DoFn.TimestampParam,  # noqa: B008
        window=beam.DoFn.WindowParam,  # noqa: B008
    ):
        wrap = windowed(timestamp, window)
        fn, args = _call(self._prepare, records, (self._version, self._taxonomy, *self._extra))
        many = isinstance(records, DeferredRead)  # read where it is prepared: its chunks' outputs
        if not self._processes or (not many and len(records) < self._min_chunk):  # type: ignore[arg-type]
            yield from _outputs(fn(*args), wrap, many)
            return
        for prepared, (wrap_done, many_done) in self._in_flight.submit(fn, args, (wrap, many)):
            yield from _outputs(prepared, wrap_done, many_done)

    def finish_bundle(self):  # type: ignore[no-untyped-def]
        if self._processes:
            WORKERS.ahead.start()  # every read of the bundle is handed out: the next run's may start
        for prepared, (wrap, many) in self._in_flight.drain():
            yield from _outputs(prepared, wrap, many)


def _outputs(prepared: Any, wrap: Callable[[Any], Any], many: bool = False) -> Iterator[Any]:
    """The outputs of one prepared chunk (rows or `Packed` rows, {stage: dead letters}), or of
    each of a list of them (``many``)."""
    for rows, letters in prepared if many else [prepared]:
        if rows:  # a chunk of rows, or of rows packed
            yield wrap(rows)
        for stage, stage_letters in letters.items():
            yield from chunk_outputs([], stage_letters, wrap, tag=stage)


class PrepareStories(beam.PTransform):
    """Chunks of Kafka records (or `kafka_source.DeferredRead`s, read where they are prepared) in;
    outputs ``rows`` (chunks of clean rows, tagged and signed) and one dead-letter output per stage
    of `STAGES`. Bounded or unbounded; every record leaves as one
    row or one dead letter. The stages are those of `ParseRawStories`, `CleanStories` and
    `TagTopics`, then `dedup.sign_rows`. With ``processes`` > 0, full chunks are prepared in that
    many worker processes beside the pipeline's own (`pipeline.workers`); the rows are the same
    either way. With ``shards``, ``rows`` carries `rows.Packed` chunks for the data files of that
    many shards (`DeduplicateStories(packed=True)` takes them): the workers build the Arrow and
    spill it to the folder ``spill`` (the batch's staging folder: readers never see it), which
    whoever runs the pipeline removes after it.
    """

    def __init__(
        self,
        pipeline_version: str,
        taxonomy: Taxonomy,
        processes: int = 0,
        min_chunk: int = CHUNK_SIZE // 2,
        shards: int | None = None,
        spill: str | Path | None = None,
    ) -> None:
        super().__init__()
        if processes < 0 or min_chunk < 1:
            raise ValueError("processes must be >= 0 and min_chunk >= 1")
        self._version = pipeline_version
        self._taxonomy = taxonomy
        self._processes = processes
        self._min_chunk = min_chunk
        if shards is not None and shards < 1:
            raise ValueError("shards must be at least 1")
        if shards is not None and spill is None:
            raise ValueError("packed rows (shards) need a spill folder")
        self._shards = shards
        self._spill = None if spill is None else str(spill)

    def expand(self, records: beam.PCollection) -> pvalue.DoOutputsTuple:
        prepare = _PrepareChunks(
            self._version, self._taxonomy, self._processes, self._min_chunk, self._shards, self._spill
        )
        return records | "ParseCleanTagSign" >> beam.ParDo(prepare).with_output_types(
            Chunk if self._shards is None else Packed
        ).with_outputs(*STAGES, main="rows")
