"""Incremental warehouse loads driven by manifests: each committed batch is loaded once.

The contract for any warehouse: read the manifests after the last batch you loaded; delete the rows
of every file a manifest ``removes``; insert the rows of every ``data`` file it adds; record the
batch. `load_duckdb` does exactly that inside one DuckDB transaction per batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.dataset import Dataset
from wirestream.errors import UserError

__all__ = ["manifests_since", "load_duckdb", "LoadReport"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def manifests_since(output: str, since: int) -> list[dict[str, Any]]:
    """Committed manifests after batch ``since``, with absolute file paths for loaders."""
    dataset = Dataset(output)
    if not dataset.manifest_dir.is_dir():
        raise UserError(f"{output} has no committed batches (no _manifests folder)")
    found = []
    for manifest in dataset.manifests():
        if manifest["batch"] > since:
            found.append(
                {
                    "batch": manifest["batch"],
                    "kind": manifest.get("kind", "ingest"),
                    "committed_at": manifest["committed_at"],
                    "files": [
                        dict(f, uri=str((dataset.root / f["path"]).resolve())) for f in manifest["files"]
                    ],
                    "removes": [str((dataset.root / p).resolve()) for p in manifest.get("removes", [])],
                }
            )
    return found


@dataclass
class LoadReport:
    batches: list[int]
    rows_inserted: int
    rows_deleted: int


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def load_duckdb(output: str, db: str, table: str = "stories") -> LoadReport:
    """Load every batch not yet loaded into ``table``; loading twice adds nothing."""
    if not _IDENTIFIER.match(table):
        raise UserError(f"table name {table!r} must be a plain SQL identifier")
    dataset_key = str(Path(output).resolve())
    report = LoadReport([], 0, 0)
    with duckdb.connect(db) as con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS wirestream_loads "
            "(dataset VARCHAR, target VARCHAR, batch INTEGER, loaded_at TIMESTAMPTZ DEFAULT now(), "
            "PRIMARY KEY (dataset, target, batch))"
        )
        row = con.execute(
            "SELECT coalesce(max(batch), 0) FROM wirestream_loads WHERE dataset = ? AND target = ?",
            [dataset_key, table],
        ).fetchone()
        last = int(row[0]) if row else 0
        for manifest in manifests_since(output, last):
            data = [f["uri"] for f in manifest["files"] if f["kind"] == "data"]
            con.execute("BEGIN TRANSACTION")
            try:
                if data:
                    source = f"read_parquet([{', '.join(map(_quote, data))}], hive_partitioning = true, filename = true)"
                    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {source} LIMIT 0")
                for removed in manifest["removes"]:
                    deleted = con.execute(f"DELETE FROM {table} WHERE filename = ?", [removed]).fetchone()
                    report.rows_deleted += int(deleted[0]) if deleted else 0
                if data:
                    inserted = con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}").fetchone()
                    report.rows_inserted += int(inserted[0]) if inserted else 0
                con.execute(
                    "INSERT INTO wirestream_loads (dataset, target, batch) VALUES (?, ?, ?)",
                    [dataset_key, table, manifest["batch"]],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            report.batches.append(manifest["batch"])
    return report
