"""The Beam side of every stage: each a composite `PTransform` (or the DoFns and coders under one)
with a small ``expand()`` over the plain functions of its stage's module.

`ReadKafkaStories` (`kafka_source`), `PrepareStories` (`prepare`: `parse`, `clean`, `tagging`
and `dedup.sign_rows`, one step per chunk), `DeduplicateStories` (`dedup`, with `GroupByFile`
gathering each data file's Arrow) and `WriteParquetDataset` (`write`) make a batch's pipeline
(`run.build_pipeline`).

The stage modules never import Beam (here, `run`, `runners` and `accelerator` do): the local
accelerator's worker processes fork from a server that imports those modules, and Beam would slow
its start. The coders below are registered with Beam when this module is imported, as every
pipeline built from these transforms does first.
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.io.restriction_trackers import OffsetRange as BeamOffsetRange
from apache_beam.io.restriction_trackers import OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from kafka import KafkaConsumer, TopicPartition

from pipeline.dedup import (
    DEFAULT_LOOKBACK,
    DEFAULT_THRESHOLD,
    apply_verdicts_to_table,
    cluster_stories,
    first_deliveries,
    summaries_of,
    verdict_columns,
    windows_around,
)
from pipeline.kafka_source import (
    CONSUMERS,
    IDLE_POLLS,
    POLL_MS,
    READ_SIZE,
    SPLIT_SIZE,
    UNBOUNDED,
    DeferredRead,
    OffsetRange,
    blocks_until,
    poll_once,
    record_of,
    split_ranges,
)
from pipeline.parse import DEAD_LETTERS
from pipeline.prepare import STAGES, pack_chunk, prepare_read
from pipeline.rows import MICROSECOND, Chunk, Packed
from pipeline.tagging import Taxonomy
from pipeline.write import data_file_name, sorted_table, unpack_files, write_rows, write_table
from schemas import DEAD_LETTER_SCHEMA

# Coders: how chunks, packed chunks and a file's rows cross a shuffle (see `pipeline.rows`).


class _OwnCoder(beam.coders.Coder):
    """A coder for one of the types below: equal to every other instance of its class."""

    hint: type = object

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> type:
        return self.hint

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class _PickledWhole(_OwnCoder):
    """An element pickled whole: one C call for everything it holds."""

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)  # bytes of our own shuffle


class ChunkCoder(_PickledWhole):
    """A chunk pickled whole: one C call for hundreds of rows."""

    hint = Chunk

    def encode(self, chunk: list[Any]) -> bytes:
        return pickle.dumps(list(chunk), protocol=pickle.HIGHEST_PROTOCOL)

    def estimate_size(self, chunk: list[Any]) -> int:
        # Runners sample element sizes for their metrics: one item's size times the count, not a
        # pickle of the whole chunk each time.
        return len(pickle.dumps(chunk[0], protocol=pickle.HIGHEST_PROTOCOL)) * len(chunk) if chunk else 0


beam.coders.registry.register_coder(Chunk, ChunkCoder)


class PackedCoder(_PickledWhole):
    """A packed chunk pickled whole (summaries and paths)."""

    hint = Packed

    def estimate_size(self, packed: Packed) -> int:
        return len(packed.summaries) + sum(len(route) + len(path) for route, path in packed.files)


beam.coders.registry.register_coder(Packed, PackedCoder)


class TableCoder(_OwnCoder):
    """An Arrow table (a data file's rows) as an Arrow IPC stream, sized from its buffers."""

    hint = pa.Table

    def encode(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        return sink.getvalue().to_pybytes()

    def decode(self, encoded: bytes) -> pa.Table:
        return pa.ipc.open_stream(encoded).read_all()

    def estimate_size(self, table: pa.Table) -> int:
        return table.get_total_buffer_size()


beam.coders.registry.register_coder(pa.Table, TableCoder)


# Read: fixed Kafka offset ranges with kafka-python, as a splittable DoFn (see `pipeline.kafka_source`).


class _PartitionRestrictions(RestrictionProvider):
    """Offset ranges per (topic, partition): bounded [start, stop) or unbounded (stop = UNBOUNDED).
    A restriction is not split before it is read: `ReadKafkaStories` hands bounded ranges over in
    pieces already (`kafka_source.split_ranges`), as elements a runner spreads over its workers."""

    def initial_restriction(self, element: OffsetRange) -> BeamOffsetRange:
        return BeamOffsetRange(element.start, element.stop)

    def create_tracker(self, restriction: BeamOffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: OffsetRange, restriction: BeamOffsetRange):  # type: ignore[no-untyped-def]
        yield restriction

    def restriction_size(self, element: OffsetRange, restriction: BeamOffsetRange) -> int:
        return min(restriction.size(), 2**31)


def deferred_reads(client_options: dict[str, Any], ranges: list[OffsetRange]) -> Iterator[DeferredRead]:
    """The `DeferredRead`s a deferring `ReadKafkaStories` hands out for ``ranges`` when no runner
    splits them: one for each of its pieces (`kafka_source.split_ranges`, of `READ_SIZE`)."""
    reader = _ReadPartition(client_options, POLL_MS, IDLE_POLLS, READ_SIZE)
    restrictions = _PartitionRestrictions()
    for piece in split_ranges(sorted(ranges), READ_SIZE):
        yield from reader._deferred(
            piece, restrictions.create_tracker(restrictions.initial_restriction(piece))
        )


# What a reader's ``process`` asks Beam for: its restriction's tracker and a watermark it sets.
_RESTRICTION = beam.DoFn.RestrictionParam(_PartitionRestrictions())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _ReadPartition(beam.DoFn):
    """Splittable read of one partition's offsets with a kafka-python consumer kept per process (`CONSUMERS`).

    Bounded restrictions finish at their stop offset and fail loudly rather than return short.
    Unbounded ones checkpoint themselves with ``defer_remainder`` whenever a poll comes back empty,
    because Prism and the portable Flink runner never force a checkpoint; a caught-up partition
    advances its watermark to the wall clock so downstream windows close on quiet topics.
    """

    def __init__(
        self, client_options: dict[str, Any], poll_ms: int, idle_limit: int, defer: int | None = None
    ) -> None:
        self._options = client_options
        self._poll_ms = poll_ms
        self._idle_limit = idle_limit
        self._defer = defer  # bounded restrictions: claim reads of this many offsets, read none

    def process(self, element: OffsetRange, tracker: Any = _RESTRICTION, watermark: Any = _WATERMARK) -> Any:
        yield from self._read(element, tracker, watermark)

    def _deferred(self, element: OffsetRange, tracker: Any) -> Iterator[DeferredRead]:
        """The restriction as `DeferredRead`s of up to ``defer`` offsets, ending on multiples of
        ``defer`` (so on a block's end: `kafka_source.in_blocks`). A read's first and last offsets
        are claimed before it leaves, so a split of the restriction (which a runner may ask for at
        any time) can only fall between two reads; one that came between the two claims ends the
        read at the new stop."""
        position = tracker.current_restriction().start
        options = CONSUMERS.with_version(self._options)
        while tracker.try_claim(position):
            end = min((position // self._defer + 1) * self._defer, tracker.current_restriction().stop)
            split = end - 1 > position and not tracker.try_claim(end - 1)
            if split:  # the claim failed, but marks every offset up to the new stop as taken
                end = tracker.current_restriction().stop
            yield DeferredRead(options, OffsetRange(element.topic, element.partition, position, end))
            if split:
                return
            position = end

    def _read(self, element: OffsetRange, tracker: Any, watermark: Any) -> Iterator[Any]:
        restriction = tracker.current_restriction()
        bounded = restriction.stop < UNBOUNDED
        if self._defer and bounded:
            yield from self._deferred(element, tracker)
            return
        tp = TopicPartition(element.topic, element.partition)
        with CONSUMERS.reading(self._options, tp, restriction.start) as consumer:
            if bounded:
                yield from self._read_to_stop(consumer, tp, restriction.stop, tracker)
            else:
                yield from self._read_one_poll(consumer, tp, tracker, watermark)

    def _read_to_stop(
        self, consumer: KafkaConsumer, tp: TopicPartition, stop: int, tracker: Any
    ) -> Iterator[Any]:
        for batch in blocks_until(consumer, tp, stop, self._poll_ms, self._idle_limit):
            chunk = _claimed(batch, tracker)
            if chunk:
                yield _stamped(chunk)
            if len(chunk) < len(batch):
                return  # the runner split the restriction: the rest is another reader's
        tracker.try_claim(stop)  # past the end: marks the restriction done

    def _read_one_poll(
        self, consumer: KafkaConsumer, tp: TopicPartition, tracker: Any, watermark: Any
    ) -> Iterator[Any]:
        """One poll of an unbounded restriction; the rest goes back to the runner, which decides
        when to resume (Prism and the portable Flink runner never force a checkpoint)."""
        batch = poll_once(consumer, tp, self._poll_ms)
        if not batch:
            watermark.set_watermark(Timestamp.now() - Duration(seconds=1))
            tracker.defer_remainder(Duration(seconds=1))
            return
        chunk = _claimed(batch, tracker)
        if chunk:
            stamped = _stamped(chunk)
            current = watermark.current_watermark()
            if current is None or stamped.timestamp > current:
                watermark.set_watermark(stamped.timestamp)
            yield stamped
        if len(chunk) == len(batch):
            tracker.defer_remainder()


def _claimed(batch: list[Any], tracker: Any) -> list[dict[str, Any]]:
    """The batch's records, in order, up to the first one the restriction no longer holds."""
    chunk = []
    for record in batch:
        if not tracker.try_claim(record.offset):
            break
        chunk.append(record_of(record))
    return chunk


def _stamped(chunk: list[dict[str, Any]]) -> TimestampedValue:
    # The chunk carries its earliest record's time, so no record in it is late.
    return TimestampedValue(chunk, Timestamp(micros=min(r["timestamp_ms"] for r in chunk) * 1000))


class _ReadPartitionForever(_ReadPartition):
    @beam.DoFn.unbounded_per_element()
    def process(self, element: OffsetRange, tracker: Any = _RESTRICTION, watermark: Any = _WATERMARK) -> Any:
        yield from self._read(element, tracker, watermark)


class ReadKafkaStories(beam.PTransform):
    """Kafka records as dicts (topic, partition, offset, timestamp_ms, key, value), in chunks of up
    to `CHUNK_SIZE` of one partition in offset order (bounded: a block of offsets,
    `kafka_source.in_blocks`; unbounded: one poll's records), each chunk timestamped with its
    earliest record's Kafka time.

    Bounded when every range has a stop offset: each offset in the ranges is emitted exactly once
    per successful run. Unbounded when a range's stop is ``UNBOUNDED``:
    reads on from its start offset for ever (at-least-once across runner restarts; the story-id
    dedup keeps the committed output duplicate-free).

    With ``defer``, a bounded read emits `DeferredRead`s of up to `READ_SIZE` offsets instead of
    records, for the stage that takes them to read them where it works (`PrepareStories`
    does, where it prepares them): the same records, each exactly once, never through this process.
    """

    def __init__(
        self, client_options: dict[str, Any], ranges: list[OffsetRange], defer: bool = False
    ) -> None:
        super().__init__()
        if not ranges:
            raise ValueError("ReadKafkaStories needs at least one offset range")
        self._options = client_options
        self._ranges = sorted(ranges)
        self._defer = defer

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        unbounded = any(r.stop >= UNBOUNDED for r in self._ranges)
        reader = _ReadPartitionForever if unbounded else _ReadPartition
        defer = self._defer and not unbounded
        read = reader(self._options, POLL_MS, IDLE_POLLS, READ_SIZE if defer else None)
        # A runner spreads the elements of a Create over its workers, and a splittable DoFn's
        # restrictions stay on their element's worker (Flink keys them by element): bounded ranges
        # enter as pieces, so that a few partitions still spread evenly; deferred, as pieces of
        # one read each.
        size = READ_SIZE if defer else SPLIT_SIZE
        pieces = self._ranges if unbounded else list(split_ranges(self._ranges, size))
        return (
            pbegin
            | "Partitions" >> beam.Create(pieces)
            | "ReadPartitions" >> beam.ParDo(read).with_output_types(DeferredRead if defer else Chunk)
        )


# Parse, clean, tag: one stage each, for pipelines that run them apart.


def chunk_outputs(
    done: list[dict[str, Any]],
    letters: list[dict[str, Any]],
    wrap: Callable[[Any], Any] = lambda v: v,
    tag: str = DEAD_LETTERS,
) -> Iterator[Any]:
    """A stage's outputs for one chunk: its results as one chunk (none when empty) and each dead
    letter on the output ``tag``; ``wrap`` gives each a window and timestamp of its own."""
    if done:
        yield wrap(done)
    for letter in letters:
        yield pvalue.TaggedOutput(tag, wrap(letter))


# Prepare: parse, clean, tag and sign in one step (see `pipeline.prepare`).


def prepare_call(
    prepare: Callable[..., Any], element: list[dict[str, Any]] | DeferredRead, stages: tuple[Any, ...]
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The call that prepares one element (a chunk, or a deferred read's chunks) with ``prepare``
    and the rest of its arguments: one layout, so that whoever makes a call ahead of a pipeline
    makes the very call that pipeline makes."""
    if isinstance(element, DeferredRead):
        return prepare_read, (prepare, element, *stages)
    return prepare, (element, *stages)


def windowed(timestamp: Any, window: Any) -> Callable[[Any], WindowedValue]:
    """Wraps an output in the timestamp and window of the element it came from."""
    return lambda value: WindowedValue(value, timestamp, (window,))


class PrepareChunks(beam.DoFn):
    """Prepares each chunk (or deferred read: each of its chunks) where the runner runs it: the
    runner's own parallelism. `pipeline.accelerator` subclasses it to hand the calls to worker
    processes on one machine (``calls``)."""

    def __init__(self, pipeline_version: str, taxonomy: Taxonomy, shards: int, spill: str) -> None:
        self._stages: tuple[Any, ...] = (pipeline_version, taxonomy, shards, spill)

    def process(  # type: ignore[no-untyped-def]
        self,
        records: list[dict[str, Any]] | DeferredRead,
        timestamp=beam.DoFn.TimestampParam,  # noqa: B008
        window=beam.DoFn.WindowParam,  # noqa: B008
    ):
        wrap = windowed(timestamp, window)
        fn, args = prepare_call(pack_chunk, records, self._stages)
        many = isinstance(records, DeferredRead)  # read where it is prepared: its chunks' outputs
        for prepared, (wrap_done, many_done) in self.calls(fn, args, (wrap, many)):
            yield from prepared_outputs(prepared, wrap_done, many_done)

    def calls(self, fn: Callable[..., Any], args: tuple[Any, ...], context: Any) -> Iterator[tuple[Any, Any]]:
        """Makes ``fn(*args)``; yields ``(result, context)`` of each call done (here: this one)."""
        yield fn(*args), context


def prepared_outputs(prepared: Any, wrap: Callable[[Any], Any], many: bool = False) -> Iterator[Any]:
    """The outputs of one prepared chunk (rows or `Packed` rows, {stage: dead letters}), or of
    each of a list of them (``many``)."""
    for rows, letters in prepared if many else [prepared]:
        if rows:  # a chunk of rows, or of rows packed
            yield wrap(rows)
        for stage, stage_letters in letters.items():
            yield from chunk_outputs([], stage_letters, wrap, tag=stage)


# What makes a stage's DoFn: `PrepareChunks`, or the local accelerator's subclass of it.
PrepareFn = Callable[[str, Taxonomy, int, str], PrepareChunks]


class PrepareStories(beam.PTransform):
    """Chunks of Kafka records (or `kafka_source.DeferredRead`s, read where they are prepared) in;
    outputs ``rows`` (`rows.Packed` chunks of clean rows, tagged and signed, as Arrow for the data
    files of ``shards`` shards, beside their summaries) and one dead-letter output per stage of
    `STAGES`. Bounded or unbounded; every record leaves as one row or one dead letter. The stages
    are `prepare.prepare_chunk`'s: parse and validate, clean, tag, then `dedup.sign_rows`; a story
    a stage raises on leaves as a dead letter of that stage.

    Each chunk is prepared by `PrepareChunks`, where the runner runs it, unless ``prepare`` gives
    another maker of the DoFn (`pipeline.accelerator` does on one machine); the rows are the same
    either way. The Arrow of each file is spilled to the folder ``spill`` (`write.spill_dir`: beside
    the batch's staging folder, where the workers also write the data files; readers never see
    it, and whoever runs the pipeline removes it after), and only its path travels on
    (`write.pack_files`).
    """

    def __init__(
        self,
        pipeline_version: str,
        taxonomy: Taxonomy,
        shards: int,
        spill: str | Path,
        prepare: PrepareFn = PrepareChunks,
    ) -> None:
        super().__init__()
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self._version = pipeline_version
        self._taxonomy = taxonomy
        self._shards = shards
        self._spill = str(spill)
        self._prepare = prepare

    def expand(self, records: beam.PCollection) -> pvalue.DoOutputsTuple:
        prepare = self._prepare(self._version, self._taxonomy, self._shards, self._spill)
        return records | "ParseCleanTagSign" >> beam.ParDo(prepare).with_output_types(Packed).with_outputs(
            *STAGES, main="rows"
        )


# Deduplicate (see `pipeline.dedup`).


class _ApplyVerdicts(beam.DoFn):
    """Applies the batch's verdicts (one pickled dict, unpickled once into `verdict_columns`) to
    each data file's rows, ``(route, paths)`` from `GroupByFile`: the file's table is put together
    here from its spilled streams, so only their paths wait for the verdicts."""

    def setup(self) -> None:
        self._blob: bytes | None = None
        self._verdicts: Any = None

    def process(self, element: tuple[str, list[str]], verdicts: bytes | None):  # type: ignore[no-untyped-def]
        if self._verdicts is None or verdicts != self._blob:  # the same object on every call of a run
            self._verdicts = verdict_columns(pickle.loads(verdicts) if verdicts else {})  # our own bytes
            self._blob = verdicts
        yield element[0], apply_verdicts_to_table(unpack_files(element[1]), self._verdicts)


class _ClusterStories(beam.DoFn):
    def __init__(self, load_committed: Any, threshold: float, lookback: timedelta) -> None:
        self._load = load_committed
        self._threshold = threshold
        self._lookback = lookback

    def process(self, element: tuple[str, Iterable[bytes]]):  # type: ignore[no-untyped-def]
        stories = first_deliveries(summaries_of(element[1]))
        windows = windows_around([s[2] for s in stories], self._lookback // MICROSECOND)
        committed = self._load(windows, [s[1] for s in stories])
        verdicts = cluster_stories(stories, committed, self._threshold, self._lookback)
        kept = {s[1]: (s[0][2], s[0][3]) for s in stories}
        # One pickled dict for the whole batch: as 50,000 elements, Beam's per-element work and its
        # state cache's walk of every entry (to size the side input) cost ~1 s a 50k part.
        yield pickle.dumps(
            {story: verdict + kept[story] for story, verdict in verdicts.items()},
            protocol=pickle.HIGHEST_PROTOCOL,
        )


def _packed_summaries(packed: Packed) -> tuple[str, bytes]:
    return "batch", packed.summaries


class DeduplicateStories(beam.PTransform):
    """`rows.Packed` chunks in (rows signed and summarised, in Arrow by file, by `PrepareStories`);
    ``(route, table of kept rows)`` out, one per data file, with ``duplicate_of`` and
    ``cluster_id`` set.

    Rows must wait for the verdicts, which need the whole batch: they wait spilled as Arrow
    (`PrepareStories`), and only their paths, grouped by file (`GroupByFile`), wait in the runner;
    each file's table is put together where its verdicts are applied.

    Bounded input; the output is deterministic for a given input and committed dataset.
    ``load_committed`` is a picklable callable taking windows ``[(earliest, latest), ...]`` of
    publication times (UTC microseconds) and the batch's story ids, and returning the
    `dedup.CommittedIndex` of earlier batches (see `dedup.LoadCommitted`). ``threshold`` is the
    estimated containment over the shorter copy of body shingles (quoted speech left out) from
    which two stories are near-duplicates; ``lookback`` is how far apart in publication time two
    copies may be (also against committed stories). Only (order, id, time, signature) tuples are
    gathered in one place to be clustered, and the verdicts are joined back by id.
    """

    def __init__(
        self,
        load_committed: Any,
        threshold: float = DEFAULT_THRESHOLD,
        lookback: timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        super().__init__()
        if not callable(load_committed):
            raise ValueError("load_committed must be callable")
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if lookback <= timedelta(0):
            raise ValueError("lookback must be positive")
        self._load = load_committed
        self._threshold = threshold
        self._lookback = lookback

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        summaries = packed | "Summarise" >> beam.Map(_packed_summaries).with_output_types(tuple[str, bytes])
        verdicts = beam.pvalue.AsSingleton(
            summaries
            | "GatherSummaries" >> beam.GroupByKey()
            | "ClusterNearDuplicates"
            >> beam.ParDo(_ClusterStories(self._load, self._threshold, self._lookback)).with_output_types(
                bytes
            ),
            default_value=None,  # a batch without stories
        )
        # Verdicts are small (id -> canonical, cluster): a side input joins them to the rows.
        return (
            packed
            | "Gather" >> GroupByFile()
            | "ApplyVerdicts"
            >> beam.ParDo(_ApplyVerdicts(), verdicts).with_output_types(tuple[str, pa.Table])
        )


# Write the Parquet dataset (see `pipeline.write`).


class _WriteFiles(beam.DoFn):
    """Where a batch's files go: its staging folder, its batch number and (for backfills) its part."""

    def __init__(self, staging: str, batch: int, part: int) -> None:
        self._staging = staging
        self._batch = batch
        self._part = part


# Files encoded at once. A batch's files are written once its verdicts are in, when the workers
# that prepared its stories are idle: two threads use both cores.
_WRITERS = 2


class _WriteDataFile(_WriteFiles):
    """Parquet encoding and zstd release the GIL: files are encoded on threads while the next
    file's verdicts are applied. A file's (path, rows) leaves before the file is
    written, but only the bundle's end makes outputs count, and that waits for every write (and
    raises its error)."""

    def setup(self) -> None:
        self._threads = ThreadPoolExecutor(_WRITERS, thread_name_prefix="write-parquet")

    def start_bundle(self) -> None:
        self._writing: deque[Future[int]] = deque()

    def process(self, element: tuple[str, pa.Table]):  # type: ignore[no-untyped-def]
        route, rows = element
        if len(rows):  # else dedup dropped every row of this file: nothing to write
            partition, _, shard_text = route.rpartition("/")
            shard = int(shard_text)
            path = Path(self._staging) / "data" / partition / data_file_name(self._batch, shard, self._part)
            table = sorted_table(rows)
            while len(self._writing) > _WRITERS:  # memory holds the files encoding and one waiting
                self._writing.popleft().result()
            self._writing.append(self._threads.submit(write_table, path, table))
            yield (str(path), table.num_rows)

    def finish_bundle(self) -> None:
        while self._writing:
            self._writing.popleft().result()

    def teardown(self) -> None:
        self._threads.shutdown(wait=True)


class _WriteDeadLetters(_WriteFiles):
    def process(self, element: tuple[str, Iterable[dict[str, Any]]]):  # type: ignore[no-untyped-def]
        name = f"batch-{self._batch:06d}-{self._part:04d}-{element[0]}.parquet"
        path = Path(self._staging) / "dead_letters" / name
        letters = [dict(d, story_id=d.get("story_id") or "") for d in element[1]]
        yield (str(path), write_rows(path, letters, DEAD_LETTER_SCHEMA, "kafka_topic"))


def _files_of(packed: Packed) -> list[tuple[str, str]]:
    return packed.files


def _paths(route: str, paths: Iterable[str]) -> tuple[str, list[str]]:
    return route, list(paths)  # `unpack_files` puts the streams in Kafka order


class GroupByFile(beam.PTransform):
    """`Packed` chunks in; ``(route, paths)`` out: the spilled Arrow streams of every row of one
    data file (``route`` is ``partition/shard``; `write.unpack_files` reads them as one table).
    Bounded input. Dedup gathers its rows with this while they wait for their verdicts
    (`DeduplicateStories`), so the files need no second shuffle, and the runner holds paths, not
    rows."""

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        # String keys and values: every runner (Prism included) groups them on standard coders.
        return (
            packed
            | "FilesOf" >> beam.FlatMap(_files_of).with_output_types(tuple[str, str])
            | "GroupByRoute" >> beam.GroupByKey()
            | "Paths" >> beam.MapTuple(_paths).with_output_types(tuple[str, list[str]])
        )


class WriteParquetDataset(beam.PTransform):
    """Rows grouped by file and dead letters in; Parquet files in the batch's staging folder out.

    Input: ``((route, table) groups, {stage: dead letters})``: the groups come from `GroupByFile`,
    directly or through dedup; each stage's dead letters go to their own file, named after the
    stage. (One Flatten of them all made Beam's DirectRunner hold ~200 MiB more of a 50k-record
    batch: it materialises a Flatten whose inputs come from different stages.) Bounded input only.
    Nothing here is visible to readers: `Dataset.commit` publishes the files. Output is a
    PCollection of (path, rows) for each file written.
    """

    def __init__(self, staging: str | Path, batch: int, part: int = 0) -> None:
        super().__init__()
        if batch < 1:
            raise ValueError("batch numbers start at 1")
        self._staging = str(staging)
        self._batch = batch
        self._part = part

    def expand(self, inputs: tuple[beam.PCollection, dict[str, beam.PCollection]]) -> beam.PCollection:
        groups, dead_letters = inputs
        written = groups | "WriteDataFiles" >> beam.ParDo(
            _WriteDataFile(self._staging, self._batch, self._part)
        )
        files = [written]
        for stage, letters in dead_letters.items():
            files.append(
                letters
                | f"KeyDeadLetters[{stage}]"
                >> beam.Map(lambda d, stage=stage: (stage, d)).with_output_types(tuple[str, Any])
                | f"GroupDeadLetters[{stage}]" >> beam.GroupByKey()
                | f"WriteDeadLetters[{stage}]"
                >> beam.ParDo(_WriteDeadLetters(self._staging, self._batch, self._part))
            )
        return files | "AllFiles" >> beam.Flatten()
