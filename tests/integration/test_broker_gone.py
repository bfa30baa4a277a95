"""The broker goes away under `run --continuous`: the run waits for it, says so, and resumes by
itself when it is back, losing and doubling nothing; a one-shot run with no broker ends in one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import (
    clean_environ,
    env_for,
    free_port,
    publish_raw,
    raw_story,
    table_rows,
    wait_for,
    wirestream,
)
from wirestream.config import Config


@pytest.fixture
def own_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A broker of this test's own, which the test stops and starts again."""
    port = free_port()
    env = {
        "WIRESTREAM_BROKER_CONTROLLER_PORT": str(free_port()),
        "WIRESTREAM_BROKER_SASL_PORT": "0",
    }
    args = ("--port", str(port), "--state-dir", str(tmp_path / "broker"))
    wirestream("kafka", "up", *args, env=env)
    try:
        yield {"port": port, "args": args, "env": env}
    finally:
        wirestream("kafka", "down", *args, env=env, check=False)


def test_continuous_run_waits_for_a_broker_that_went_away(own_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    config = Config(
        bootstrap_servers=f"127.0.0.1:{own_broker['port']}",
        raw_topic=f"gone-{tag}.raw",
        dlq_topic=f"gone-{tag}.dlq",
        state_dir=str(tmp_path / "state"),
    )
    output = tmp_path / "out"
    env = {**clean_environ(), **env_for(config), "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    published = publish_raw(config, [raw_story(i) for i in range(60)])
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(table_rows(output)) == len(published), 90, "the first stories")
        wirestream("kafka", "down", *own_broker["args"], env=own_broker["env"])
        time.sleep(25)  # longer than a plan waits for the broker (PLAN_TIMEOUT_MS)
        assert process.poll() is None, "the run ended when the broker went away"
        wirestream("kafka", "up", *own_broker["args"], env=own_broker["env"])
        published += publish_raw(config, [raw_story(i) for i in range(60, 100)])
        wait_for(lambda: len(table_rows(output)) >= len(published), 120, "the stories published after")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    ids = Counter(row["id"] for row in table_rows(output))
    assert sorted(ids) == sorted(published) and max(ids.values()) == 1  # 0 lost, 0 doubled
    assert "waiting for it" in err
    assert "Kafka answers again after" in err
    assert "Traceback" not in err


def test_one_shot_run_without_a_broker_ends_in_one_line(tmp_path: Path) -> None:
    env = {
        "WIRESTREAM_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "WIRESTREAM_STATE_DIR": str(tmp_path / "s"),
    }
    started = time.monotonic()
    result = wirestream("run", "--output", str(tmp_path / "out"), env=env, check=False)
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Kafka at 127.0.0.1:"), result.stderr
    assert not (tmp_path / "out").exists()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_broker_stopped_for_a_minute_under_continuous_ingestion(own_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Connectors and the pipeline both running; the only broker stopped for 60 s and started again:
    every entry of the feed is visible once, and the connector's memory stays flat while it waits."""
    import yaml

    from tests.integration.test_connector_feeds import rss
    from wirestream.localhttp import serve_folder

    tag = uuid.uuid4().hex[:8]
    config = Config(
        bootstrap_servers=f"127.0.0.1:{own_broker['port']}",
        raw_topic=f"outage-{tag}.raw",
        dlq_topic=f"outage-{tag}.dlq",
        state_dir=str(tmp_path / "state"),
    )
    date = "Fri, 29 Jul 2022 21:47:00 +0400"
    folder = tmp_path / "feeds"
    folder.mkdir()
    entries = [f"e{i}" for i in range(20)]
    (folder / "wire.rss").write_text(rss([(guid, date) for guid in entries]))
    output = tmp_path / "out"
    env = {**clean_environ(), **env_for(config), "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    with serve_folder(folder) as base:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(
            yaml.safe_dump(
                {
                    "allow_private_networks": True,
                    "feed_interval_s": 1,
                    "feed_jitter": 0,
                    "publish_timeout_s": 5,
                    "feeds": [{"url": f"{base}/wire.rss", "name": "wire"}],
                }
            )
        )
        connect = subprocess.Popen(
            [sys.executable, "-m", "wirestream", "connect", "feeds", "--config", str(feeds)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = subprocess.Popen(
            [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: len(table_rows(output)) == len(entries), 90, "the first entries")
            before = _rss_kib(connect.pid)
            wirestream("kafka", "down", *own_broker["args"], env=own_broker["env"])
            stopped = time.monotonic()
            peak = before
            added = 0
            while time.monotonic() - stopped < 60:
                if added < 40:  # the feed goes on while Kafka is away
                    entries += [f"late{added + i}" for i in range(10)]
                    added += 10
                    (folder / "wire.rss").write_text(rss([(guid, date) for guid in entries]))
                peak = max(peak, _rss_kib(connect.pid))
                assert connect.poll() is None and run.poll() is None, "a process ended while Kafka was away"
                time.sleep(2)
            wirestream("kafka", "up", *own_broker["args"], env=own_broker["env"])
            restarted = time.monotonic()
            wait_for(lambda: len(table_rows(output)) >= len(entries), 180, "the entries from the outage")
            caught_up = time.monotonic() - restarted
        finally:
            for process in (connect, run):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            _, connect_err = connect.communicate(timeout=60)
            _, run_err = run.communicate(timeout=60)
    rows = table_rows(output)
    ids = Counter(row["url"] for row in rows)
    print(
        f"feed entries {len(entries)}, visible {len(ids)}, caught up {caught_up:.1f}s after the broker came "
        f"back; connector RSS {before // 1024} MiB before, peak {peak // 1024} MiB while Kafka was away"
    )
    assert sorted(ids) == sorted(f"https://wire.example/{guid}" for guid in entries)  # 0 lost
    assert max(ids.values()) == 1  # 0 doubled
    assert peak - before < 20 * 1024  # the connector holds nothing Kafka did not take: flat memory
    assert "Traceback" not in connect_err + run_err
    assert "waiting for it" in run_err


def test_records_retention_deleted_before_the_pipeline_read_them_are_reported(  # type: ignore[no-untyped-def]
    own_broker, tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient, TopicPartition

    tag = uuid.uuid4().hex[:8]
    config = Config(
        bootstrap_servers=f"127.0.0.1:{own_broker['port']}",
        raw_topic=f"retention-{tag}.raw",
        dlq_topic=f"retention-{tag}.dlq",
        state_dir=str(tmp_path / "state"),
        topic_partitions=1,
    )
    env = env_for(config)
    output = str(tmp_path / "out")
    publish_raw(config, [raw_story(i) for i in range(10)])
    wirestream("run", "--output", output, env=env)
    publish_raw(config, [raw_story(i) for i in range(10, 20)])
    admin = KafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    try:  # what retention does to old segments: offsets 10..14 go before the pipeline read them
        admin.delete_records({TopicPartition(config.raw_topic, 0): 15})
    finally:
        admin.close()
    result = wirestream("run", "--output", output, env=env)
    assert (
        f"{config.raw_topic}/0: offsets 10..14 were deleted by retention before processing" in result.stderr
    )
    assert sorted(row["kafka_offset"] for row in table_rows(output)) == [*range(10), *range(15, 20)]
