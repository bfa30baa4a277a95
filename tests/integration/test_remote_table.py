"""The pipeline on an Iceberg REST catalog with its warehouse on S3-compatible object storage:
continuous ingestion, a backfill, a compaction and a warehouse load, read back by the readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb

from pipeline.compact import compact_dataset
from pipeline.dataset import Dataset, catalog_settings
from pipeline.run import run_backfill, run_until_caught_up
from tests.conftest import env_for, publish_raw, raw_story, wait_for, wirestream
from wirestream.warehouse import load_duckdb

DAY = [datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)]


def ids_in(dataset: Dataset) -> list[str]:
    table = dataset.table()
    return (
        table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
        if table.current_snapshot()
        else []
    )


def on_rest_catalog(kafka_config, rest_catalog):
    """(config, environment for the CLI): a table namespace of the test's own on the session's
    REST catalog, its warehouse on the session's object store."""
    config = replace(
        kafka_config,
        catalog_uri=rest_catalog.uri,
        catalog_warehouse=rest_catalog.warehouse,
        catalog_namespace=f"ws{uuid.uuid4().hex[:8]}",
        s3_endpoint=rest_catalog.store.endpoint,
    )
    env = {
        **env_for(config),
        **rest_catalog.store.env(),
        "WIRESTREAM_CATALOG_URI": rest_catalog.uri,
        "WIRESTREAM_CATALOG_WAREHOUSE": rest_catalog.warehouse,
        "WIRESTREAM_CATALOG_NAMESPACE": config.catalog_namespace,
    }
    return config, env


def test_the_pipeline_commits_to_a_rest_catalog_on_object_storage(
    kafka_config, rest_catalog, tmp_path, monkeypatch
):
    store = rest_catalog.store
    for key, value in store.env().items():  # the S3 keys come only from the environment
        monkeypatch.setenv(key, value)
    config, cli_env = on_rest_catalog(kafka_config, rest_catalog)
    work = tmp_path / "work"
    for round_ in range(2):
        for day_index, moment in enumerate(DAY):
            stories = [raw_story(round_ * 100 + day_index * 10 + i) for i in range(5)]
            publish_raw(config, stories, timestamp_ms=int(moment.timestamp() * 1000))
        run_until_caught_up(config, str(work))
    dataset = Dataset(work, catalog_settings(config))
    before = sorted(ids_in(dataset))
    assert len(before) == 30
    uris = dataset.committed_uris()
    assert len(uris) == 6 and all(u.startswith(f"s3://{store.bucket}/") for u in uris)
    assert all(store.local_path(u).is_file() for u in uris)  # in the object store's own folder
    assert not list(work.rglob("*.parquet"))  # nothing of the table stays on the worker's disk

    report = run_backfill(config, str(work), DAY[1].replace(hour=0), DAY[2].replace(hour=0))
    assert report.commit and report.commit["kind"] == "backfill"
    assert sorted(ids_in(dataset)) == before

    compacted = compact_dataset(dataset, closed_after_days=1, retention=timedelta(days=7))
    assert compacted.partitions == 3 and len(dataset.committed_uris()) == 3
    assert sorted(ids_in(dataset)) == before

    db = str(tmp_path / "w.duckdb")
    assert load_duckdb(dataset, db).rows_inserted == 30
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM stories").fetchone() == (30, 30)

    # Continuous ingestion into the same table, from the CLI, as a deployment runs it.
    env = {**os.environ, **cli_env, "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(work)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        acked = publish_raw(config, [raw_story(1000 + i) for i in range(40)])
        wait_for(
            lambda: set(acked) <= set(ids_in(Dataset(work, catalog_settings(config)))), 120, "new stories"
        )
    finally:
        process.terminate()
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    ids = ids_in(Dataset(work, catalog_settings(config)))
    assert len(ids) == 70 and not [i for i, n in Counter(ids).items() if n > 1]


def test_wrong_object_storage_keys_are_one_line_and_commit_nothing(kafka_config, rest_catalog, tmp_path):
    config, env = on_rest_catalog(kafka_config, rest_catalog)
    work = str(tmp_path / "work")
    publish_raw(config, [raw_story(i) for i in range(5)])
    wirestream("run", "--output", work, env=env)
    publish_raw(config, [raw_story(100 + i) for i in range(5)])
    wrong = wirestream(
        "run", "--output", work, env={**env, "AWS_SECRET_ACCESS_KEY": "not-the-key"}, check=False
    )
    assert wrong.returncode == 2
    [line] = wrong.stderr.strip().splitlines()
    assert line.startswith("error: object storage refused the credentials") and "not-the-key" not in line
    assert "SIGNATURE_DOES_NOT_MATCH" in line or "ACCESS_DENIED" in line
    summary = json.loads(wirestream("inspect", work, "--json", env=env).stdout)
    assert summary["rows"] == 5 and summary["batches"] == 1
    wirestream("run", "--output", work, env=env)
    assert json.loads(wirestream("inspect", work, "--json", env=env).stdout)["rows"] == 10
