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
