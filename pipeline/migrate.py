"""Migrate a dataset of the manifest format (``_manifests/batch-N.json`` beside Hive-partitioned
Parquet) into the Iceberg tables, without rewriting its files.

The manifests are applied in batch order, as their readers did: each adds its files and retires
the ones it ``removes``. The live files are registered in place, in one snapshot of each table whose
summary carries where ingestion had reached (the furthest offset any ingest manifest recorded per
partition), so the next `run` continues from there. A data file whose rows were ingested on more
than one day (the table is partitioned by ingestion day) is the one exception: its rows are written
again, one file per day, beside the table's own files; the report counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.dataset import BatchStats, Dataset
from pipeline.storage import local_path
from pipeline.write import write_table
from schemas import PARTITION_COLUMN, PARTITION_SOURCE
from wirestream.errors import UserError

__all__ = ["migrate", "MigrateReport", "read_manifests"]


@dataclass
class MigrateReport:
    manifests: int
    data_files: int
    dead_letter_files: int
    rows: int
    rewritten: int  # data files split by ingestion day
    snapshot_id: int | None


def read_manifests(source: Path) -> list[dict[str, Any]]:
    folder = source / "_manifests"
    if not folder.is_dir():
        raise UserError(f"{source} has no _manifests folder: not a manifest-format dataset")
    manifests = []
    for path in sorted(folder.glob("batch-*.json")):
        try:
            manifest = json.loads(path.read_text("utf-8"))
            int(manifest["batch"])
            list(manifest.get("files", []))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a readable manifest ({exc}); repair or remove it first") from None
        manifests.append(manifest)
    if not manifests:
        raise UserError(f"{folder} holds no manifests")
    return sorted(manifests, key=lambda m: m["batch"])


def _live(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        for path in manifest.get("removes", []):
            files.pop(path, None)
        for entry in manifest.get("files", []):
            files[entry["path"]] = entry
    return files


def _days(path: Path) -> list[str]:
    times = pq.read_table(path, columns=[PARTITION_SOURCE]).column(PARTITION_SOURCE)
    return sorted(
        {d.isoformat() if d else "null" for d in pc.unique(pc.cast(times, pa.date32())).to_pylist()}
    )


def migrate(source: str | Path, dataset: Dataset) -> MigrateReport:
    """Register the live files of the manifest-format dataset at ``source`` in ``dataset``'s tables,
    which must hold nothing yet."""
    source = Path(source).resolve()
    manifests = read_manifests(source)
    if dataset.commits():
        raise UserError("the target table already holds commits: migrate into a new output")
    live = _live(manifests)
    missing = [p for p in live if not (source / p).is_file()]
    if missing:
        raise UserError(f"{len(missing)} live file(s) are missing, e.g. {source / missing[0]}")
    position: dict[str, dict[int, int]] = {}
    records = duplicates = 0
    for manifest in manifests:
        if manifest.get("kind", "ingest") != "ingest":
            continue
        stats = manifest.get("stats", {})
        records += int(stats.get("records", 0))
        duplicates += int(stats.get("duplicates_dropped", 0))
        for rng in manifest.get("offsets", []):
            parts = position.setdefault(rng["topic"], {})
            parts[int(rng["partition"])] = max(parts.get(int(rng["partition"]), 0), int(rng["stop"]))
    data: list[str] = []
    letters: list[str] = []
    rewritten = rows = 0
    with dataset.lock(wait=False):
        table = dataset.table(create=True)
        target_root = local_path(table.location()) if dataset.embedded else None
        for relative, entry in sorted(live.items()):
            path = source / relative
            if entry["kind"] != "data":
                letters.append(f"file://{path}")
                continue
            rows += int(entry.get("rows", 0))
            days = _days(path)
            if len(days) == 1:
                data.append(f"file://{path}")
                continue
            if target_root is None:
                raise UserError(f"{path} spans several ingestion days; migrate into the embedded catalog")
            whole = pq.read_table(path)
            day_of = pc.cast(whole.column(PARTITION_SOURCE), pa.date32())
            for day in days:
                mask = (
                    pc.is_null(day_of)
                    if day == "null"
                    else pc.equal(day_of, pa.scalar(date.fromisoformat(day), pa.date32()))
                )
                name = f"migrated-{Path(relative).stem}-{day}.parquet"
                out = target_root / "data" / f"{PARTITION_COLUMN}={day}" / name
                write_table(out, whole.filter(pc.fill_null(mask, False)))
                data.append(f"file://{out}")
            rewritten += 1
        dead = sum(int(e.get("rows", 0)) for e in live.values() if e["kind"] != "data")
        commit = dataset.register(
            max(int(m["batch"]) for m in manifests),
            data,
            letters,
            position,
            BatchStats(records=records, rows=rows, dead_letters=dead),
            {"migrated_from": str(source), "duplicates_dropped_before": duplicates},
        )
    return MigrateReport(len(manifests), len(data), len(letters), rows, rewritten, commit.get("snapshot_id"))
