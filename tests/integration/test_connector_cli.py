"""`wirestream connect feeds` running continuously as a user runs it: metrics, JSON logs, SIGTERM, status."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import yaml

from tests.conftest import env_for, wait_for, wirestream
from tests.integration.test_connector_feeds import read_topic, rss
from wirestream.localhttp import serve_folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric_total(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_continuous_feeds_with_metrics_json_logs_sigterm_and_status(kafka_config, tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    for feed in "abc":
        (folder / f"{feed}.rss").write_text(
            rss([(f"{feed}{i}", "Fri, 29 Jul 2022 21:47:00 +0400") for i in range(5)])
        )
    metrics_port = free_port()
    with serve_folder(folder, gzip=True) as base:
        config = tmp_path / "connect.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "allow_private_networks": True,
                    "feed_interval_s": 0.5,
                    "metrics_port": metrics_port,
                    "log_format": "json",
                    "feeds": [{"url": f"{base}/{feed}.rss", "name": f"wire/{feed}"} for feed in "abc"]
                    + [{"url": f"{base}/missing.rss", "name": "wire/missing", "interval_s": 60}],
                }
            )
        )
        env = {**os.environ, **env_for(kafka_config)}
        process = subprocess.Popen(
            [sys.executable, "-m", "wirestream", "connect", "feeds", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda: metric_total(metrics_port, "wirestream_feed_published_total") == 15,
                what="15 published",
            )
            wait_for(
                lambda: metric_total(metrics_port, "wirestream_feed_not_modified_total") >= 3, what="304s"
            )
            assert metric_total(metrics_port, "wirestream_feed_errors_total") >= 1
            assert metric_total(metrics_port, "wirestream_feed_last_success_timestamp_seconds") > 0
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, stderr
        assert "published 15," in stdout
        lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
        assert any(line["message"].startswith("stopped after") for line in lines)
        errors = [line for line in lines if line["level"] == "ERROR"]
        assert errors and all(
            line["feed"] == "wire/missing" and line["kind"] == "http_4xx" for line in errors
        )
        assert len(lines) < 10, "normal operation logs nothing per record"

        env_args = env_for(kafka_config)
        status = wirestream("connect", "status", "--config", str(config), env=env_args, check=False)
        assert status.returncode == 1  # one feed is failing
        assert "4 feed(s): 3 ok, 1 not ok" in status.stdout and "HTTP 404" in status.stdout
        rows = json.loads(
            wirestream(
                "connect", "status", "--json", "--config", str(config), env=env_args, check=False
            ).stdout
        )
        wire_a = next(row for row in rows if row["feed"] == "wire/a")
        assert wire_a["health"] == "ok" and wire_a["published"] == 5 and wire_a["not_modified"] >= 1

        again = wirestream("connect", "feeds", "--once", "--config", str(config), env=env_args, check=False)
        assert "published 0," in again.stdout
    assert len({r.key for r in read_topic(kafka_config, kafka_config.raw_topic)}) == 15


def test_a_missing_metrics_port_or_feed_list_is_a_user_error(kafka_config, tmp_path):
    result = wirestream("connect", "feeds", "--once", env=env_for(kafka_config), check=False)
    assert result.returncode == 2 and "no feeds given" in result.stderr
    result = wirestream("connect", "status", "--state-dir", str(tmp_path / "none"), check=False)
    assert result.returncode == 2 and "no feed state" in result.stderr
