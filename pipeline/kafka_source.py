"""Fixed Kafka offset ranges: planning them, and reading one with a kafka-python consumer kept per
process. `transforms.ReadKafkaStories` reads them inside Beam (a splittable DoFn; no
cross-language transforms).

The driver plans the ranges (from the position the table's current snapshot records to the current
end offsets), so a run reads exactly what its snapshot will record: the basis of the exactly-once
contract.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from isal import igzip
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import NoOffsetForPartitionError, OffsetOutOfRangeError
from kafka.record import default_records

from pipeline.rows import CHUNK_SIZE
from wirestream.errors import UserError

__all__ = [
    "poll_once",
    "blocks_until",
    "in_blocks",
    "record_of",
    "OffsetRange",
    "plan_ranges",
    "plan_parts",
    "ranges_for_times",
    "cut_parts",
    "split_ranges",
    "fair_shares",
    "part_budget",
    "UNBOUNDED",
    "SPLIT_SIZE",
    "DeferredRead",
    "READ_SIZE",
]

UNBOUNDED = 2**63 - 1
# Offsets per piece of a bounded range, as the pipeline hands it to the splittable read: one block of
# `CHUNK_SIZE` (`in_blocks`). A runner spreads the pieces over its workers by a hash, so a few
# partitions make enough pieces to spread evenly (a 100k batch, 200 pieces).
SPLIT_SIZE = CHUNK_SIZE
# How long the broker may hold a fetch that finds nothing new (a caught-up partition).
FETCH_WAIT_MS = 100
# Offsets per deferred read (`DeferredRead`): a few chunks, about one fetch of gzip'd 4 KB stories,
# and ~0.3 s of a worker's time, so the last reads of a batch leave a worker idle only briefly.
# Reads end on its multiples, so on the end of a block of `CHUNK_SIZE` offsets (`in_blocks`).
READ_SIZE = 2000
POLL_MS = 1000
# Longest a batch's plan waits for the broker's offsets: a run that finds Kafka gone says so then.
PLAN_TIMEOUT_MS = 10_000
IDLE_POLLS = 30  # empty polls in a row before a bounded read gives up on its stop offset

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets [start, stop) of one topic partition."""

    topic: str
    partition: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return max(0, self.stop - self.start)


def fair_shares(pending: Sequence[int], budget: int | None) -> list[int]:
    """How many of each partition's pending records a batch of at most ``budget`` takes: all when
    they fit, else equal shares, a partition needing less than its share giving the rest to the
    others (max-min fair).

    Shares, not one partition after another, so that no partition waits for another's backlog to
    drain, and partitions a producer fills evenly give a batch the same stretch of time each: its
    dedup look-back then holds the stories around that stretch, not every story that earlier
    batches committed over it from other partitions (a 1M-story backfill of three partitions:
    ~37k committed stories in a part's look-back, against up to 158k).
    """
    if budget is None or sum(pending) <= budget:
        return list(pending)
    taken = [0] * len(pending)
    open_ = [i for i, wanted in enumerate(pending) if wanted > 0]
    left = budget
    while left and open_:
        each, extra = divmod(left, len(open_))
        open_.sort(key=lambda i: taken[i])  # the odd records go to those given least so far
        still = []
        for rank, i in enumerate(open_):
            give = min(each + (rank < extra), pending[i] - taken[i])
            taken[i] += give
            left -= give
            if taken[i] < pending[i]:
                still.append(i)
        open_ = still
    return taken


