"""Compact the stories table: merge the small files of closed partitions in one snapshot.

The merged files and the retirement of their inputs are one snapshot, so a reader sees either all
the old files or the new ones, never both and never neither. A partition is an ingestion day, so a
day is closed once it has passed: only a backfill writes into it again. After merging, `maintain`
expires snapshots older than the retention and removes the files only they reached.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import Dataset, MaintainReport
from pipeline.storage import open_source
from pipeline.write import write_table
from schemas import CLEAN_SCHEMA, PARTITION_COLUMN

__all__ = ["compact_dataset", "CompactReport"]


@dataclass
class CompactReport:
    batch: int | None
    partitions: int
    files_merged: int
    rows: int
    maintained: MaintainReport


def _day(partition: str) -> date | None:
    prefix = f"{PARTITION_COLUMN}="
    if not partition.startswith(prefix):
        return None
    try:
        return date.fromisoformat(partition[len(prefix) :])
    except ValueError:
        return None


def compact_dataset(
    dataset: Dataset,
    closed_after_days: int = 1,
    retention: timedelta = timedelta(days=7),
    keep: int | None = None,
) -> CompactReport:
    """Merge every closed partition (older than ``closed_after_days``) that has more than one file
    into one file, in Kafka order; then expire what is older than ``retention``."""
    today = datetime.now(UTC).date()
    with dataset.lock(wait=True):
        dataset.recover()
        dataset.table()  # a clear error when there is nothing to compact
        groups: dict[str, list[str]] = defaultdict(list)
        planned_from = dataset.current_snapshot_id()
        live = dataset.live()
        for key, entry in live.items():
            partition, _, _name = key.removeprefix("data/").rpartition("/")
            day = _day(partition)
            if (
                entry["kind"] == "data"
                and day is not None
                and day <= today - timedelta(days=closed_after_days)
            ):
                groups[partition].append(key)
        groups = {p: sorted(files) for p, files in groups.items() if len(files) > 1}
        batch, removes, rows = None, [], 0
        if groups:
            batch = dataset.next_batch()
            staging = dataset.staging_dir(batch)
            carried = set()
            for partition, files in sorted(groups.items()):
                target = f"data/{partition}/batch-{batch:06d}-compacted.parquet"
                table = pa.concat_tables(
                    pq.read_table(
                        open_source(live[f]["uri"], dataset.settings.properties), schema=CLEAN_SCHEMA
                    )
                    for f in files
                )
                rows += write_table(
                    staging / target,
                    table.sort_by(
                        [("kafka_partition", "ascending"), ("kafka_offset", "ascending"), ("id", "ascending")]
                    ),
                )
                carried.add(target)
                removes.extend(files)
            dataset.commit(
                batch,
                staging,
                [],
                {"compacted": sorted(groups)},
                kind="compaction",
                removes=removes,
                carried=carried,
                planned_from=planned_from,
            )
        maintained = dataset.maintain(retention, keep)
    return CompactReport(batch, len(groups), len(removes), rows, maintained)
