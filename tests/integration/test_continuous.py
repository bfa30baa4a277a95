"""Continuous mode and the exactly-once contract under SIGKILL, against the real broker."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaProducer

from pipeline.compact import compact_dataset
from pipeline.dataset import Dataset
from pipeline.run import run_backfill, run_until_caught_up
from tests.conftest import env_for, publish_raw, raw_story, table_rows, wait_for


def committed_ids(output: Path) -> list[str]:
    return [row["id"] for row in table_rows(output)]


def start_continuous(config, output: Path) -> subprocess.Popen:
    env = {**os.environ, **env_for(config), "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    return subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_new_stories_become_visible_without_restart_and_sigterm_stops_cleanly(kafka_config, tmp_path):
    output = tmp_path / "out"
    process = start_continuous(kafka_config, output)
    try:
        first = publish_raw(kafka_config, [raw_story(i) for i in range(5)])
        wait_for(lambda: sorted(committed_ids(output)) == sorted(first), 60, "the first stories")
        later = publish_raw(kafka_config, [raw_story(i) for i in range(5, 8)])
        wait_for(lambda: sorted(committed_ids(output)) == sorted(first + later), 60, "the later stories")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped after" in out
    assert not any((output / "_staging").iterdir())


def test_sigkill_at_random_points_loses_and_doubles_nothing(kafka_config, tmp_path):
    """Kill `run --continuous` at 20 random moments while a producer keeps publishing."""
    output = tmp_path / "out"
    acked: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        producer = KafkaProducer(
            bootstrap_servers=kafka_config.bootstrap_servers, acks="all", enable_idempotence=True
        )
        index = 0
        while not stop.is_set():
            batch = [raw_story(index + k, source="killtest") for k in range(20)]
            futures = [
                (
                    s["id"],
                    producer.send(kafka_config.raw_topic, key=s["id"].encode(), value=json.dumps(s).encode()),
                )
                for s in batch
            ]
            for story_id, future in futures:
                future.get(timeout=60)
                acked.append(story_id)
            index += 20
            time.sleep(0.4)  # ~50 stories/s: a busy wire, well within one batch per restart
        producer.close()

    publish_raw(kafka_config, [])  # creates the topics
    producer = threading.Thread(target=produce)
    producer.start()
    rng = random.Random(20221129)
    kills = 0
    try:
        while kills < 20:
            process = start_continuous(kafka_config, output)
            time.sleep(rng.uniform(0.5, 12.0))  # start-up alone takes seconds: some kills land mid-batch
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            kills += 1
    finally:
        stop.set()
        producer.join(timeout=120)
    run_until_caught_up(kafka_config, str(output))

    ids = committed_ids(output)
    doubled = [story for story, count in Counter(ids).items() if count > 1]
    missing = set(acked) - set(ids)
    batches = len(Dataset(output).commits())
    assert kills == 20
    assert len(acked) > 200
    assert batches > 1, "the kills never let a batch commit; the test proves nothing"
    assert doubled == [], f"{len(doubled)} story ids committed twice"
    assert missing == set(), f"{len(missing)} acknowledged stories missing"
    assert len(ids) == len(acked)

    # Then a backfill over everything, twice, and a compaction of the day: every reader still counts
    # exactly the acknowledged stories (committed_ids checks pyiceberg, DuckDB, polars and the files).
    since = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(2):
        run_backfill(kafka_config, str(output), since, datetime.now(UTC) + timedelta(minutes=1))
    assert len(Dataset(output).committed_files()) == 1  # the backfill rewrote the day
    acked.extend(publish_raw(kafka_config, [raw_story(100_000 + i, source="killtest") for i in range(50)]))
    run_until_caught_up(kafka_config, str(output))
    compacted = compact_dataset(Dataset(output), closed_after_days=0)
    assert compacted.files_merged == 2 and len(Dataset(output).committed_files()) == 1
    ids = committed_ids(output)
    assert sorted(ids) == sorted(set(acked)) and len(ids) == len(acked)


def test_continuous_run_serves_its_metrics_and_json_logs(kafka_config, tmp_path):
    import urllib.request

    from tests.conftest import clean_environ, free_port

    output = tmp_path / "out"
    port = free_port()
    env = {**clean_environ(), **env_for(kafka_config), "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)]
        + ["--metrics-port", str(port), "--log-format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        published = publish_raw(kafka_config, [raw_story(i) for i in range(40)])
        wait_for(lambda: len(committed_ids(output)) == len(published), 60, "the stories")

        def metrics() -> dict[str, float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            values: dict[str, float] = {}
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    values[name] = values.get(name, 0.0) + float(value)
            return values

        wait_for(lambda: metrics().get("wirestream_pipeline_stories_written_total") == 40, 30, "the metrics")
        seen = metrics()
        lag = {
            name: value
            for name, value in seen.items()
            if name.startswith("wirestream_pipeline_consumer_lag{")
        }
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert seen["wirestream_pipeline_records_read_total"] == 40
    assert seen["wirestream_pipeline_batches_total"] >= 1
    assert (
        seen["wirestream_pipeline_commit_duration_seconds_count"] == seen["wirestream_pipeline_batches_total"]
    )
    assert lag and set(lag.values()) == {0.0}  # every partition caught up
    logged = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any("continuous run" in entry["message"] for entry in logged)
