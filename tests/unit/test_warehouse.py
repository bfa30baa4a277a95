"""Warehouse loads follow snapshots, and fall back to comparing files when history has expired."""

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.parquet as pq

from pipeline.dataset import Dataset
from pipeline.write import data_file_name, write_rows
from schemas import CLEAN_SCHEMA
from wirestream.warehouse import changes_since, load_duckdb


def stage(dataset, batch, first, n):
    staging = dataset.staging_dir(batch)
    rows = [
        {
            "id": f"{first + i:032x}",
            "source": "s",
            "kafka_partition": 0,
            "kafka_offset": first + i,
            "kafka_timestamp": datetime(2026, 12, 1, tzinfo=UTC),
        }
        for i in range(n)
    ]
    write_rows(
        staging / "data" / "ingest_day=2026-12-01" / data_file_name(batch, 0), rows, CLEAN_SCHEMA, "id"
    )
    return staging


def counts(db):
    with duckdb.connect(db) as con:
        return con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone()


def test_loads_follow_snapshots_and_survive_expired_history(tmp_path):
    dataset = Dataset(tmp_path / "out")
    db = str(tmp_path / "w.duckdb")
    dataset.commit(1, stage(dataset, 1, 0, 5), [{"topic": "t", "partition": 0, "start": 0, "stop": 5}], {})
    assert load_duckdb(dataset, db).rows_inserted == 5
    dataset.commit(2, stage(dataset, 2, 5, 3), [{"topic": "t", "partition": 0, "start": 5, "stop": 8}], {})
    step = load_duckdb(dataset, db)
    assert (step.rows_inserted, step.rows_deleted, step.full) == (3, 0, False)
    assert counts(db) == (8, 8)

    # A compaction, then expiry of every snapshot but the current: the warehouse's last snapshot is
    # gone from the history, so the load compares files.
    live = list(dataset.live())
    staging = dataset.staging_dir(3)
    merged = "data/ingest_day=2026-12-01/batch-000003-compacted.parquet"
    rows = [r for key in live for r in pq.read_table(dataset.root / "stories" / key).to_pylist()]
    write_rows(staging / merged, rows, CLEAN_SCHEMA, "id")
    dataset.commit(3, staging, [], {}, kind="compaction", removes=live, carried={merged})
    dataset.maintain(timedelta(days=7), keep=1)
    assert len(changes_since(dataset, None)) == 1
    reconciled = load_duckdb(dataset, db)
    assert reconciled.full and (reconciled.rows_deleted, reconciled.rows_inserted) == (8, 8)
    assert counts(db) == (8, 8)
    assert load_duckdb(dataset, db).snapshots == []
