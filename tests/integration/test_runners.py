"""The same Kafka input through DirectRunner, Prism and Flink commits identical datasets."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

from kafka import KafkaProducer

from pipeline.dataset import Dataset
from pipeline.run import run_until_caught_up
from tests.conftest import env_for, publish_raw, raw_story, wirestream


def fingerprint(output: Path) -> dict[str, str]:
    dataset = Dataset(output)
    files = dataset.committed_files("data") + dataset.committed_files("dead_letters")
    # A commit names its placed files with a token of its own attempt: compare names without it.
    return {
        re.sub(r"-[0-9a-f]{8}\.parquet$", ".parquet", str(p.relative_to(output))): hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in files
    }


def first_commit(output: Path) -> dict:
    return Dataset(output).commits()[0]


def test_direct_prism_and_flink_commit_identical_output(kafka_config, seed_path, tmp_path):
    stories = [raw_story(i, when=f"2022-07-{10 + i % 3:02d}T08:00:00Z") for i in range(120)]
    stories += [dict(stories[5], id=raw_story(500)["id"], uri="copy-of-5")]  # a syndicated copy
    publish_raw(kafka_config, stories)
    publish_raw(kafka_config, stories[:3])  # re-deliveries
    wirestream("connect", "files", str(seed_path), "--source", "turan", env=env_for(kafka_config))
    producer = KafkaProducer(bootstrap_servers=kafka_config.bootstrap_servers, acks="all")
    producer.send(kafka_config.raw_topic, value=b"{broken", partition=1).get(30)
    producer.close()

    prints = {}
    for runner in ("direct", "prism", "flink"):
        output = tmp_path / runner
        reports = run_until_caught_up(replace(kafka_config, runner=runner), str(output))
        assert [r.rows for r in reports] == [122], runner
        assert sum(r.dead_letters for r in reports) == 1
        assert sum(r.duplicates_dropped for r in reports) == 3
        prints[runner] = fingerprint(output)
        commit = first_commit(output)
        assert commit["runner"] == runner
        assert json.dumps(commit["offsets"]) == json.dumps(first_commit(tmp_path / "direct")["offsets"])
    assert len(prints["direct"]) == 2  # one ingestion day's file, and the dead letters
    assert prints["prism"] == prints["direct"]
    assert prints["flink"] == prints["direct"]


def test_preparing_in_worker_processes_commits_the_same_files_as_preparing_in_place(kafka_config, tmp_path):
    """Full chunks (here ~500 stories a partition) go to the workers; the committed files
    must be byte for byte those of a run that prepares everything in the pipeline process, on the
    DirectRunner and on Prism (whose LOOPBACK worker is this process, so its pool is visible here)."""
    from pipeline.workers import WORKERS

    stories = [raw_story(i, when=f"2022-07-{10 + i % 3:02d}T08:00:00Z") for i in range(1500)]
    publish_raw(kafka_config, stories)
    prints = {}
    # Worker counts of their own, so that each run's pool is its own.
    for name, runner, workers in [("in-place", "direct", 0), ("direct", "direct", 3), ("prism", "prism", 4)]:
        output = tmp_path / name
        config = replace(kafka_config, runner=runner, workers=workers)
        assert [r.rows for r in run_until_caught_up(config, str(output))] == [1500], name
        prints[name] = fingerprint(output)
    # A pool is started before its first chunk with one no-op call a worker: more calls than
    # workers means chunks went to it.
    assert all(WORKERS._pools[n]._queue_count > n for n in (3, 4)), "a run sent no chunk to the workers"
    assert len(prints["in-place"]) == 1  # one ingestion day, one file
    assert prints["direct"] == prints["in-place"]
    assert prints["prism"] == prints["in-place"]


def test_batches_and_backfill_parts_prepared_ahead_commit_the_same_files(kafka_config, tmp_path):
    """A run that knows its next pipeline has its first reads prepared while the one before ends
    (`workers.CallsAhead`): the committed files must be those of a run that prepares in place."""
    from datetime import UTC, datetime

    from pipeline.run import run_backfill
    from pipeline.workers import WORKERS

    stories = [raw_story(i, when=f"2022-07-{10 + i % 3:02d}T08:00:00Z") for i in range(3000)]
    publish_raw(kafka_config, stories)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    prints = {}
    for name, workers in [("in-place", 0), ("ahead", 2)]:
        config = replace(kafka_config, workers=workers, max_records_per_batch=1500)
        # the second batch's or part's reads, one a partition: the short third (375 records, under
        # a chunk) is prepared in place, so nothing is prepared ahead for it
        ahead = 0 if name == "in-place" else 3
        adopted = WORKERS.ahead.adopted
        reports = run_until_caught_up(config, str(tmp_path / name / "runs"))
        assert [r.rows for r in reports] == [1500, 1125, 375], name  # a short last batch
        assert WORKERS.ahead.adopted - adopted == ahead, name
        report = run_backfill(config, str(tmp_path / name / "backfill"), since, None)  # three parts
        assert report.rows == 3000
        assert WORKERS.ahead.adopted - adopted == 2 * ahead, name
        prints[name] = (fingerprint(tmp_path / name / "runs"), fingerprint(tmp_path / name / "backfill"))
    assert prints["ahead"] == prints["in-place"]
    assert not list(tmp_path.rglob("*.arrow"))  # nothing spilled is left behind
