"""The Kafka source in unbounded mode: a streaming Prism pipeline keeps reading new records."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.kafka_source import UNBOUNDED, OffsetRange, ReadKafkaStories
from pipeline.runners import runner_options
from tests.conftest import publish_raw, raw_story, wait_for


class _Append(beam.DoFn):
    def __init__(self, path: str) -> None:
        self._path = path

    def process(self, record):  # type: ignore[no-untyped-def]
        with open(self._path, "a") as out:
            out.write(f"{record['partition']}:{record['offset']}\n")


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
