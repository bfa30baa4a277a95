"""Read fixed Kafka offset ranges with kafka-python inside Beam (no cross-language transforms).

The driver plans the ranges (from the last committed manifest to the current end offsets), so a
run reads exactly what it will record in its manifest: the basis of the exactly-once contract.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from kafka import KafkaConsumer, TopicPartition

__all__ = ["OffsetRange", "ReadKafkaStories", "read_range", "split_ranges", "plan_ranges"]

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


def plan_ranges(
    client_options: dict[str, Any], topic: str, committed: dict[int, int], max_records: int | None = None
) -> tuple[list[OffsetRange], list[str]]:
    """Ranges from the committed position to the current end of each partition, plus warnings.

    A partition whose committed position fell below the log start (retention deleted records that
    were never processed) is read from the log start and reported: that loss happened in Kafka.
    """
    consumer = KafkaConsumer(**client_options, enable_auto_commit=False, request_timeout_ms=30000)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            return [], [f"topic {topic} does not exist yet"]
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
    finally:
        consumer.close()
    ranges, warnings = [], []
    budget = max_records
    for tp in tps:
        start = committed.get(tp.partition, begins[tp])
        if start < begins[tp]:
            warnings.append(
                f"{topic}/{tp.partition}: offsets {start}..{begins[tp] - 1} were deleted by retention before processing"
            )
            start = begins[tp]
        stop = ends[tp]
        if budget is not None:
            stop = min(stop, start + budget)
        if stop > start:
            ranges.append(OffsetRange(topic, tp.partition, start, stop))
            if budget is not None:
                budget -= stop - start
    return ranges, warnings


def split_ranges(ranges: list[OffsetRange], chunk: int) -> list[OffsetRange]:
    """Cut ranges into chunks so a runner can read partitions in parallel."""
    out = []
    for r in ranges:
        for start in range(r.start, r.stop, chunk):
            out.append(OffsetRange(r.topic, r.partition, start, min(r.stop, start + chunk)))
    return out


def read_range(
    consumer: KafkaConsumer, rng: OffsetRange, poll_timeout_ms: int = 1000, idle_limit: int = 30
) -> Iterator[dict[str, Any]]:
    """Every record in the range, in offset order; fails loudly rather than return a short read."""
    tp = TopicPartition(rng.topic, rng.partition)
    consumer.assign([tp])
    consumer.seek(tp, rng.start)
    idle = 0
    while consumer.position(tp) < rng.stop:
        batch = consumer.poll(timeout_ms=poll_timeout_ms, max_records=2000).get(tp, [])
        if not batch:
            idle += 1
            if idle >= idle_limit:
                raise TimeoutError(
                    f"no records from {tp} at offset {consumer.position(tp)} (want up to {rng.stop})"
                )
            continue
        idle = 0
        for record in batch:
            if record.offset >= rng.stop:
                return
            yield {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp_ms": record.timestamp,
                "key": record.key,
                "value": record.value,
            }


class _ReadRange(beam.DoFn):
    def __init__(self, client_options: dict[str, Any]) -> None:
        self._options = client_options
        self._consumer: KafkaConsumer | None = None

    def setup(self) -> None:
        self._consumer = KafkaConsumer(
            **self._options,
            enable_auto_commit=False,
            auto_offset_reset="none",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    def process(self, rng: OffsetRange):  # type: ignore[no-untyped-def]
        assert self._consumer is not None
        yield from read_range(self._consumer, rng)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


class ReadKafkaStories(beam.PTransform):
    """Bounded read of fixed offset ranges; emits dicts (topic, partition, offset, timestamp_ms, key, value).

    Every offset in the ranges is emitted exactly once per successful run.
    """

    def __init__(
        self, client_options: dict[str, Any], ranges: list[OffsetRange], chunk: int = 20_000
    ) -> None:
        super().__init__()
        if not ranges:
            raise ValueError("ReadKafkaStories needs at least one offset range")
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        self._options = client_options
        self._ranges = split_ranges(ranges, chunk)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "OffsetRanges" >> beam.Create(self._ranges)
            | "SpreadRanges" >> beam.Reshuffle()
            | "ReadRanges" >> beam.ParDo(_ReadRange(self._options))
        )
