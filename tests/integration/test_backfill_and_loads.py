"""Backfills replace partitions idempotently; warehouse loads and compaction follow the manifests."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.compact import compact_dataset
from pipeline.dataset import Dataset
from pipeline.run import run_backfill, run_until_caught_up
from tests.conftest import publish_raw, raw_story, wirestream
from wirestream.warehouse import load_duckdb

DAY = [datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)]


def rows(output: Path) -> list[dict]:
    out = []
    for path in Dataset(output).committed_files():
        out.extend(pq.read_table(path, partitioning=None).to_pylist())
    return sorted(out, key=lambda r: r["id"])


def test_backfill_is_atomic_and_idempotent_and_loads_follow(kafka_config, tmp_path):
    output = tmp_path / "out"
    db = str(tmp_path / "warehouse.duckdb")
    for day_index, moment in enumerate(DAY):
        stories = [
            raw_story(day_index * 10 + i, when=f"2022-07-{10 + i % 3:02d}T08:00:00Z") for i in range(10)
        ]
        publish_raw(kafka_config, stories, timestamp_ms=int(moment.timestamp() * 1000))
    run_until_caught_up(kafka_config, str(output))
    before = rows(output)
    assert len(before) == 30

    first = load_duckdb(str(output), db)
    assert first.rows_inserted == 30
    assert load_duckdb(str(output), db).batches == []  # loading twice adds nothing

    # Rows spill as Arrow on their way to their files; each part's spill is gone once it is written.
    spilled_after_part: list[list[Path]] = []
    report = run_backfill(
        kafka_config,
        str(output),
        DAY[1].replace(hour=0),
        DAY[2].replace(hour=0),
        progress=lambda done, total: spilled_after_part.append(list(output.rglob("*.arrow"))),
    )
    assert spilled_after_part == [[]]
    assert report.records == 10 and report.rows == 10
    assert report.manifest and report.manifest["kind"] == "backfill" and report.manifest["removes"]
    after = rows(output)
    assert Counter(r["id"] for r in after) == Counter(r["id"] for r in before)
    strip = {"pipeline_version"}
    assert [{k: v for k, v in r.items() if k not in strip} for r in after] == [
        {k: v for k, v in r.items() if k not in strip} for r in before
    ]

    run_backfill(kafka_config, str(output), DAY[1].replace(hour=0), DAY[2].replace(hour=0))
    assert rows(output) == after  # the same backfill twice gives the same dataset

    loaded = load_duckdb(str(output), db)
    assert loaded.rows_deleted > 0 and loaded.rows_inserted > 0
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone() == (30, 30)

    files_before = len(Dataset(output).committed_files())
    compacted = compact_dataset(str(output), closed_after_days=1, vacuum_after_s=0)
    assert compacted.batch is not None and compacted.files_merged > compacted.partitions
    assert len(Dataset(output).committed_files()) == compacted.partitions < files_before
    assert rows(output) == after
    load_duckdb(str(output), db)
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone() == (30, 30)

    listed = [
        json.loads(line) for line in wirestream("manifests", str(output), "--since", "1").stdout.splitlines()
    ]
    assert [m["kind"] for m in listed] == ["backfill", "backfill", "compaction"]
    assert all(Path(f["uri"]).is_absolute() for m in listed for f in m["files"])
    summary = json.loads(wirestream("inspect", str(output), "--json").stdout)
    assert summary["rows"] == 30 and summary["records_read"] == 30
