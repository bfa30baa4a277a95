"""One batch run: plan offset ranges, run the Beam pipeline into staging, commit with a manifest."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from kafka.errors import KafkaTimeoutError

from connectors.publisher import unreachable
from pipeline.clean import CleanStories
from pipeline.dataset import Dataset
from pipeline.dedup import DeduplicateStories, LoadCommitted
from pipeline.kafka_source import OffsetRange, ReadKafkaStories, plan_ranges
from pipeline.parse import DEAD_LETTERS, ParseRawStories
from pipeline.tagging import TagTopics, Taxonomy, load_taxonomy
from pipeline.write import WriteParquetDataset
from wirestream import __version__
from wirestream.config import Config
from wirestream.errors import UserError

__all__ = ["run_batch", "RunReport", "build_pipeline", "runner_options"]

log = logging.getLogger(__name__)

PIPELINE_VERSION = f"wirestream-{__version__}"


@dataclass
class RunReport:
    batch: int | None
    records: int = 0
    rows: int = 0
    dead_letters: int = 0
    duplicates_dropped: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None


def runner_options(config: Config, runner: str) -> list[str]:
    """Beam pipeline options for each supported runner (see deploy/ for Prism and Flink set-up)."""
    if runner == "direct":
        return ["--runner=DirectRunner"]
    raise UserError(f"unknown runner {runner!r}; known runners: direct")


def build_pipeline(
    pipeline: beam.Pipeline,
    client_options: dict[str, Any],
    ranges: list[OffsetRange],
    taxonomy: Taxonomy,
    staging: Path,
    batch: int,
    shards: int,
    committed_files: list[str],
) -> None:
    records = pipeline | "ReadKafkaStories" >> ReadKafkaStories(client_options, ranges)
    parsed = records | "ParseRawStories" >> ParseRawStories()
    rows = (
        parsed.stories
        | "CleanStories" >> CleanStories(PIPELINE_VERSION)
        | "DeduplicateStories" >> DeduplicateStories(LoadCommitted(committed_files))
        | "TagTopics" >> TagTopics(taxonomy)
    )
    _ = (rows, parsed[DEAD_LETTERS]) | "WriteParquetDataset" >> WriteParquetDataset(staging, batch, shards)


def run_batch(config: Config, output: str, runner: str | None = None) -> RunReport:
    """Process everything on the raw topic that the dataset has not committed; commit; return stats."""
    started = time.monotonic()
    dataset = Dataset(output)
    runner = runner or config.runner
    options = runner_options(config, runner)
    taxonomy = load_taxonomy(config.taxonomy)
    client_options = config.kafka_client_options()
    with dataset.lock():
        removed = dataset.recover()
        if removed:
            log.warning("discarded %d uncommitted file(s) left by an interrupted run", len(removed))
        try:
            ranges, warnings = plan_ranges(
                client_options,
                config.raw_topic,
                dataset.committed_offsets(config.raw_topic),
                config.max_records_per_batch,
            )
        except KafkaTimeoutError as exc:
            raise unreachable(config, exc) from None
        for warning in warnings:
            log.warning(warning)
        if not ranges:
            return RunReport(batch=None, warnings=warnings, seconds=time.monotonic() - started)
        batch = dataset.next_batch()
        staging = dataset.staging_dir(batch)
        total = sum(r.size for r in ranges)
        shards = max(1, math.ceil(total / config.rows_per_file))
        log.info(
            "batch %d: reading %d record(s) from %d partition range(s) on %s",
            batch,
            total,
            len(ranges),
            runner,
        )
        with beam.Pipeline(options=PipelineOptions(options)) as pipeline:
            build_pipeline(
                pipeline,
                client_options,
                ranges,
                taxonomy,
                staging,
                batch,
                shards,
                [str(p) for p in dataset.committed_files()],
            )
        offsets = [
            {"topic": r.topic, "partition": r.partition, "start": r.start, "stop": r.stop} for r in ranges
        ]
        manifest = dataset.commit(
            batch, staging, offsets, {"runner": runner, "pipeline_version": PIPELINE_VERSION}
        )
    stats = manifest["stats"]
    log.info("batch %d committed: %s", batch, stats)
    return RunReport(
        batch=batch,
        records=stats["records"],
        rows=stats["rows"],
        dead_letters=stats["dead_letters"],
        duplicates_dropped=stats["duplicates_dropped"],
        seconds=time.monotonic() - started,
        warnings=warnings,
        manifest=manifest,
    )
