"""A table's current rows together with the commit that added each of them.

Iceberg records, for every data file a snapshot lists, the snapshot that added it (a merged
manifest keeps that id), so the time a row became visible is the commit time of that snapshot:
what `wirestream dead-letters --since` filters on, and what `wirestream report` measures the
commit lag with. The files are read through the table's FileIO, so the same code reads a local
table and one on object storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import PREFIX, Dataset
from pipeline.storage import open_source
from schemas import CLEAN_SCHEMA, DEAD_LETTER_SCHEMA
from wirestream.errors import UserError

__all__ = ["CommittedFile", "committed_files", "read_committed"]

COMMITTED_AT = "_committed_at"
COMMIT_KIND = "_commit_kind"


@dataclass(frozen=True)
class CommittedFile:
    """A data file of the current snapshot and the commit that added it."""

    uri: str
    rows: int
    snapshot_id: int | None
    committed_ms: int | None  # None: the adding snapshot expired and the log no longer has it
    kind: str  # the adding commit's kind (ingest, backfill, compaction, migration), or "unknown"


def committed_files(table: Any) -> list[CommittedFile]:
    """Every data file ``table``'s current snapshot holds, with the commit that added it."""
    current = table.current_snapshot()
    if current is None:
        return []
    times = {entry.snapshot_id: entry.timestamp_ms for entry in table.metadata.snapshot_log}
    kinds: dict[int, str] = {}
    for snapshot in table.snapshots():
        times[snapshot.snapshot_id] = snapshot.timestamp_ms
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        kinds[snapshot.snapshot_id] = summary.get(PREFIX + "kind", "unknown")
    found = []
    for manifest in current.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            added = entry.snapshot_id
            found.append(
                CommittedFile(
                    uri=entry.data_file.file_path,
                    rows=entry.data_file.record_count,
                    snapshot_id=added,
                    committed_ms=times.get(added) if added is not None else None,
                    kind=kinds.get(added, "unknown") if added is not None else "unknown",
                )
            )
    return sorted(found, key=lambda f: f.uri)


def read_committed(
    dataset: Dataset, name: str, columns: list[str], since: datetime | None = None, table: Any = None
) -> pa.Table:
    """``columns`` of every row of table ``name`` (stories or dead_letters) as its current
    snapshot holds them, plus ``_committed_at`` (UTC time of the commit that added the row, null
    where that snapshot's time is no longer recorded) and ``_commit_kind``. No rows when there is
    no such table or nothing is committed. With ``since``, only the files a commit at or after it
    added are read (a file whose commit time is no longer recorded counts as older). ``table``:
    the table as already loaded, so that what is read is the snapshot the caller looked at.

    A column ``list.field`` (``topics.topic``) reads only that field of a list of structs, as
    ``list`` of structs holding it alone: a story's topics without their evidence."""
    schema = CLEAN_SCHEMA if name == "stories" else DEAD_LETTER_SCHEMA
    wanted = pa.schema([_field(schema, column) for column in columns])
    stamp = pa.timestamp("us", tz="UTC")
    parts = [
        pa.table(
            {**{f.name: pa.array([], f.type) for f in wanted}, COMMITTED_AT: pa.array([], stamp)}
        ).append_column(COMMIT_KIND, pa.array([], pa.string()))
    ]
    try:
        if table is None:
            table = dataset.table(name) if dataset.exists() else None
    except UserError:  # that table was never created (a dataset another tool registered, say)
        table = None
    since_ms = since.timestamp() * 1000 if since is not None else None
    for file in committed_files(table) if table is not None else []:
        if since_ms is not None and (file.committed_ms is None or file.committed_ms < since_ms):
            continue
        parquet = pq.ParquetFile(open_source(file.uri, dataset.settings.properties))
        part = parquet.read(columns=[_path(parquet, column) for column in columns])
        part = pa.table([part.column(f.name).cast(f.type) for f in wanted], schema=wanted)
        moment = file.committed_ms * 1000 if file.committed_ms is not None else None
        part = part.append_column(COMMITTED_AT, pa.array([moment] * part.num_rows, pa.int64()).cast(stamp))
        part = part.append_column(COMMIT_KIND, pa.array([file.kind] * part.num_rows, pa.string()))
        parts.append(part)
    return pa.concat_tables(parts)


def _field(schema: pa.Schema, column: str) -> pa.Field:
    """The Arrow field ``column`` reads as (nullable, without field ids)."""
    top, _, leaf = column.partition(".")
    kind = schema.field(top).type
    if leaf:
        kind = pa.list_(pa.struct([pa.field(leaf, kind.value_type.field(leaf).type)]))
    return pa.field(top, kind)


def _path(parquet: pq.ParquetFile, column: str) -> str:
    """The file's own path of ``column`` (a list's inner names depend on the writer)."""
    top, _, leaf = column.partition(".")
    if not leaf:
        return top
    for index in range(len(parquet.schema)):
        path = parquet.schema.column(index).path
        if path.startswith(top + ".") and path.endswith("." + leaf):
            return str(path)
    raise ValueError(f"{column} is not a column of the file")
