"""The seed story travels file -> real Kafka -> Beam (DirectRunner) -> the Iceberg table, read back by its readers."""

from __future__ import annotations

import glob
import json
import shutil

import pyarrow.parquet as pq
from kafka import KafkaProducer

from pipeline.run import run_batch
from schemas import story_id
from tests.conftest import env_for, table_rows, wirestream

BOILERPLATE = ["Leave a review", "Follow us on social networks", "News Line", "Politics"]


def committed_rows(output: str) -> list[dict]:
    return table_rows(output)


def test_seed_story_end_to_end(kafka_config, seed_path, tmp_path):
    env = env_for(kafka_config)
    out = str(tmp_path / "dataset")
    published = wirestream("connect", "files", str(seed_path), "--source", "turan", env=env)
    assert "published 1," in published.stdout
    run = wirestream("run", "--output", out, env=env)
    assert "batch 1 committed" in run.stdout

    [row] = committed_rows(out)
    assert row["headline"] == "Antony Blinken and Sergey Lavrov"
    assert row["byline"] == "Alex Raufoglu"
    assert row["dateline"] == "Washington D.C."
    paragraphs = row["body"].split("\n\n")
    for line in BOILERPLATE + ["Antony Blinken and Sergey Lavrov", "Alex Raufoglu", "Washington D.C."]:
        assert line not in paragraphs
    assert "[Lavrov]" in row["body"]
    topics = {t["topic"]: t for t in row["topics"]}
    for topic in ("detainees", "grain_deal", "annexation"):
        assert topic in topics and topics[topic]["evidence"], topic
    assert {"Paul Whelan", "Brittney Griner"} <= {e["phrase"] for e in topics["detainees"]["evidence"]}
    assert row["kafka_topic"] == kafka_config.raw_topic

    # Publishing the same file again publishes nothing, and a second run writes nothing.
    again = wirestream("connect", "files", str(seed_path), "--source", "turan", env=env)
    assert "published 0," in again.stdout and "already published 1" in again.stdout
    assert "nothing new" in wirestream("run", "--output", out, env=env).stdout
    assert len(committed_rows(out)) == 1

    # Even with the connector's memory wiped, the re-delivered story id is dropped, not doubled.
    shutil.rmtree(kafka_config.state_dir)
    assert (
        "published 1," in wirestream("connect", "files", str(seed_path), "--source", "turan", env=env).stdout
    )
    rerun = wirestream("run", "--output", out, env=env)
    assert "duplicates dropped 1" in rerun.stdout
    assert len(committed_rows(out)) == 1

    inspect = json.loads(wirestream("inspect", out, "--json").stdout)
    assert inspect["rows"] == 1 and inspect["duplicates_dropped"] == 1 and inspect["batches"] == 2
    assert inspect["topics"]["detainees"] == 1


def test_bad_records_become_dead_letters_without_losing_the_batch(kafka_config, seed_path, tmp_path):
    producer = KafkaProducer(bootstrap_servers=kafka_config.bootstrap_servers, acks="all")
    # A story whose body ends in half an emoji: valid JSON, but not text that the cleaner, the
    # tagger or a Parquet writer can take. It used to fail the whole batch, and every retry of it.
    cut = {
        "schema_version": 1,
        "id": story_id("wire", "cut"),
        "source": "wire",
        "headline": "Cut",
        "body": "Ministers met on Friday \ud83d",
        "body_format": "text/plain",
        "fetched_at": "2022-07-29T18:00:00Z",
    }
    for key, value in [
        (None, b"{not json"),
        (None, json.dumps({"id": "x"}).encode()),
        (None, b""),
        (cut["id"].encode(), json.dumps(cut).encode()),
    ]:
        producer.send(kafka_config.raw_topic, key=key, value=value, partition=0).get(30)
    producer.close()
    env = env_for(kafka_config)
    wirestream("connect", "files", str(seed_path), "--source", "turan", env=env)
    out = str(tmp_path / "dataset")
    report = run_batch(kafka_config, out)
    assert (report.records, report.rows, report.dead_letters) == (5, 1, 4)
    [letters] = glob.glob(f"{out}/dead_letters/data/*.parquet")
    reasons = sorted(pq.read_table(letters).column("reason").to_pylist())
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("'source' is a required property" in r for r in reasons)
    assert any(r == "empty record value" for r in reasons)
    assert any(r.startswith("body: lone surrogate U+D83D at character 24") for r in reasons)
    assert len(committed_rows(out)) == 1


def test_crashed_run_leaves_nothing_visible_and_the_retry_commits_once(kafka_config, seed_path, tmp_path):
    env = env_for(kafka_config)
    wirestream("connect", "files", str(seed_path), "--source", "turan", env=env)
    out = tmp_path / "dataset"
    # Simulate a crash between placing a batch's files and committing its snapshot.
    orphan = out / "stories" / "data" / "ingest_day=2022-07-29" / "batch-000001-0000-000.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half-written")
    (out / "_staging" / "batch-000001").mkdir(parents=True)
    (out / "_staging" / "batch-000001.commit").write_text(
        json.dumps({"batch": 1, "files": [f"file://{orphan}"]})
    )
    report = run_batch(kafka_config, str(out))
    assert report.batch == 1 and report.rows == 1
    assert not orphan.exists()
    assert len(committed_rows(str(out))) == 1
