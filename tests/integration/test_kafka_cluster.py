"""A three-broker KRaft cluster (`wirestream kafka up --brokers 3`): topics replicated three times
with two in sync, and the leader of a partition SIGKILLed while the connectors' publisher sends and
`run --continuous` commits. Counts are read from the committed table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from connectors.publisher import Publisher
from tests.conftest import clean_environ, env_for, raw_story, table_rows, wait_for, wirestream
from wirestream.config import Config


def _free_base() -> int:
    """A base port whose node ports (base, +3, +6) and controller ports (+1) are all free."""
    import socket

    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 8 > 65535:
            continue
        ports = [base + offset for offset in (0, 1, 3, 4, 6, 7)]
        if all(_bindable(port) for port in ports):
            return base
    raise RuntimeError("no free port range")


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("kafka-cluster")
    base = _free_base()
    args = ("--port", str(base), "--state-dir", str(state))
    up = wirestream("kafka", "up", "--brokers", "3", *args)
    bootstrap = up.stdout.split("bootstrap ")[-1].split()[0]
    try:
        yield {"args": args, "bootstrap": bootstrap, "state": state, "base": base}
    finally:
        wirestream("kafka", "down", *args, check=False)


def _leader_of(bootstrap: str, topic: str, partition: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10000)
    try:
        for described in admin.describe_topics([topic]):
            for part in described["partitions"]:
                if part["partition_index"] == partition:
                    return int(part["leader_id"])
    finally:
        admin.close()
    raise AssertionError(f"no leader for {topic}/{partition}")


def test_status_shows_three_nodes_a_controller_and_no_under_replicated_partitions(cluster) -> None:  # type: ignore[no-untyped-def]
    status = wirestream("kafka", "status", *cluster["args"]).stdout
    nodes = [line for line in status.splitlines() if line.startswith("node ")]
    assert len(nodes) == 3 and all("running (pid" in line for line in nodes), status
    assert sum(line.endswith("controller") for line in nodes) == 1, status
    assert "under-replicated partitions: 0" in status


def test_leader_killed_while_publishing_and_committing_loses_and_doubles_nothing(  # type: ignore[no-untyped-def]
    cluster, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    config = Config(
        bootstrap_servers=cluster["bootstrap"],
        raw_topic=f"ha-{tag}.raw",
        dlq_topic=f"ha-{tag}.dlq",
        state_dir=str(tmp_path / "state"),
    )
    output = tmp_path / "out"
    acked: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def publish() -> None:
        with Publisher(config) as publisher:
            index = 0
            while not stop.is_set():
                pending = []
                for _ in range(20):
                    story = raw_story(index)
                    pending.append((story["id"], publisher.publish(story)))
                    index += 1
                for story_id, future in pending:
                    if publisher.acknowledged(future, 60):
                        acked.append(story_id)
                    else:
                        failures.append(story_id)
                time.sleep(0.2)

    publisher = threading.Thread(target=publish)
    publisher.start()
    wait_for(lambda: len(acked) >= 100, 60, "the first acknowledged stories")
    env = {**clean_environ(), **env_for(config), "WIRESTREAM_COMMIT_INTERVAL_S": "0.5"}
    run = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(table_rows(output)) >= 100, 90, "the first commits")
        leader = _leader_of(cluster["bootstrap"], config.raw_topic, 0)
        home = Path(cluster["state"]) / "kafka"
        pid_file = home / "broker.pid" if leader == 1 else home / f"node-{leader}" / "broker.pid"
        visible_at_kill = len(table_rows(output))
        killed_at = time.monotonic()
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        # The pipeline stalls until it commits again past what it held when the leader died.
        wait_for(lambda: len(table_rows(output)) > visible_at_kill, 120, "a commit after the kill")
        stalled = time.monotonic() - killed_at
        status = wirestream("kafka", "status", *cluster["args"], check=False)
        assert status.returncode == 3 and f"node {leader}" in status.stdout
        assert "under-replicated partitions: 0" not in status.stdout, status.stdout  # the dead node's copies
        wirestream("kafka", "up", *cluster["args"])  # the killed node rejoins and catches up
        wait_for(
            lambda: (
                "under-replicated partitions: 0" in wirestream("kafka", "status", *cluster["args"]).stdout
            ),
            120,
            "the rejoined node to catch up",
        )
        stop.set()
        publisher.join(120)
        wait_for(lambda: len(table_rows(output)) >= len(acked), 120, "every acknowledged story")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        stop.set()
        if run.poll() is None:
            run.kill()
    ids = Counter(row["id"] for row in table_rows(output))
    print(
        f"published {len(acked)} acknowledged, visible {len(ids)}, pipeline stalled {stalled:.1f}s after the kill"
    )
    assert not failures, f"{len(failures)} stories not acknowledged"
    assert sorted(ids) == sorted(acked)  # 0 lost
    assert max(ids.values()) == 1  # 0 doubled
    assert run.returncode == 0, err
