"""Faults a user meets: the output's disk filling up mid-run."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from pipeline.dataset import Dataset
from tests.conftest import env_for, publish_raw, raw_story, table_rows, wirestream


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (root can mount one; skipped, with the reason, where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_the_batches_before_it_stay(kafka_config, small_disk):
    acked = publish_raw(kafka_config, [raw_story(i, words=400) for i in range(3000)])
    output = small_disk / "out"
    env = {**env_for(kafka_config), "WIRESTREAM_MAX_RECORDS_PER_BATCH": "400", "WIRESTREAM_WORKERS": "0"}
    result = wirestream("run", "--output", str(output), env=env, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith(f"error: no space left on the device of {output}"), line
    assert "earlier batches stay committed" in line
    committed = [c for c in Dataset(output).commits() if c["kind"] == "ingest"]
    printed = [out for out in result.stdout.splitlines() if out.startswith("batch ")]
    assert committed and len(printed) == len(committed)  # every committed batch was reported
    ids = [r["id"] for r in table_rows(output)]
    assert not [i for i, n in Counter(ids).items() if n > 1]
    # Exactly the committed batches' rows are visible, and they are acknowledged stories.
    assert len(ids) == sum(c["stats"]["rows"] for c in committed) and set(ids) <= set(acked)
