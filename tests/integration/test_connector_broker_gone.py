"""`connect feeds` when the broker goes away: the session broker is stopped and started again.

Continuous polling waits (capped backoff, a line when it starts waiting and once a minute after,
no kafka-python lines at the default log level) and resumes by itself; the entries Kafka did not
acknowledge are fetched again and published. A one-shot run against the stopped broker fails in
one line within its timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml

from tests.conftest import env_for, wait_for, wirestream
from tests.integration.test_connector_feeds import read_topic, rss
from wirestream.localhttp import serve_folder

DATE = "Fri, 29 Jul 2022 21:47:00 +0400"


def keys_on(config, topic: str) -> set[bytes]:
    return {record.key for record in read_topic(config, topic)}


def test_continuous_feeds_wait_for_the_broker_and_resume_and_once_fails_in_one_line(
    broker, kafka_config, tmp_path
):
    folder = tmp_path / "feeds"
    folder.mkdir()
    feed = folder / "wire.rss"
    feed.write_text(rss([(f"before{i}", DATE) for i in range(3)]))
    log_path = tmp_path / "connect.log"
    stop_broker = ["kafka", "down", "--port", broker["port"], "--state-dir", broker["state_dir"]]
    start_broker = ["kafka", "up", "--port", broker["port"], "--state-dir", broker["state_dir"]]
    with serve_folder(folder) as base, log_path.open("w") as log:
        config = tmp_path / "connect.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "allow_private_networks": True,
                    "feed_interval_s": 0.5,
                    "feed_jitter": 0,
                    "publish_timeout_s": 3,
                    "feeds": [{"url": f"{base}/wire.rss", "name": "wire"}],
                }
            )
        )
        env = {**os.environ, **env_for(kafka_config)}
        process = subprocess.Popen(
            [sys.executable, "-m", "wirestream", "connect", "feeds", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            wait_for(lambda: len(keys_on(kafka_config, kafka_config.raw_topic)) == 3, what="3 published")
            wirestream(*stop_broker, env=broker["env"])
            try:
                feed.write_text(
                    rss([(f"before{i}", DATE) for i in range(3)] + [("during0", DATE), ("during1", DATE)])
                )
                wait_for(lambda: "does not acknowledge" in log_path.read_text(), 60, "the connector to wait")
                outage_started = time.monotonic()

                # A one-shot run meanwhile: one line within the client's timeout, nothing fetched.
                started = time.monotonic()
                once = wirestream(
                    "connect",
                    "feeds",
                    "--once",
                    "--config",
                    str(config),
                    env=env_for(kafka_config),
                    check=False,
                )
                took = time.monotonic() - started
                assert once.returncode == 2 and took < 30
                assert (
                    once.stderr.strip().splitlines()
                    == [
                        f"error: cannot reach Kafka at {kafka_config.bootstrap_servers} (KafkaTimeoutError). Start the "
                        "local broker with `wirestream kafka up`, or pass --bootstrap-servers / set "
                        "WIRESTREAM_BOOTSTRAP_SERVERS."
                    ]
                    and once.stdout == ""
                )
                wait_for(lambda: time.monotonic() - outage_started > 10, what="a longer outage")
                assert process.poll() is None, "the connector must wait for the broker, not exit"
            finally:
                wirestream(*start_broker, env=broker["env"])
            outage_s = time.monotonic() - outage_started
            wait_for(
                lambda: len(keys_on(kafka_config, kafka_config.raw_topic)) == 5,
                90,
                "the held entries published",
            )
            wait_for(lambda: "answers again" in log_path.read_text(), 30, "the resume line")
            process.send_signal(signal.SIGTERM)
            stdout, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    lines = log_path.read_text().splitlines()
    assert not [line for line in lines if " kafka." in line], "kafka-python stays quiet at the default level"
    waiting = [line for line in lines if "does not acknowledge" in line or "still waiting for Kafka" in line]
    assert 1 <= len(waiting) <= 1 + outage_s // 60, waiting  # once when it starts, then once a minute
    not_acknowledged = [line for line in lines if "not acknowledged by Kafka" in line]
    assert 1 <= len(not_acknowledged) <= 2, not_acknowledged  # polls pause: no line per retry
    # Every entry once by story id (Kafka may hold a retried send twice; the pipeline drops repeats).
    assert len(keys_on(kafka_config, kafka_config.raw_topic)) == 5
    assert stdout.startswith("published ")