def split_ranges(ranges: Iterable[OffsetRange], size: int) -> Iterator[OffsetRange]:
    """Each bounded range cut into pieces of at most ``size`` offsets that end on multiples of
    ``size`` (so on the ends of the blocks `in_blocks` reads, for a multiple of `CHUNK_SIZE`) or on
    the range's stop."""
    for rng in ranges:
        start = rng.start
        while start < rng.stop:
            stop = min((start // size + 1) * size, rng.stop)
            yield replace(rng, start=start, stop=stop)
            start = stop


def cut_parts(ranges: Sequence[OffsetRange], size: int, short_tail: bool = True) -> list[list[OffsetRange]]:
    """Ranges cut into parts of at most ``size`` offsets (`part_budget`), each part taking
    `fair_shares` of what every range has left, so offsets stay in order per range and parts
    advance through all of them together."""
    return list(_shared_parts(ranges, size, short_tail))


def part_budget(pending: int, size: int | None, short_tail: bool = True) -> int | None:
    """How many of ``pending`` records the next part takes: ``size``, except that with
    ``short_tail`` a run of several parts ends with a short one. On one machine a part's end
    (clustering, verdicts, writing) is work for the pipeline process alone while the local
    accelerator prepares the next part beside it, and only the last part's end has no next part:
    a quarter-size last part shortens that idle tail fourfold. On a cluster every part is a job
    with a fixed cost to start, and no part is prepared ahead: parts are as large as allowed."""
    if size is None:
        return None
    if not short_tail:
        return min(size, pending)
    tail = size // 4
    return min(size, pending - tail) if pending > 2 * tail else pending


def _shared_parts(
    ranges: Sequence[OffsetRange], size: int | None, short_tail: bool = True
) -> Iterator[list[OffsetRange]]:
    position = [r.start for r in ranges]
    while True:
        left = [r.stop - at for r, at in zip(ranges, position, strict=True)]
        takes = fair_shares(left, part_budget(sum(left), size, short_tail))
        if not any(takes):
            return
        part = []
        for i, (rng, take) in enumerate(zip(ranges, takes, strict=True)):
            if take:
                part.append(OffsetRange(rng.topic, rng.partition, position[i], position[i] + take))
                position[i] += take
        yield part


def _inflate_gzip(payload: Any) -> bytes:
    return igzip.decompress(payload)


def inflate_gzip_with_isal() -> None:
    """Make kafka-python inflate gzip record batches with ISA-L's igzip instead of the standard
    library's `gzip.GzipFile`: ~4 us per 4 KB story against ~14, byte for byte the same output. The
    project's publisher compresses with gzip, so every record a reader takes passes through here.
    kafka-python has no codec option, so this replaces the one function its record batches call;
    the readers' consumers (`_Consumers.take`) install it."""
    default_records.gzip_decode = _inflate_gzip


class _Consumers:
    """This process's idle consumers, kept for its later pipelines: every batch or backfill part is
    a pipeline run of its own, planned first, and a new consumer's first poll (connecting, learning
    the broker's API versions and the topic's metadata) took ~0.25 s where a kept one's takes
    ~0.03 s, once a part and, in continuous mode, once every batch. A reader takes one for each
    read and gives it back, unassigned, when the read ends; at most `keep` of them wait, per set
    of client options."""

    def __init__(self, keep: int = 4) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: dict[str, list[KafkaConsumer]] = {}
        self._versions: dict[str, tuple[int, ...]] = {}
        self._topics: weakref.WeakKeyDictionary[KafkaConsumer, set[str]] = weakref.WeakKeyDictionary()

    def take(self, options: dict[str, Any]) -> KafkaConsumer:
        key = _options_key(options)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        inflate_gzip_with_isal()
        consumer = self._new(options)
        with self._lock:
            self._versions[key] = consumer.config["api_version"]
        return consumer

    def with_version(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the broker's API version this process learned with them, if it did:
        a consumer given it skips asking the broker (a worker's first read, ~0.1 s sooner)."""
        with self._lock:
            version = self._versions.get(_options_key(options))
        if version is None or "api_version" in options:
            return options
        return {**options, "api_version": version}

    @contextlib.contextmanager
    def reading(self, options: dict[str, Any], tp: TopicPartition, start: int) -> Iterator[KafkaConsumer]:
        """A kept consumer (`lent`) reading ``tp`` from ``start``, for the block."""
        with self.lent(options) as consumer:
            self._assign(consumer, tp, start)
            yield consumer

    def _assign(self, consumer: KafkaConsumer, tp: TopicPartition, start: int) -> None:
        """``consumer`` reading ``tp`` from ``start``. A consumer's first read of a topic looks up
        the partition's end offset first, which brings in the topic's metadata: a new consumer's
        first poll without it found no leader to fetch from and slept 0.1 s (``retry_backoff_ms``)
        before asking. The look-up waits at most the consumer's bootstrap timeout: one given its
        broker's API version never connected when it was made, and a broker gone since planning
        must fail the read, not hold it for ever."""
        with self._lock:
            known = tp.topic in self._topics.get(consumer, ())
        if not known:
            consumer.end_offsets([tp], timeout_ms=consumer.config["bootstrap_timeout_ms"])
            with self._lock:
                self._topics.setdefault(consumer, set()).add(tp.topic)
        consumer.assign([tp])
        consumer.seek(tp, start)

    @staticmethod
    def _new(options: dict[str, Any]) -> KafkaConsumer:
        return KafkaConsumer(
            **options,
            enable_auto_commit=False,
            auto_offset_reset="none",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            # A reader moves from partition to partition, and kafka-python sends a new partition's
            # fetch only when the one in flight returns: one issued past the end of the log held
            # the next partition back for the broker's whole wait (0.5 s by default).
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )

    def give_back(self, options: dict[str, Any], consumer: KafkaConsumer) -> None:
        try:
            consumer.unsubscribe()  # its fetched records and positions go with the assignment
        except Exception as exc:  # a consumer in a state it cannot leave is not worth keeping
            log.warning("closing a Kafka consumer instead of keeping it: %r", exc)
            consumer.close()
            return
        with self._lock:
            idle = self._idle.setdefault(_options_key(options), [])
            if len(idle) < self._keep:
                idle.append(consumer)
                return
        consumer.close()

    @contextlib.contextmanager
    def lent(self, options: dict[str, Any]) -> Iterator[KafkaConsumer]:
        """A kept consumer for the block, given back when it ends however it ends: a runner may
        drop a reader without calling its teardown, so no consumer outlives the read it serves (one
        left to the garbage collector unclosed kept refreshing metadata from the client's I/O
        thread)."""
        consumer = self.take(options)
        try:
            yield consumer
        finally:
            self.give_back(options, consumer)

    def idle(self, options: dict[str, Any]) -> list[KafkaConsumer]:
        with self._lock:
            return list(self._idle.get(_options_key(options), []))

    def close_idle(self) -> None:
        """Closes the consumers waiting here (at exit, or before their broker goes away: an idle
        consumer keeps its connection and its metadata refreshes, and logs each one that fails)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for consumer in (c for consumers in idle.values() for c in consumers):
            consumer.close()


def _options_key(options: dict[str, Any]) -> str:
    # A consumer given the broker's API version (`_Consumers.with_version`) is one of the same pool.
    return repr(sorted((name, value) for name, value in options.items() if name != "api_version"))


CONSUMERS = _Consumers()
atexit.register(CONSUMERS.close_idle)


@contextlib.contextmanager
def _partitions_of(
    client_options: dict[str, Any], topic: str
) -> Iterator[tuple[KafkaConsumer, list[TopicPartition]]]:
    """A consumer for offset look-ups, one of those the readers keep (`CONSUMERS`: a batch's plan
    and its read share one), and the topic's partitions (empty if no topic)."""
    with CONSUMERS.lent(client_options) as consumer:
        partitions = consumer.partitions_for_topic(topic) or set()
        yield consumer, [TopicPartition(topic, p) for p in sorted(partitions)]


def plan_ranges(
    client_options: dict[str, Any], topic: str, committed: dict[int, int], max_records: int | None = None
) -> tuple[list[OffsetRange], list[str]]:
    """Ranges from the committed position to the current end of each partition, at most
    ``max_records`` in all, shared fairly between the partitions (`fair_shares`); plus warnings.

    A partition whose committed position fell below the log start (retention deleted records that
    were never processed) is read from the log start and reported: that loss happened in Kafka.
    """
    parts, warnings = plan_parts(client_options, topic, committed, max_records, 1)
    return (parts[0] if parts else []), warnings


def plan_parts(
    client_options: dict[str, Any],
    topic: str,
    committed: dict[int, int],
    max_records: int | None,
    parts: int,
    short_tail: bool = True,
) -> tuple[list[list[OffsetRange]], list[str]]:
    """`plan_ranges`, and the plans of up to ``parts`` - 1 batches after it, were each to commit
    and nothing new to arrive (a run catching up prepares the next batch's first stories ahead);
    ``short_tail`` as in `part_budget`."""
    with _partitions_of(client_options, topic) as (consumer, tps):
        if not tps:
            return [], [f"topic {topic} does not exist yet"]
        ends = consumer.end_offsets(tps, timeout_ms=PLAN_TIMEOUT_MS)
        begins = consumer.beginning_offsets(tps, timeout_ms=PLAN_TIMEOUT_MS)
    pending, warnings = [], []
    for tp in tps:
        start = committed.get(tp.partition, begins[tp])
        if start < begins[tp]:
            warnings.append(
                f"{topic}/{tp.partition}: offsets {start}..{begins[tp] - 1} were deleted by retention before processing"
            )
            start = begins[tp]
        pending.append(OffsetRange(topic, tp.partition, start, max(start, ends[tp])))
    cut = _shared_parts(pending, max_records, short_tail)
    planned = [part for part, _ in zip(cut, range(parts), strict=False)]
    return planned, warnings


def end_offsets(client_options: dict[str, Any], topic: str) -> dict[int, int]:
    """The next offset Kafka will give each partition of ``topic`` (empty if no topic)."""
    with _partitions_of(client_options, topic) as (consumer, tps):
        if not tps:
            return {}
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps, PLAN_TIMEOUT_MS).items()}


def ranges_for_times(
    client_options: dict[str, Any], topic: str, since: datetime, until: datetime | None
) -> list[OffsetRange]:
    """Offsets of the records Kafka appended (or producers stamped) within [since, until)."""
    with _partitions_of(client_options, topic) as (consumer, tps):
        if not tps:
            return []
        ends = consumer.end_offsets(tps)

        def resolve(moment: datetime | None) -> dict[TopicPartition, int]:
            if moment is None:
                return dict(ends)
            found = consumer.offsets_for_times({tp: int(moment.timestamp() * 1000) for tp in tps})
            return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}

        starts, stops = resolve(since), resolve(until)
    return [OffsetRange(topic, tp.partition, starts[tp], stops[tp]) for tp in tps if stops[tp] > starts[tp]]


def poll_once(consumer: KafkaConsumer, tp: TopicPartition, poll_ms: int) -> list[Any]:
    """One poll's records of ``tp``: a batch fails whole, with the reason, when planned offsets
    are no longer on the broker."""
    try:
        return consumer.poll(timeout_ms=poll_ms, max_records=CHUNK_SIZE).get(tp, [])  # type: ignore[no-any-return]
    except (OffsetOutOfRangeError, NoOffsetForPartitionError):
        raise RecordsDeleted(
            f"{tp.topic}/{tp.partition}: offset {consumer.position(tp)} is no longer on the "
            "broker (retention deleted it, or the topic was reset, after this batch was planned); "
            "nothing of this batch is committed: run again to plan from what the broker holds"
        ) from None


def blocks_until(
    consumer: KafkaConsumer, tp: TopicPartition, stop: int, poll_ms: int, idle_limit: int
) -> Iterator[list[Any]]:
    """The records of an assigned ``tp`` until its position reaches ``stop``, one block of
    offsets to a list (`in_blocks`): a bounded read fails loudly after ``idle_limit`` empty polls
    in a row rather than return short."""
    return in_blocks(_polls_until(consumer, tp, stop, poll_ms, idle_limit))


def _polls_until(
    consumer: KafkaConsumer, tp: TopicPartition, stop: int, poll_ms: int, idle_limit: int
) -> Iterator[list[Any]]:
    idle = 0
    while consumer.position(tp) < stop:
        batch = poll_once(consumer, tp, poll_ms)
        if batch:
            idle = 0
            yield batch
            continue
        idle += 1
        if idle >= idle_limit:
            raise TimeoutError(f"no records from {tp} at offset {consumer.position(tp)} (want up to {stop})")


def in_blocks(polls: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """The polled records again, regrouped so that each list holds the records of one block of
    `CHUNK_SIZE` offsets of one partition (``offset // CHUNK_SIZE``) that the polls brought. A
    data file is written one such block to a chunk (`write.sorted_table`): a block read whole
    reaches it as the one piece a worker spilled, and is not copied there. A block is held until
    its last offset or a later block's record arrives, or the polls end."""
    held: list[Any] = []
    for batch in polls:
        for block, records in itertools.groupby(batch, key=_block_of):
            if held and _block_of(held[0]) != block:
                yield held
                held = []
            held.extend(records)
        if held and held[-1].offset % CHUNK_SIZE == CHUNK_SIZE - 1:
            yield held
            held = []
    if held:
        yield held


def _block_of(record: Any) -> int:
    return record.offset // CHUNK_SIZE  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DeferredRead:
    """Offsets a reader claimed but did not read: whoever takes this reads them (`chunks`), with a
    consumer its own process keeps (`CONSUMERS`). `transforms.ReadKafkaStories(defer=True)` hands these to the
    worker processes that prepare stories, so records go from Kafka straight into the process that
    parses them: reading and handing them over had cost the pipeline process ~25 us a story of its
    one GIL, a third of its work in a backfill."""

    options: dict[str, Any] = field(compare=False)
    range: OffsetRange

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        """The records of the range, each exactly once, in chunks of one block of offsets (`in_blocks`)."""
        rng = self.range
        tp = TopicPartition(rng.topic, rng.partition)
        with CONSUMERS.reading(self.options, tp, rng.start) as consumer:
            for batch in blocks_until(consumer, tp, rng.stop, POLL_MS, IDLE_POLLS):
                chunk = [record_of(r) for r in batch if rng.start <= r.offset < rng.stop]
                if chunk:
                    yield chunk


def record_of(record: Any) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp,
        "key": record.key,
        "value": record.value,
    }


class RecordsDeleted(UserError):
    """Planned offsets vanished from the broker mid-read: the batch fails whole and commits nothing."""
