"""The pipeline on a real multi-process Flink session cluster (`wirestream flink up`): a JobManager,
two TaskManagers (separate JVMs) that start their own Python workers, and the Beam job server,
against the real broker. The cluster runs the plain graph (no local accelerator): its rows must be
the DirectRunner's, and its tasks must run on both TaskManagers."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import story_id
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


@pytest.fixture(scope="module")
def flink_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("flink-state")
    ports = {
        "WIRESTREAM_FLINK_PORT": str(free_port()),
        "WIRESTREAM_FLINK_JOB_PORT": str(free_port()),
    }
    args = ("--state-dir", str(state))
    up = wirestream("flink", "up", "--taskmanagers", "2", *args, env=ports)
    assert "started" in up.stdout
    try:
        yield {"state_dir": str(state), "env": ports}
    finally:
        wirestream("flink", "down", *args, env=ports, check=False)


def _cluster_config(config: Config, cluster: dict) -> Config:
    env = cluster["env"]
    return dataclasses.replace(
        config,
        flink_port=int(env["WIRESTREAM_FLINK_PORT"]),
        flink_job_port=int(env["WIRESTREAM_FLINK_JOB_PORT"]),
        flink_taskmanagers=2,
    )


def test_cluster_status_shows_its_processes(flink_cluster) -> None:  # type: ignore[no-untyped-def]
    status = wirestream(
        "flink", "status", "--state-dir", flink_cluster["state_dir"], env=flink_cluster["env"]
    )
    lines = status.stdout.splitlines()
    assert any(line.split()[:2] == ["cluster", "running"] for line in lines)
    for process in ("jobmanager", "taskmanager-1", "taskmanager-2", "job-server"):
        assert any(line.startswith(process) and "running (pid" in line for line in lines), status.stdout
    assert sum(1 for line in lines if line.startswith("taskmanager ")) == 2


def test_backfill_on_the_cluster_writes_the_direct_runners_rows(  # type: ignore[no-untyped-def]
    flink_cluster, kafka_config: Config, tmp_path: Path
) -> None:
    from pipeline.run import run_backfill
    from wirestream.flink import FlinkCluster

    config = dataclasses.replace(_cluster_config(kafka_config, flink_cluster), topic_partitions=4)
    stories = [raw_story(i) for i in range(1200)]
    # Republished copies (another URI, the same text): dedup must find the same ones on both runners.
    stories += [
        dict(raw_story(i), id=story_id("synthetic", f"copy-{i}"), uri=f"copy-{i}") for i in range(0, 1200, 40)
    ]
    acked = publish_raw(config, stories)
    assert len(acked) == len(stories)
    since = datetime(2000, 1, 1, tzinfo=UTC)

    direct = run_backfill(config, str(tmp_path / "direct"), since, None, runner="direct")
    cluster = run_backfill(config, str(tmp_path / "cluster"), since, None, runner="flink-cluster")

    direct_rows = table_rows(tmp_path / "direct")
    cluster_rows = table_rows(tmp_path / "cluster")
    assert cluster.records == direct.records == len(stories)
    assert cluster.dead_letters == direct.dead_letters == 0
    assert cluster.duplicates_dropped == direct.duplicates_dropped
    assert len(cluster_rows) == len(direct_rows) == len(stories) - direct.duplicates_dropped
    assert sum(1 for r in direct_rows if r["duplicate_of"]) + direct.duplicates_dropped >= 30
    key = ("id", "duplicate_of", "cluster_id", "topics", "kafka_partition", "kafka_offset")
    assert sorted(tuple(str(r[k]) for k in key) for r in cluster_rows) == sorted(
        tuple(str(r[k]) for k in key) for r in direct_rows
    )
    # The latest job is this backfill's: its tasks ran on both TaskManagers.
    latest = FlinkCluster(dataclasses.replace(config, state_dir=flink_cluster["state_dir"])).jobs(limit=1)[0]
    assert latest["state"] == "FINISHED"
    assert latest["taskmanagers"] == ["taskmanager-1", "taskmanager-2"]


def test_continuous_on_the_cluster_survives_a_taskmanager_killed_mid_batch(  # type: ignore[no-untyped-def]
    flink_cluster, kafka_config: Config, tmp_path: Path
) -> None:
    from wirestream.flink import FlinkCluster

    config = _cluster_config(kafka_config, flink_cluster)
    cluster = FlinkCluster(dataclasses.replace(config, state_dir=flink_cluster["state_dir"]))
    output = tmp_path / "out"
    env = {
        **clean_environ(),
        **env_for(config),
        **flink_cluster["env"],
        "WIRESTREAM_RUNNER": "flink-cluster",
        "WIRESTREAM_COMMIT_INTERVAL_S": "1",
    }
    published = publish_raw(config, [raw_story(i) for i in range(200)])
    process = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "run", "--continuous", "--output", str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Kill a TaskManager while a batch's job runs on it, then bring it back (`flink up` restarts
        # what died, as Kubernetes would restart the pod).
        def running_on_taskmanager_1() -> bool:
            return any(
                job["state"] == "RUNNING" and "taskmanager-1" in job["taskmanagers"]
                for job in cluster.jobs(limit=1)
            )

        wait_for(running_on_taskmanager_1, 180, "a job running on taskmanager-1")
        pid = int((Path(flink_cluster["state_dir"]) / "flink" / "taskmanager-1.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        published += publish_raw(config, [raw_story(i) for i in range(200, 400)])
        time.sleep(3)
        wirestream("flink", "up", "--state-dir", flink_cluster["state_dir"], env=flink_cluster["env"])
        published += publish_raw(config, [raw_story(i) for i in range(400, 500)])
        wait_for(lambda: len(table_rows(output)) >= len(published), 400, "every published story")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    ids = Counter(row["id"] for row in table_rows(output))
    assert sorted(ids) == sorted(published)  # 0 lost
    assert max(ids.values()) == 1  # 0 doubled
    jobs = cluster.jobs(limit=20)
    assert any(job["state"] == "FAILED" for job in jobs), jobs
    assert "batch failed on the cluster, nothing of it committed; retrying" in err
