"""The Kafka source in unbounded mode: a streaming Prism pipeline keeps reading new records."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.kafka_source import UNBOUNDED, OffsetRange
from pipeline.runners import runner_options
from pipeline.transforms import ReadKafkaStories
from tests.conftest import publish_raw, raw_story, wait_for
from wirestream.config import Config


class _Append(beam.DoFn):
    def __init__(self, path: str) -> None:
        self._path = path

    def process(self, chunk):  # type: ignore[no-untyped-def]
        with open(self._path, "a") as out:
            out.writelines(f"{record['partition']}:{record['offset']}\n" for record in chunk)


def lines(path: Path) -> set[str]:
    return set(path.read_text().splitlines()) if path.exists() else set()


def test_unbounded_read_keeps_up_with_new_records_on_prism(kafka_config, tmp_path):
    publish_raw(kafka_config, [raw_story(i) for i in range(6)])
    seen = tmp_path / "seen.txt"
    ranges = [
        OffsetRange(kafka_config.raw_topic, p, 0, UNBOUNDED) for p in range(kafka_config.topic_partitions)
    ]
    options = PipelineOptions([*runner_options(kafka_config, "prism"), "--streaming"])
    pipeline = beam.Pipeline(options=options)
    _ = (
        pipeline
        | ReadKafkaStories(kafka_config.kafka_client_options(), ranges)
        | beam.ParDo(_Append(str(seen)))
    )
    result = pipeline.run()
    try:
        wait_for(lambda: len(lines(seen)) == 6, 120, "the records published before the start")
        publish_raw(kafka_config, [raw_story(i) for i in range(6, 10)])
        # Records published after the pipeline started arrive without a restart: the restrictions
        # checkpoint themselves (defer_remainder) and the runner resumes them.
        wait_for(lambda: len(lines(seen)) == 10, 120, "the records published after the start")
    finally:
        result.cancel()


def test_planned_offsets_deleted_before_the_read_fail_the_batch_with_the_reason(kafka_config, tmp_path):
    """Retention (here, an explicit delete) removes records between planning and reading: the batch
    fails whole with a plain message, commits nothing, and the next run plans from what is left."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    from pipeline.accelerator import accelerator_for
    from pipeline.dataset import Dataset
    from pipeline.kafka_source import RecordsDeleted, plan_ranges
    from pipeline.run import _run_pipeline, run_batch
    from pipeline.tagging import load_taxonomy

    publish_raw(kafka_config, [raw_story(i) for i in range(12)])
    options = kafka_config.kafka_client_options()
    ranges, _warnings = plan_ranges(options, kafka_config.raw_topic, {})
    assert sum(r.size for r in ranges) == 12
    admin = KafkaAdminClient(**options)
    try:
        admin.delete_records({TopicPartition(r.topic, r.partition): r.stop - 1 for r in ranges})
    finally:
        admin.close()
    output = tmp_path / "out"
    dataset = Dataset(str(output))
    with pytest.raises(RecordsDeleted, match="no longer on the broker"):
        _run_pipeline(
            kafka_config,
            "direct",
            accelerator_for(kafka_config, "direct"),
            ranges,
            load_taxonomy(),
            dataset.staging_dir(1),
            1,
            dataset.committed_files(),
        )
    # The next run reads only the last record of each partition, which retention left.
    report = run_batch(kafka_config, str(output))
    assert report.records == len(ranges)
    assert Dataset(str(output)).committed_files()


def _pooled_apart(config: Config) -> Config:
    """``config`` with client options of its own (the same broker, listed twice), so that the
    consumers its readers keep are a test's own: a reader of an earlier test's cancelled Prism
    pipeline may still be finishing its last poll in this process, with the same pool."""
    return replace(config, bootstrap_servers=f"{config.bootstrap_servers},{config.bootstrap_servers}")


