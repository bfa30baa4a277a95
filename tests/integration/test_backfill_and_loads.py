"""Backfills replace what they re-read in one snapshot; compaction merges in one; loads follow snapshots."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.compact import compact_dataset
from pipeline.dataset import Dataset
from pipeline.run import run_backfill, run_until_caught_up
from tests.conftest import publish_raw, raw_story, table_rows, wirestream
from wirestream.warehouse import load_duckdb

DAY = [datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)]


def test_backfill_is_atomic_and_idempotent_and_loads_follow(kafka_config, tmp_path):
    output = tmp_path / "out"
    db = str(tmp_path / "warehouse.duckdb")
    # Two ingest batches, each with stories of three ingestion days: two files a day.
    for round_ in range(2):
        for day_index, moment in enumerate(DAY):
            stories = [
                raw_story(round_ * 100 + day_index * 10 + i, when=f"2022-07-{10 + i % 3:02d}T08:00:00Z")
                for i in range(5)
            ]
            publish_raw(kafka_config, stories, timestamp_ms=int(moment.timestamp() * 1000))
        run_until_caught_up(kafka_config, str(output))
    before = table_rows(output)
    assert len(before) == 30
    assert len(Dataset(output).committed_files()) == 6

    first = load_duckdb(Dataset(output), db)
    assert first.rows_inserted == 30 and first.full
    assert load_duckdb(Dataset(output), db).snapshots == []  # loading twice adds nothing

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
    # Kafka's time index finds the first offset at or after each end, so the range is the first
    # round's day-2 stories; the second round's, published after day 3's, are carried over.
    assert report.records == 5 and report.rows == 5
    commit = report.commit
    assert commit and commit["kind"] == "backfill" and commit["operation"] == "overwrite"
    assert len(commit["removes"]) == 2  # the day's two files, replaced in the same snapshot
    after = table_rows(output)
    assert Counter(r["id"] for r in after) == Counter(r["id"] for r in before)
    strip = {"pipeline_version"}
    assert [{k: v for k, v in r.items() if k not in strip} for r in after] == [
        {k: v for k, v in r.items() if k not in strip} for r in before
    ]

    run_backfill(kafka_config, str(output), DAY[1].replace(hour=0), DAY[2].replace(hour=0))
    assert table_rows(output) == after  # the same backfill twice gives the same table

    loaded = load_duckdb(Dataset(output), db)
    assert loaded.rows_deleted == 20 and loaded.rows_inserted == 20 and not loaded.full
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone() == (30, 30)

    files_before = len(Dataset(output).committed_files())
    compacted = compact_dataset(Dataset(output), closed_after_days=1, retention=timedelta(days=7))
    assert compacted.batch is not None and compacted.files_merged == 6 and compacted.partitions == 3
    assert len(Dataset(output).committed_files()) == 3 < files_before
    assert table_rows(output) == after
    load_duckdb(Dataset(output), db)
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone() == (30, 30)
    # A new warehouse can be built at any time, from the current snapshot.
    fresh = load_duckdb(Dataset(output), str(tmp_path / "fresh.duckdb"))
    assert fresh.full and fresh.rows_inserted == 30

    history = [json.loads(line) for line in wirestream("changes", str(output)).stdout.splitlines()]
    assert [c["kind"] for c in history] == ["ingest", "ingest", "backfill", "backfill", "compaction"]
    listed = [
        json.loads(line)
        for line in wirestream(
            "changes", str(output), "--since-snapshot", str(history[1]["snapshot_id"])
        ).stdout.splitlines()
    ]
    assert [c["kind"] for c in listed] == ["backfill", "backfill", "compaction"]
    assert (
        sum(f["rows"] for f in listed[0]["added"]) == 10
        and sum(f["rows"] for f in listed[0]["removed"]) == 10
    )
    assert sum(f["rows"] for f in listed[2]["removed"]) == sum(f["rows"] for f in listed[2]["added"]) == 30
    summary = json.loads(wirestream("inspect", str(output), "--json").stdout)
    assert summary["rows"] == 30 and summary["records_read"] == 30
    # The table as it was after the first ingest batch.
    then = json.loads(
        wirestream("inspect", str(output), "--json", "--as-of", str(history[0]["snapshot_id"])).stdout
    )
    assert then["rows"] == 15 and then["batches"] == 1


def test_stories_dated_over_years_land_in_one_file_a_day(kafka_config, tmp_path):
    """The table partitions by ingestion day: a feed's back catalogue, its dates spread over
    years, is one file, not one per publication day."""
    stories = [
        raw_story(i, when=f"{2015 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00Z") for i in range(1500)
    ]
    publish_raw(kafka_config, stories)
    run_until_caught_up(kafka_config, str(tmp_path / "out"))
    dataset = Dataset(tmp_path / "out")
    assert len(dataset.committed_files()) == 1
    assert len({r["firstcreated"].date() for r in table_rows(tmp_path / "out")}) > 300
