"""Incremental warehouse loads driven by the stories table's snapshots.

The contract for any warehouse: remember the table's uuid and the last snapshot you loaded; for each
snapshot after it, delete the rows of every file it removed and insert the rows of every file it
added. A first load, or one whose last snapshot has since been expired, compares files instead: the
rows of files the current snapshot no longer lists go, and files not loaded yet come in. `changes_since` lists the snapshots' files; `load_duckdb` applies them inside one
DuckDB transaction per snapshot. Warehouses that read Iceberg themselves (Spark, Trino, Snowflake,
BigQuery, DuckDB's iceberg extension) need none of this: they read the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import STORIES, Dataset, commit_record
from pipeline.storage import is_local, local_path, open_source
from wirestream.errors import UserError

__all__ = ["changes_since", "load_duckdb", "LoadReport"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _changes(dataset: Dataset, table: Any, snapshot: Any) -> dict[str, Any]:
    from pyiceberg.manifest import ManifestEntryStatus

    added, removed = [], []
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        # A manifest this snapshot wrote holds the files it added (ADDED, with its id) and the files
        # it removed (DELETED; pyiceberg keeps the id of the snapshot that had added them).
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id != snapshot.snapshot_id:
                continue
            item = {
                "path": dataset.key_of(STORIES, entry.data_file.file_path, table),
                "uri": entry.data_file.file_path,
                "rows": entry.data_file.record_count,
                "bytes": entry.data_file.file_size_in_bytes,
            }
            if entry.status == ManifestEntryStatus.ADDED:
                added.append(item)
            elif entry.status == ManifestEntryStatus.DELETED:
                removed.append(item)
    return {
        "added": sorted(added, key=lambda f: f["path"]),
        "removed": sorted(removed, key=lambda f: f["path"]),
    }


def changes_since(dataset: Dataset, since: int | None) -> list[dict[str, Any]]:
    """The snapshots after ``since`` (every one the table's history keeps when None), oldest first:
    what each added and removed, with row counts. Raises when ``since`` is not in the history."""
    table = dataset.table()
    history = list(reversed(list(dataset._ancestry(table))))
    ids = [s.snapshot_id for s in history]
    if since is not None:
        if since not in ids:
            raise UserError(
                f"snapshot {since} is not in the history of {dataset._identifier(STORIES)} "
                "(expired, or another table's): load the current snapshot whole instead"
            )
        history = history[ids.index(since) + 1 :]
    out = []
    for snapshot in history:
        commit = commit_record(snapshot)
        out.append(
            {
                "table_uuid": str(table.metadata.table_uuid),
                "snapshot_id": snapshot.snapshot_id,
                "parent_id": snapshot.parent_snapshot_id,
                "committed_at": commit["committed_at"],
                "batch": commit.get("batch"),
                "kind": commit.get("kind"),
                "operation": commit.get("operation"),
                **_changes(dataset, table, snapshot),
            }
        )
    return out


@dataclass
class LoadReport:
    snapshots: list[int] = field(default_factory=list)
    rows_inserted: int = 0
    rows_deleted: int = 0
    full: bool = False  # compared with the current snapshot file by file (first load, or history expired)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def load_duckdb(dataset: Dataset, db: str, table: str = "stories") -> LoadReport:
    """Load every snapshot not yet loaded into ``table``; loading twice adds nothing.

    Rows keep the file they came from in ``wirestream_file`` (the file's path under the table's
    location), so a snapshot's removals find them whatever folder the files are read from."""
    if not _IDENTIFIER.match(table):
        raise UserError(f"table name {table!r} must be a plain SQL identifier")
    _check_database(db)
    source_table = dataset.table()
    uuid = str(source_table.metadata.table_uuid)
    current = source_table.current_snapshot()
    report = LoadReport()
    try:
        con = duckdb.connect(db)
    except duckdb.Error as exc:
        raise UserError(f"{db} is not a DuckDB database: {exc}") from None
    with con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS wirestream_loads (table_uuid VARCHAR, target VARCHAR, "
            "snapshot_id BIGINT, loaded_at TIMESTAMPTZ DEFAULT now(), PRIMARY KEY (table_uuid, target, snapshot_id))"
        )
        row = con.execute(
            "SELECT snapshot_id FROM wirestream_loads WHERE table_uuid = ? AND target = ? "
            "ORDER BY loaded_at DESC, snapshot_id DESC LIMIT 1",
            [uuid, table],
        ).fetchone()
        last = int(row[0]) if row else None
        if current is None or last == current.snapshot_id:
            return report
        try:
            steps = changes_since(dataset, last) if last is not None else None
        except UserError:
            steps = None  # expired since the last load: compare files instead
        if steps is None:
            report.full = True
            steps = [_reconcile(con, table, dataset, current.snapshot_id)]
        for step in steps:
            con.execute("BEGIN TRANSACTION")
            try:
                _apply(con, table, dataset, step, report)
                con.execute(
                    "INSERT INTO wirestream_loads (table_uuid, target, snapshot_id) VALUES (?, ?, ?)",
                    [uuid, table, step["snapshot_id"]],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            report.snapshots.append(step["snapshot_id"])
    return report


def _check_database(db: str) -> None:
    """Refuse, before anything is read or written, a --db that is a folder or a file of another
    kind (DuckDB would not open it; it is never overwritten). A missing file is a new database."""
    path = Path(db)
    if path.is_dir():
        raise UserError(f"--db {db} is a folder, not a DuckDB database file")
    if not path.exists():
        return
    try:
        duckdb.connect(db, read_only=True).close()
    except duckdb.Error as exc:
        if "not a valid DuckDB database" in str(exc):
            raise UserError(f"--db {db} is not a DuckDB database file") from None
        raise UserError(f"--db {db}: DuckDB cannot open it: {' '.join(str(exc).split())}") from None


def _reconcile(con: Any, table: str, dataset: Dataset, snapshot_id: int) -> dict[str, Any]:
    """One step from what ``table`` holds to the current snapshot, by file: the rows of files no
    longer current go, files not loaded yet come in (all of them into a new warehouse)."""
    table_ = dataset.table()
    current = {dataset.key_of(STORIES, uri, table_): uri for uri in dataset.file_uris(STORIES, snapshot_id)}
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchone()
    loaded: set[str] = set()
    if exists and exists[0]:
        loaded = {row[0] for row in con.execute(f"SELECT DISTINCT wirestream_file FROM {table}").fetchall()}
    return {
        "snapshot_id": snapshot_id,
        "added": [{"path": key, "uri": uri} for key, uri in sorted(current.items()) if key not in loaded],
        "removed": [{"path": key} for key in sorted(loaded - current.keys())],
    }


def _apply(con: Any, table: str, dataset: Dataset, step: dict[str, Any], report: LoadReport) -> None:
    added = list(step["added"])
    if added and all(is_local(f["uri"]) for f in added):
        paths = ", ".join(_quote(str(local_path(f["uri"]))) for f in added)
        keys = ", ".join(f"({_quote(str(local_path(f['uri'])))}, {_quote(f['path'])})" for f in added)
        source = (
            f"(SELECT p.* EXCLUDE (filename), k.key AS wirestream_file FROM read_parquet([{paths}], filename = true) p "
            f"JOIN (VALUES {keys}) k(filename, key) USING (filename))"
        )
    elif added:  # object storage: read through the table's FileIO, handed to DuckDB as Arrow
        tables = []
        for f in added:
            rows = pq.read_table(open_source(f["uri"], dataset.settings.properties))
            tables.append(
                rows.append_column("wirestream_file", pa.array([f["path"]] * rows.num_rows, pa.string()))
            )
        con.register("wirestream_added", pa.concat_tables(tables))
        source = "wirestream_added"
    if added:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {source} LIMIT 0")
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchone()[0]
    if exists:
        for removed in step["removed"]:
            deleted = con.execute(
                f"DELETE FROM {table} WHERE wirestream_file = ?", [removed["path"]]
            ).fetchone()
            report.rows_deleted += int(deleted[0]) if deleted else 0
    if added:
        inserted = con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}").fetchone()
        report.rows_inserted += int(inserted[0]) if inserted else 0