def test_later_pipelines_in_a_process_read_with_the_consumer_it_kept(kafka_config, tmp_path):
    """Each batch is a pipeline run of its own; its reader takes the consumer an earlier one gave
    back, unassigned, and reads exactly its own ranges with it."""
    from pipeline.kafka_source import CONSUMERS
    from pipeline.run import run_batch

    kafka_config = _pooled_apart(kafka_config)
    options = kafka_config.kafka_client_options()
    publish_raw(kafka_config, [raw_story(i) for i in range(9)])
    assert run_batch(kafka_config, str(tmp_path / "out")).rows == 9
    kept = CONSUMERS.idle(options)
    assert kept and all(not consumer.assignment() for consumer in kept)
    publish_raw(kafka_config, [raw_story(i) for i in range(9, 14)])
    assert run_batch(kafka_config, str(tmp_path / "out")).rows == 5
    assert {id(c) for c in CONSUMERS.idle(options)} == {id(c) for c in kept}


def test_a_reader_gives_its_consumer_back_when_its_read_ends_without_a_teardown(kafka_config):
    """Runners may drop a reader without calling its teardown: the consumer it read with is back in
    the process's pool (where exit and the test broker's teardown close it) as soon as each read
    ends, bounded or unbounded."""
    from apache_beam.runners.sdf_utils import RestrictionTrackerView, ThreadsafeRestrictionTracker
    from kafka import KafkaConsumer, TopicPartition

    from pipeline.kafka_source import CONSUMERS
    from pipeline.transforms import _PartitionRestrictions, _ReadPartition

    options = _pooled_apart(kafka_config).kafka_client_options()
    publish_raw(kafka_config, [raw_story(i) for i in range(8)])
    probe = KafkaConsumer(**options)
    tps = [TopicPartition(kafka_config.raw_topic, p) for p in range(kafka_config.topic_partitions)]
    ends = probe.end_offsets(tps)
    probe.close()
    tp = max(tps, key=lambda t: ends[t])
    CONSUMERS.close_idle()
    reader = _ReadPartition(options, poll_ms=500, idle_limit=20)
    provider = _PartitionRestrictions()

    class Watermark:
        def current_watermark(self):  # type: ignore[no-untyped-def]
            return None

        def set_watermark(self, _timestamp):  # type: ignore[no-untyped-def]
            pass

    for stop in (ends[tp], UNBOUNDED):
        element = OffsetRange(tp.topic, tp.partition, 0, stop)
        tracker = RestrictionTrackerView(
            ThreadsafeRestrictionTracker(provider.create_tracker(provider.initial_restriction(element)))
        )
        read = sum(len(chunk.value) for chunk in reader.process(element, tracker, Watermark()))
        # a bounded read reads its range; an unbounded one reads one poll, then defers the rest
        assert read == ends[tp] if stop == ends[tp] else 0 < read <= ends[tp]
        idle = CONSUMERS.idle(options)
        assert len(idle) == 1 and not idle[0].assignment()
    CONSUMERS.close_idle()


def test_deferred_reads_carry_the_broker_version_the_planner_learned(kafka_config):
    """A worker's new consumer is given the API version the pipeline process learned when it
    planned, so it does not ask the broker again; it reads the range exactly."""
    from kafka import KafkaConsumer

    from pipeline.kafka_source import CONSUMERS, DeferredRead, plan_ranges
    from pipeline.transforms import deferred_reads

    options = kafka_config.kafka_client_options()
    publish_raw(kafka_config, [raw_story(i) for i in range(12)])
    CONSUMERS.close_idle()
    ranges, _ = plan_ranges(options, kafka_config.raw_topic, {})
    probe = KafkaConsumer(**options)
    learned = probe.config["api_version"]
    probe.close()
    reads = list(deferred_reads(options, ranges))
    assert reads and all(read.options == {**options, "api_version": learned} for read in reads)
    assert "api_version" not in options
    CONSUMERS.close_idle()  # a new consumer per read below, as in a new worker
    offsets = []
    for read in reads:
        assert isinstance(read, DeferredRead)
        offsets += [(r["partition"], r["offset"]) for chunk in read.chunks() for r in chunk]
        CONSUMERS.close_idle()
    assert sorted(offsets) == sorted((r.partition, o) for r in ranges for o in range(r.start, r.stop))
