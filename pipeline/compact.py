"""Compact a dataset: merge the small files of closed partitions without changing what readers see.

The merged file and the retirement of its inputs are one manifest, so a manifest reader sees either
all the old files or the one new file, never both and never neither. Retired files stay on disk
for a grace period (readers that listed them may still be reading) and are vacuumed after it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq

from pipeline.dataset import Dataset
from schemas import PARTITION_COLUMN

__all__ = ["compact_dataset", "CompactReport"]


@dataclass
class CompactReport:
    batch: int | None
    partitions: int
    files_merged: int
    rows: int
    vacuumed: int


def _day(partition: str) -> date | None:
    prefix = f"{PARTITION_COLUMN}="
    if not partition.startswith(prefix):
        return None
    try:
        return date.fromisoformat(partition[len(prefix) :])
    except ValueError:
        return None


def compact_dataset(output: str, closed_after_days: int = 1, vacuum_after_s: float = 3600.0) -> CompactReport:
    """Merge every closed partition (older than ``closed_after_days``) that has more than one file."""
    dataset = Dataset(output)
    today = datetime.now(UTC).date()
    with dataset.lock(wait=True):
        dataset.recover()
        groups: dict[str, list[str]] = defaultdict(list)
        for path, entry in dataset.live().items():
            partition, _, _name = path.removeprefix("data/").rpartition("/")
            day = _day(partition)
            if (
                entry["kind"] == "data"
                and day is not None
                and day <= today - timedelta(days=closed_after_days)
            ):
                groups[partition].append(path)
        groups = {p: sorted(files) for p, files in groups.items() if len(files) > 1}
        vacuumed = len(dataset.vacuum(vacuum_after_s))
        if not groups:
            return CompactReport(None, 0, 0, 0, vacuumed)
        batch = dataset.next_batch()
        staging = dataset.staging_dir(batch)
        carried, removes, rows = set(), [], 0
        for partition, files in sorted(groups.items()):
            target = f"data/{partition}/batch-{batch:06d}-compacted.parquet"
            (staging / target).parent.mkdir(parents=True, exist_ok=True)
            schema = pq.read_schema(dataset.root / files[0])
            # Stream row groups through one writer: memory stays at one row group, not one partition.
            with pq.ParquetWriter(staging / target, schema, compression="zstd") as writer:
                for path in files:
                    source = pq.ParquetFile(dataset.root / path)
                    for index in range(source.num_row_groups):
                        group = source.read_row_group(index)
                        rows += group.num_rows
                        writer.write_table(group)
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
        )
    return CompactReport(batch, len(groups), len(removes), rows, vacuumed)
