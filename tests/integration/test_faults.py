"""Faults a user meets, each counted through the table's readers: a table file deleted or made
unreadable (a manifest, a data file) and the output's disk filling up mid-run."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.dataset import Dataset
from pipeline.storage import local_path
from tests.conftest import env_for, publish_raw, raw_story, table_rows, wirestream


def batches_of(kafka_config, size: int) -> dict[str, str]:
    return {**env_for(kafka_config), "WIRESTREAM_MAX_RECORDS_PER_BATCH": str(size), "WIRESTREAM_WORKERS": "0"}


def offsets_between(before: dict, after: dict) -> str:
    """The offsets from one snapshot's position to another's, as repair's messages name them."""
    return ", ".join(
        f"offsets {before.get(topic, {}).get(p, 0)}-{stop - 1} of partition {p} of {topic}"
        for topic, parts in sorted(after.items())
        for p, stop in sorted(parts.items(), key=lambda item: int(item[0]))
        if stop > before.get(topic, {}).get(p, 0)
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_deleted_manifest_is_named_by_every_command_and_repair_rereads_its_offsets(kafka_config, tmp_path):
    acked = publish_raw(kafka_config, [raw_story(i) for i in range(60)])
    output = tmp_path / "out"
    env = batches_of(kafka_config, 20)
    wirestream("run", "--output", str(output), env=env)
    dataset = Dataset(output)
    commits = dataset.commits()
    assert len(commits) >= 3
    first, second, last = commits[0], commits[1], commits[-1]
    table = dataset.table()
    snapshot = table.snapshot_by_id(second["snapshot_id"])
    [manifest] = [
        m.manifest_path for m in snapshot.manifests(table.io) if m.added_snapshot_id == snapshot.snapshot_id
    ]
    local_path(manifest).unlink()  # 20 stories' files stay, no snapshot can list them
    on_disk = sorted((output / "stories" / "data").rglob("*.parquet"))
    expected = (
        f"error: {manifest}: a manifest of snapshot {second['snapshot_id']} is missing: run "
        f"`wirestream repair --output {output}` (it makes snapshot {first['snapshot_id']} current again, "
        f"and the next run reads {offsets_between(first['position'], last['position'])} again)"
    )
    publish_raw(kafka_config, [raw_story(i) for i in range(60, 70)])
    for command in (
        ("inspect", str(output)),
        ("changes", str(output)),
        ("load", "duckdb", "--db", str(tmp_path / "w.db"), "--output", str(output)),
        ("compact", str(output)),
        ("maintain", str(output)),
        ("run", "--output", str(output)),
    ):
        assert one_line(wirestream(*command, env=env, check=False)) == expected, command
    assert sorted((output / "stories" / "data").rglob("*.parquet")) == on_disk  # nothing deleted
    assert len(Dataset(output).table().snapshots()) == len(commits)  # the run refused

    repaired = wirestream("repair", "--output", str(output), env=env)
    assert f"rolled back to snapshot {first['snapshot_id']} (batch 1)" in repaired.stdout
    wirestream("run", "--output", str(output), env=env)
    ids = [r["id"] for r in table_rows(output)]
    published = acked + [raw_story(i)["id"] for i in range(60, 70)]
    assert len(ids) == len(published) == 70 and sorted(ids) == sorted(published)  # 0 lost, 0 doubled


def test_unreadable_current_metadata_is_named_and_repair_registers_the_newest_that_reads(
    kafka_config, tmp_path
):
    acked = publish_raw(kafka_config, [raw_story(i) for i in range(40)])
    output = tmp_path / "out"
    env = batches_of(kafka_config, 20)
    wirestream("run", "--output", str(output), env=env)
    current = Dataset(output).metadata_location()
    local_path(current).write_text("{}")
    expected = re.compile(
        rf"error: {re.escape(current)}: the current metadata of table wirestream\.stories cannot be read "
        rf"\(ValidationError: .*\): run `wirestream repair --output {re.escape(str(output))}` \(it "
        r"registers the newest readable metadata file again\)"
    )
    for command in (("inspect", str(output)), ("run", "--output", str(output))):
        line = one_line(wirestream(*command, env=env, check=False))
        assert expected.fullmatch(line), (command, line)
    repaired = wirestream("repair", "--output", str(output), env=env)
    assert f"(the newest that reads; {current} does not)" in repaired.stdout
    wirestream("run", "--output", str(output), env=env)
    ids = [r["id"] for r in table_rows(output)]
    assert len(ids) == len(acked) == 40 and sorted(ids) == sorted(acked)  # 0 lost, 0 doubled


def test_a_truncated_data_file_is_named_and_does_not_block_new_stories(kafka_config, tmp_path):
    acked = publish_raw(kafka_config, [raw_story(i) for i in range(40)])
    output = tmp_path / "out"
    env = batches_of(kafka_config, 20)
    wirestream("run", "--output", str(output), env=env)
    dataset = Dataset(output)
    broken = local_path(dataset.committed_uris()[0])
    with open(broken, "r+b") as handle:
        handle.truncate(200)
    today = datetime.now(UTC).date()
    backfill = f"wirestream backfill --since {today} --until {today + timedelta(days=1)} --output {output}"
    expected = re.compile(
        rf"error: file://{re.escape(str(broken))}: data file cannot be read \(ArrowInvalid: .*\): run "
        rf"`wirestream repair --output {re.escape(str(output))}` \(it takes 1 unreadable data file\(s\) out "
        rf"of the table, whose stories `{re.escape(backfill)}` reads again\)"
    )
    for command in (
        ("inspect", str(output)),
        ("load", "duckdb", "--db", str(tmp_path / "w.db"), "--output", str(output)),
        ("compact", str(output), "--closed-after-days", "0"),
    ):
        line = one_line(wirestream(*command, env=env, check=False))
        assert expected.fullmatch(line), (command, line)

    # New stories commit: dedup names the file it cannot read and goes on.
    acked += publish_raw(kafka_config, [raw_story(i) for i in range(40, 60)])
    before = len(dataset.commits())
    result = wirestream("run", "--output", str(output), env=env)
    assert f"dedup skips committed file file://{broken}" in result.stderr
    new = Dataset(output).commits()[before:]
    assert {c["kind"] for c in new} == {"ingest"} and sum(c["stats"]["rows"] for c in new) == 20

    repaired = wirestream("repair", "--output", str(output), env=env)
    assert repaired.stdout.strip().splitlines()[-1].endswith(f"read their stories again with: {backfill}")
    assert len(table_rows(output)) == 40  # the file's 20 stories are out of the table, not doubled
    wirestream(*backfill.split()[1:], env=env)
    ids = [r["id"] for r in table_rows(output)]
    assert len(ids) == len(acked) == 60 and sorted(ids) == sorted(acked)  # 0 lost, 0 doubled


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
    assert re.fullmatch(
        rf"error: no space left on the device of {re.escape(str(output))} for batch \d+: it needs about \d+ KiB "
        r"and \d+ KiB is free.*; earlier "
        r"batches stay committed\. Free space and run again",
        line,
    ), line
    assert "earlier batches stay committed" in line
    committed = [c for c in Dataset(output).commits() if c["kind"] == "ingest"]
    printed = [out for out in result.stdout.splitlines() if out.startswith("batch ")]
    assert committed and len(printed) == len(committed)  # every committed batch was reported
    ids = [r["id"] for r in table_rows(output)]
    assert not [i for i, n in Counter(ids).items() if n > 1]
    # Exactly the committed batches' rows are visible, and they are acknowledged stories.
    assert len(ids) == sum(c["stats"]["rows"] for c in committed) and set(ids) <= set(acked)
