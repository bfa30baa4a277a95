"""The backfill line of deploy/schedule/crontab runs as written (paths swapped for the test's)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from pipeline.dataset import Dataset
from tests.conftest import REPO, env_for, publish_raw, raw_story


def cron_command(name: str) -> str:
    for line in (REPO / "deploy" / "schedule" / "crontab").read_text().splitlines():
        if line.strip() and not line.startswith("#") and name in line:
            return line.split(None, 5)[5].replace("\\%", "%")  # cron's escaped percent signs
    raise AssertionError(f"no {name} line in the crontab")


def test_nightly_backfill_line_reprocesses_yesterday(kafka_config, tmp_path):
    noon_yesterday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    stories = [raw_story(i, when=noon_yesterday.strftime("%Y-%m-%dT%H:%M:%SZ")) for i in range(5)]
    publish_raw(kafka_config, stories, timestamp_ms=int(noon_yesterday.timestamp() * 1000))
    output, log = tmp_path / "data", tmp_path / "backfill.log"
    command = (
        cron_command("backfill")
        .replace("cd /opt/wirestream", f"cd {REPO}")
        .replace(".venv/bin/wirestream", f"{sys.executable} -m wirestream")
        .replace("/data/wirestream", str(output))
        .replace("/var/log/wirestream-backfill.log", str(log))
    )
    result = subprocess.run(["bash", "-c", command], env={**os.environ, **env_for(kafka_config)}, timeout=600)
    assert result.returncode == 0, log.read_text()
    [commit] = Dataset(output).commits()
    assert commit["kind"] == "backfill" and commit["stats"]["rows"] == 5
    assert "backfill batch 1 committed" in log.read_text()
