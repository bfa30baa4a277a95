"""Runs of the pipeline: one ingest batch, continuous ingestion, and backfills over a time range.

Every run plans fixed Kafka offset ranges, runs Beam over them into a staging folder, and commits
one snapshot of the Iceberg table (`pipeline.dataset`). Large runs are cut into parts of at most ``max_records_per_batch`` records, each
one pipeline run, so memory stays flat however much a backfill covers.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from kafka.errors import KafkaError, KafkaTimeoutError

from connectors.publisher import unreachable
from pipeline.accelerator import Accelerator, accelerator_for
from pipeline.dataset import Dataset, catalog_settings
from pipeline.dedup import LoadCommitted
from pipeline.kafka_source import (
    OffsetRange,
    RecordsDeleted,
    cut_parts,
    plan_parts,
    ranges_for_times,
)
from pipeline.prepare import STAGES
from pipeline.runners import records_per_batch, runner_options
from pipeline.storage import open_source, refused
from pipeline.tagging import Taxonomy, load_taxonomy
from pipeline.transforms import (
    DeduplicateStories,
    PrepareChunks,
    PrepareFn,
    PrepareStories,
    ReadKafkaStories,
    WriteParquetDataset,
)
from pipeline.write import spill_dir
from wirestream import __version__
from wirestream.config import Config
from wirestream.errors import UserError

__all__ = [
    "run_batch",
    "run_until_caught_up",
    "run_continuous",
    "run_backfill",
    "RunReport",
    "build_pipeline",
]

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
    commit_seconds: float = 0.0  # placing the files and committing the snapshot
    warnings: list[str] = field(default_factory=list)
    commit: dict[str, Any] | None = None  # the snapshot's record (`Dataset.commit`)


def build_pipeline(
    pipeline: beam.Pipeline,
    client_options: dict[str, Any],
    ranges: list[OffsetRange],
    taxonomy: Taxonomy,
    staging: Path,
    batch: int,
    shards: int,
    committed_files: list[str],
    part: int = 0,
    prepare: PrepareFn | None = None,
    io_properties: dict[str, str] | None = None,
) -> None:
    """The pipeline of one batch: ReadKafkaStories → PrepareStories (parse, clean, tag, sign) →
    DeduplicateStories → WriteParquetDataset, its files then committed by `Dataset.commit`.

    Every stage is a plain DoFn whose parallelism is the runner's. Prepared rows wait for dedup's
    verdicts spilled as Arrow beside the batch's staging folder (`write.spill_dir`), which the
    workers share as they share the staging folder they write the data files into; only their
    paths cross the runner's shuffle (`GroupByFile` inside `DeduplicateStories`). With the local
    accelerator's ``prepare`` (`pipeline.accelerator`: worker processes), the reader only claims
    offsets while each worker process reads the records it prepares.
    """
    records = pipeline | "ReadKafkaStories" >> ReadKafkaStories(
        client_options, ranges, defer=prepare is not None
    )
    load_committed = LoadCommitted(committed_files, io_properties)
    # Tagging before dedup tags the few copies dedup drops, and lets dedup hold the rows for its
    # verdicts already grouped by file, as Arrow: the batch's full rows cross one shuffle, not two.
    prepared = records | "PrepareStories" >> PrepareStories(
        PIPELINE_VERSION,
        taxonomy,
        shards=shards,
        spill=spill_dir(staging, part),
        prepare=prepare or PrepareChunks,
    )
    files = prepared["rows"] | "DeduplicateStories" >> DeduplicateStories(load_committed)
    dead_letters = {stage: prepared[stage] for stage in STAGES}
    _ = (files, dead_letters) | "WriteParquetDataset" >> WriteParquetDataset(staging, batch, part)


@dataclass(frozen=True)
class _Next:
    """The pipeline run a run expects to make next: its ranges, staging folder and part."""

    ranges: list[OffsetRange]
    staging: Path
    part: int = 0


# Rows of one data file on a cluster: a batch's files are written by its workers at once, so a
# batch is cut into files of at most this many rows (~20 MB) for every worker to write some.
CLUSTER_ROWS_PER_FILE = 10_000


def _shards(config: Config, ranges: list[OffsetRange], local: bool = True) -> int:
    per_file = config.rows_per_file if local else min(config.rows_per_file, CLUSTER_ROWS_PER_FILE)
    return max(1, math.ceil(sum(r.size for r in ranges) / per_file))


def _run_pipeline(
    config: Config,
    runner: str,
    accelerator: Accelerator,
    ranges: list[OffsetRange],
    taxonomy: Taxonomy,
    staging: Path,
    batch: int,
    committed_files: list[str],
    part: int = 0,
    following: _Next | None = None,
    io_properties: dict[str, str] | None = None,
) -> None:
    shards = _shards(config, ranges, accelerator.local)
    ahead = None
    if following:
        ahead = (following.ranges, following.staging, following.part, _shards(config, following.ranges))
    prepare = accelerator.before_pipeline(ranges, ahead, PIPELINE_VERSION, taxonomy)
    try:
        with beam.Pipeline(options=PipelineOptions(runner_options(config, runner))) as pipeline:
            build_pipeline(
                pipeline,
                config.kafka_client_options(),
                ranges,
                taxonomy,
                staging,
                batch,
                shards,
                committed_files,
                part,
                prepare,
                io_properties,
            )
    except RecordsDeleted:
        raise
    except Exception as exc:
        # Portable runners report a worker's exception as text inside their own.
        deleted = _RECORDS_DELETED.search(str(exc))
        if deleted:
            raise RecordsDeleted(deleted.group(1)) from None
        if _disk_full(exc):
            dataset = Dataset(staging.parent.parent, catalog_settings(config))
            raise dataset.disk_full(batch, records=sum(r.size for r in ranges)) from None
        gone = _KAFKA_GONE.search(str(exc))
        if gone or isinstance(exc, KafkaError):
            reason = gone.group(0) if gone else f"{type(exc).__name__}: {exc}"
            raise KafkaUnreachable(
                f"Kafka at {config.bootstrap_servers} stopped answering while batch {batch} was read "
                f"({reason[:200]}); nothing of it was committed: run again once Kafka is back"
            ) from None
        refusal = refused(exc)
        if refusal:
            raise UserError(
                f"object storage refused the credentials reading the table ({refusal}); check "
                f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: batch {batch} was not committed"
            ) from None
        raise
    finally:
        shutil.rmtree(spill_dir(staging, part), ignore_errors=True)  # read by now, or abandoned
        accelerator.after_pipeline(staging, part)


_RECORDS_DELETED = re.compile(r"RecordsDeleted: ([^\n]+)")
# How a reader's lost broker surfaces through a runner (portable runners report it as text).
_KAFKA_GONE = re.compile(
    r"(KafkaConnectionError|NoBrokersAvailable|KafkaTimeoutError|no records from TopicPartition)[^\n]*"
)


class KafkaUnreachable(UserError):
    """Kafka did not answer while a batch was planned or read: nothing of the batch was committed.
    A one-shot run ends on it in one line; a continuous run waits for Kafka to come back."""


def _disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc)


def _plan(
    config: Config,
    position: dict[str, dict[int, int]],
    size: int | None,
    parts: int = 1,
    short_tail: bool = True,
) -> tuple[list[list[OffsetRange]], list[str]]:
    try:
        return plan_parts(
            config.kafka_client_options(),
            config.raw_topic,
            dict(position.get(config.raw_topic, {})),
            size,
            parts,
            short_tail,
        )
    except KafkaError as exc:
        raise KafkaUnreachable(str(unreachable(config, exc))) from None


def _report(commit: dict[str, Any], started: float, warnings: list[str]) -> RunReport:
    stats = commit["stats"]
    return RunReport(
        batch=commit["batch"],
        records=stats["records"],
        rows=stats["rows"],
        dead_letters=stats["dead_letters"],
        duplicates_dropped=stats["duplicates_dropped"],
        seconds=time.monotonic() - started,
        warnings=warnings,
        commit=commit,
    )


def _offsets(ranges: list[OffsetRange]) -> list[dict[str, Any]]:
    return [{"topic": r.topic, "partition": r.partition, "start": r.start, "stop": r.stop} for r in ranges]


def run_batch(config: Config, output: str, runner: str | None = None, wait: bool = False) -> RunReport:
    """One ingest batch: up to ``max_records_per_batch`` records the dataset has not committed."""
    dataset = Dataset(output, catalog_settings(config))
    runner = runner or config.runner
    accelerator = accelerator_for(config, runner)
    with dataset.lock(wait=wait), _run(dataset, accelerator):
        return _ingest(config, dataset, runner, accelerator, load_taxonomy(config.taxonomy))[0]


def run_until_caught_up(
    config: Config,
    output: str,
    runner: str | None = None,
    on_commit: Callable[[RunReport], None] | None = None,
) -> list[RunReport]:
    """Ingest batches until the dataset holds what the topic held when the run began.

    The batches are those `run_batch` would make one after another, in one hold of the dataset's
    lock: each batch's first stories are then prepared while the batch before it ends. ``on_commit``
    hears of each batch as it commits (a later batch's failure does not hide it).
    """
    runner = runner or config.runner
    accelerator = accelerator_for(config, runner)
    accelerator.start()
    dataset = Dataset(output, catalog_settings(config))
    taxonomy = load_taxonomy(config.taxonomy)
    reports: list[RunReport] = []
    with dataset.lock(wait=False), _run(dataset, accelerator):
        while True:
            report, more = _ingest(config, dataset, runner, accelerator, taxonomy, ahead=True)
            if report.batch is None:
                return reports
            reports.append(report)
            if on_commit:
                on_commit(report)
            if not more:  # the batch took all that was pending when it was planned
                return reports


@contextlib.contextmanager
def _run(dataset: Dataset, accelerator: Accelerator) -> Iterator[None]:
    """A run's hold of its dataset (under its lock): what crashed runs left goes first; at the end,
    what the accelerator prepared for a pipeline that did not come."""
    removed = dataset.recover()
    if removed:
        log.warning("discarded %d uncommitted file(s) left by an interrupted run", len(removed))
    try:
        yield
    finally:
        accelerator.end_run(dataset.staging_root)


def _ingest(
    config: Config,
    dataset: Dataset,
    runner: str,
    accelerator: Accelerator,
    taxonomy: Taxonomy,
    ahead: bool = False,
) -> tuple[RunReport, bool]:
    """Plan, run and commit one batch; with ``ahead``, prepare the next batch's first stories while
    this one ends, were it to be the batch planned after this one. Returns the batch's report and,
    with ``ahead``, whether more was pending than the batch took."""
    started = time.monotonic()
    planned_from, position, batch = dataset.state()
    size = records_per_batch(config, runner)
    parts, warnings = _plan(config, position, size, 2 if ahead else 1, accelerator.prepares_ahead)
    for warning in warnings:
        log.warning(warning)
    if not parts:
        return RunReport(batch=None, warnings=warnings, seconds=time.monotonic() - started), False
    ranges = parts[0]
    staging = dataset.staging_dir(batch)
    following = _Next(parts[1], dataset.staging_path(batch + 1)) if len(parts) > 1 else None
    log.debug(
        "batch %d: %d record(s) from %d range(s) on %s",
        batch,
        sum(r.size for r in ranges),
        len(ranges),
        runner,
    )
    _run_pipeline(
        config,
        runner,
        accelerator,
        ranges,
        taxonomy,
        staging,
        batch,
        dataset.committed_uris(),
        following=following,
        io_properties=dataset.settings.properties,
    )
    committing = time.monotonic()
    commit = dataset.commit(
        batch,
        staging,
        _offsets(ranges),
        {"runner": runner, "pipeline_version": PIPELINE_VERSION},
        planned_from=planned_from,
    )
    report = _report(commit, started, warnings)
    report.commit_seconds = time.monotonic() - committing
    return report, following is not None


def run_continuous(
    config: Config,
    output: str,
    stop: threading.Event,
    runner: str | None = None,
    on_commit: Callable[[RunReport], None] | None = None,
) -> int:
    """Commit new stories every ``commit_interval_s`` until ``stop`` is set; returns batches committed.

    Each commit is one bounded batch, so a commit is exactly as safe as a one-off run: a kill at any
    point loses nothing Kafka acknowledged and doubles nothing. A quiet topic costs one offset query
    per interval; data that arrives is committed within one interval plus one batch, never held
    back waiting for a file to fill up.
    """
    committed = 0
    failures = 0
    reached = False  # Kafka answered once: later silence is an outage, not a wrong address
    outage_since: float | None = None
    noticed = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = run_batch(config, output, runner, wait=True)
        except RecordsDeleted as exc:
            # The next batch plans from what the broker still holds (and says what it lost).
            log.warning("%s", exc)
            report = RunReport(batch=None, seconds=time.monotonic() - started)
        except KafkaUnreachable as exc:
            if not reached:
                raise
            if outage_since is None:
                outage_since = noticed = started
                log.warning("%s; waiting for it (checked with backoff up to 30s)", exc)
            elif started - noticed >= 60:
                noticed = started
                log.warning("still waiting for Kafka (%.0fs so far)", started - outage_since)
            stop.wait(min(30.0, 2.0 ** min(failures, 5)))
            failures += 1
            continue
        except UserError:
            raise
        except Exception as exc:
            if accelerator_for(config, runner or config.runner).local:
                raise  # a defect here, not a lost machine: its traceback says where
            # A cluster lost a worker or a TaskManager: the job failed and nothing of the batch was
            # committed (its files are unreferenced; the next attempt's commit supersedes them).
            failures += 1
            delay = min(60.0, 2.0**failures)
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            log.warning(
                "batch failed on the cluster, nothing of it committed; retrying in %.0fs: %s", delay, reason
            )
            stop.wait(delay)
            continue
        if outage_since is not None:
            log.warning("Kafka answers again after %.0fs; continuing", time.monotonic() - outage_since)
            outage_since = None
        failures = 0
        reached = True
        if report.batch is not None:
            committed += 1
            if on_commit:
                on_commit(report)
            if config.maintain_every_batches and committed % config.maintain_every_batches == 0:
                _expire(config, output)
        size = records_per_batch(config, runner or config.runner)
        full = size is not None and report.records >= size
        if not full:
            stop.wait(max(0.0, config.commit_interval_s - (time.monotonic() - started)))
    return committed


def _expire(config: Config, output: str) -> None:
    """Expire snapshots past the retention or beyond `snapshots_kept` (continuous mode's commits
    would otherwise make every later commit slower)."""
    dataset = Dataset(output, catalog_settings(config))
    from pyiceberg.exceptions import CommitFailedException

    with dataset.lock(wait=True):
        try:
            report = dataset.maintain(
                timedelta(days=config.snapshot_retention_days), keep=config.snapshots_kept, orphans=False
            )
        except CommitFailedException:  # another writer committed meanwhile: the next round expires
            log.info("snapshot expiry deferred: the table moved on while it ran")
            return
    if report.snapshots_expired:
        log.info("expired %d snapshot(s), removed %d file(s)", report.snapshots_expired, report.files_removed)


def _partition_dir(path: str) -> str:
    return path.rsplit("/", 1)[0]


def run_backfill(
    config: Config,
    output: str,
    since: datetime,
    until: datetime | None,
    runner: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Reprocess what Kafka holds for [since, until) and replace the affected partitions in one commit.

    Offsets come from the Kafka record timestamps. Every live file of a partition the backfill
    writes into (or that holds a story the backfill re-read) is retired by the same snapshot that
    adds the new files; rows of those files that the backfill did not re-read are carried over.
    Running the same backfill twice gives the same rows.
    """
    started = time.monotonic()
    runner = runner or config.runner
    accelerator = accelerator_for(config, runner)
    accelerator.start()
    dataset = Dataset(output, catalog_settings(config))
    taxonomy = load_taxonomy(config.taxonomy)
    part_size = records_per_batch(config, runner) or 50_000
    with dataset.lock(wait=True), _run(dataset, accelerator):
        try:
            ranges = ranges_for_times(config.kafka_client_options(), config.raw_topic, since, until)
        except KafkaTimeoutError as exc:
            raise unreachable(config, exc) from None
        if not ranges:
            return RunReport(batch=None, seconds=time.monotonic() - started)
        planned_from = dataset.current_snapshot_id()
        batch = dataset.next_batch()
        staging = dataset.staging_dir(batch)
        total = sum(r.size for r in ranges)
        done = 0
        # Stories the backfill re-reads must not count as already committed, or it would drop them.
        committed = _committed_view(dataset, staging, config.raw_topic, ranges)
        parts = cut_parts(ranges, part_size, accelerator.prepares_ahead)
        for part, part_ranges in enumerate(parts):
            staged = sorted((staging / "data").rglob("*.parquet")) if (staging / "data").exists() else []
            following = _Next(parts[part + 1], staging, part + 1) if part + 1 < len(parts) else None
            _run_pipeline(
                config,
                runner,
                accelerator,
                part_ranges,
                taxonomy,
                staging,
                batch,
                committed + [str(p) for p in staged],
                part,
                following,
                dataset.settings.properties,
            )
            done += sum(r.size for r in part_ranges)
            if progress:
                progress(done, total)
        removes, carried = _carry_over(dataset, staging, batch)
        commit = dataset.commit(
            batch,
            staging,
            _offsets(ranges),
            {
                "runner": runner,
                "pipeline_version": PIPELINE_VERSION,
                "since": since.isoformat(),
                "until": until.isoformat() if until else None,
            },
            kind="backfill",
            removes=removes,
            carried=carried,
            planned_from=planned_from,
        )
    return _report(commit, started, [])


def _without_offsets(table: pa.Table, topic: str, ranges: list[OffsetRange]) -> pa.Table:
    inside = pa.array([False] * table.num_rows)
    for rng in ranges:
        hit = pc.and_(
            pc.and_(
                pc.equal(table.column("kafka_topic"), topic),
                pc.equal(table.column("kafka_partition"), rng.partition),
            ),
            pc.and_(
                pc.greater_equal(table.column("kafka_offset"), rng.start),
                pc.less(table.column("kafka_offset"), rng.stop),
            ),
        )
        inside = pc.or_(inside, pc.fill_null(hit, False))
    return table.filter(pc.invert(inside))


def _committed_view(dataset: Dataset, staging: Path, topic: str, ranges: list[OffsetRange]) -> list[str]:
    """The live files, with rows from the re-read offsets filtered out (into staging copies)."""
    view = []
    properties = dataset.settings.properties
    for index, path in enumerate(dataset.committed_uris()):
        table = pq.read_table(open_source(path, properties), partitioning=None)
        kept = _without_offsets(table, topic, ranges)
        if kept.num_rows == table.num_rows:
            view.append(path)
        elif kept.num_rows:
            copy = staging / "_view" / f"{index:06d}.parquet"
            copy.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(kept, copy)
            view.append(str(copy))
    return view


def _carry_over(dataset: Dataset, staging: Path, batch: int) -> tuple[list[str], set[str]]:
    """Retire live files the backfill supersedes; stage what they hold that it did not re-read."""
    staged = sorted((staging / "data").rglob("*.parquet")) if (staging / "data").exists() else []
    new_ids: set[str] = set()
    partitions = set()
    for path in staged:
        new_ids.update(pq.read_table(path, columns=["id"], partitioning=None).column("id").to_pylist())
        partitions.add(_partition_dir(path.relative_to(staging).as_posix()))
    removes: list[str] = []
    carried: set[str] = set()
    for relative, entry in sorted(dataset.live().items()):
        if entry["kind"] != "data":
            continue
        path = open_source(entry["uri"], dataset.settings.properties)
        ids = pq.read_table(path, columns=["id"], partitioning=None).column("id")
        touches = bool(new_ids.intersection(ids.to_pylist()))
        partition = entry["partition_dir"]  # where the file's rows belong, wherever it lies
        if partition not in partitions and not touches:
            continue
        removes.append(relative)
        table = pq.read_table(open_source(entry["uri"], dataset.settings.properties), partitioning=None)
        keep = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array(sorted(new_ids), pa.string()))))
        if keep.num_rows:
            target = f"{partition}/batch-{batch:06d}-carry-{len(carried):04d}.parquet"
            (staging / target).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(keep, staging / target, compression="zstd")
            carried.add(target)
    return removes, carried
