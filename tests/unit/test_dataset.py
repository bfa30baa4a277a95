import json
import re
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from pipeline.dataset import CorruptTable, Dataset, offset_gaps
from pipeline.dedup import LoadCommitted
from pipeline.storage import local_path
from pipeline.write import data_file_name, partition_of, shard_of, write_rows
from schemas import CLEAN_SCHEMA
from wirestream.errors import UserError
from wirestream.repair import explain, repair


def rows(n):
    return [
        {
            "id": f"{i:032x}",
            "source": "s",
            "headline": f"h{i}",
            "firstcreated": datetime(2022, 7, 29, tzinfo=UTC),
            "kafka_timestamp": datetime(2022, 7, 29, 12, tzinfo=UTC),
            "kafka_offset": i,
        }
        for i in reversed(range(n))
    ]


def stage(dataset, batch, n=3):
    staging = dataset.staging_dir(batch)
    write_rows(
        staging / "data" / "ingest_day=2022-07-29" / data_file_name(batch, 0), rows(n), CLEAN_SCHEMA, "id"
    )
    return staging


def test_partition_and_shard_are_deterministic():
    # The ingestion day (Kafka's time), whatever date the story carries.
    row = {
        "firstcreated": datetime(2019, 1, 1, tzinfo=UTC),
        "kafka_timestamp": datetime(2022, 7, 29, 23, 59, tzinfo=UTC),
    }
    assert partition_of(row) == "ingest_day=2022-07-29"
    assert partition_of({"firstcreated": datetime(2022, 8, 1, tzinfo=UTC)}) == "ingest_day=null"
    assert shard_of("abc", 7) == shard_of("abc", 7) < 7


def test_files_are_sorted_and_identical_for_identical_input(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_rows(a, rows(50), CLEAN_SCHEMA, "id")
    write_rows(b, list(reversed(rows(50))), CLEAN_SCHEMA, "id")
    assert a.read_bytes() == b.read_bytes()
    ids = pq.read_table(a).column("id").to_pylist()
    assert ids == sorted(ids)


def test_commit_publishes_files_and_offsets(tmp_path):
    dataset = Dataset(tmp_path)
    staging = stage(dataset, 1)
    offsets = [{"topic": "t", "partition": 0, "start": 0, "stop": 4}]
    commit = dataset.commit(1, staging, offsets, {"runner": "direct"})
    assert commit["stats"] == {"records": 4, "rows": 3, "dead_letters": 0, "duplicates_dropped": 1}
    assert commit["offsets"] == offsets and commit["runner"] == "direct" and commit["kind"] == "ingest"
    assert dataset.committed_offsets("t") == {0: 4}
    assert dataset.next_batch() == 2
    [path] = dataset.committed_files()
    assert pq.read_table(path).num_rows == 3
    assert not staging.exists()
    # What any Iceberg reader sees: one snapshot whose summary carries the offsets and the position.
    table = dataset.table()
    summary = table.current_snapshot().summary
    assert json.loads(summary["wirestream.offsets"]) == offsets
    assert json.loads(summary["wirestream.position"]) == {"t": {"0": 4}}
    assert table.scan().to_arrow().num_rows == 3
    assert [str(f.name) for f in table.spec().fields] == ["ingest_day"]


def test_position_carries_over_commits_that_read_no_offsets(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    dataset.commit(2, stage(dataset, 2), [{"topic": "t", "partition": 1, "start": 0, "stop": 5}], {})
    live = list(dataset.live())
    staging = dataset.staging_dir(3)
    dataset.commit(3, staging, [], {}, kind="compaction", removes=live)
    assert dataset.committed_offsets("t") == {0: 3, 1: 5}
    assert dataset.live() == {} and dataset.next_batch() == 4
    assert [c["kind"] for c in dataset.commits()] == ["ingest", "ingest", "compaction"]


def test_recover_removes_only_what_an_interrupted_commit_placed(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    # A file no commit placed (copied in by hand, or of unknown origin) is never deleted:
    stray = tmp_path / "stories" / "data" / "ingest_day=2022-07-29" / "stray.parquet"
    write_rows(stray, rows(2), CLEAN_SCHEMA, "id")
    # A crash after batch 2's files were placed, before its snapshot: its marker names them.
    staging = stage(dataset, 2)
    placed = tmp_path / "stories" / "data" / "ingest_day=2022-07-29" / data_file_name(2, 0)
    placed.parent.mkdir(parents=True, exist_ok=True)
    (staging / "data" / "ingest_day=2022-07-29" / data_file_name(2, 0)).rename(placed)
    (tmp_path / "_staging" / "batch-000002.commit").write_text(
        json.dumps({"batch": 2, "files": [f"file://{placed}"]})
    )
    removed = dataset.recover()
    assert placed in removed and not placed.exists()
    assert stray.exists()
    assert not any((tmp_path / "_staging").iterdir())
    assert len(dataset.committed_files()) == 1


def test_maintain_expires_old_snapshots_and_the_files_only_they_reached(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    [first] = dataset.committed_files()
    live = list(dataset.live())
    staging = dataset.staging_dir(2)
    write_rows(staging / "data" / "ingest_day=2022-07-29" / "merged.parquet", rows(3), CLEAN_SCHEMA, "id")
    dataset.commit(
        2,
        staging,
        [],
        {},
        kind="compaction",
        removes=live,
        carried={"data/ingest_day=2022-07-29/merged.parquet"},
    )
    # Within the retention, the first snapshot still reads as it was.
    assert dataset.maintain(timedelta(days=7)).snapshots_expired == 0
    assert first.exists()
    report = dataset.maintain(timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1))
    assert report.snapshots_expired == 1 and report.files_removed >= 1
    assert not first.exists()
    assert [c["batch"] for c in dataset.commits()] == [2]
    assert dataset.committed_offsets("t") == {0: 3}
    assert dataset.table().scan().to_arrow().num_rows == 3


def test_a_second_writer_is_refused(tmp_path):
    dataset = Dataset(tmp_path)
    with dataset.lock(), pytest.raises(UserError, match="another wirestream run"), Dataset(tmp_path).lock():
        pass


def test_a_commit_racing_another_writer_fails_cleanly_and_leaves_nothing(tmp_path):
    first, second = Dataset(tmp_path), Dataset(tmp_path)
    first.commit(1, stage(first, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    stale = second.table()  # a writer elsewhere planned against this snapshot ...
    first.commit(2, stage(first, 2), [{"topic": "t", "partition": 0, "start": 3, "stop": 6}], {})
    # ... and commits on top of it: the catalog refuses, and none of its files stay.
    staging = stage(second, 3)
    second.table = lambda name="stories", create=False: (
        stale if name == "stories" else Dataset.table(second, name, create)
    )  # type: ignore[method-assign]
    with pytest.raises(UserError, match="another writer committed"):
        second.commit(3, staging, [{"topic": "t", "partition": 0, "start": 3, "stop": 6}], {})
    assert Dataset(tmp_path).committed_offsets("t") == {0: 6}
    assert len(Dataset(tmp_path).committed_files()) == 2
    assert not list((tmp_path / "stories" / "data").rglob("batch-000003-*"))


def test_a_writer_whose_offsets_another_committed_since_it_planned_is_abandoned(tmp_path):
    first, second = Dataset(tmp_path), Dataset(tmp_path)
    first.commit(1, stage(first, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    planned = second.current_snapshot_id()  # both plan offsets 3..6 as batch 2
    first.commit(
        2, stage(first, 2), [{"topic": "t", "partition": 0, "start": 3, "stop": 6}], {}, planned_from=planned
    )
    with pytest.raises(UserError, match="offsets from 3 of partition 0"):
        second.commit(
            2,
            stage(second, 2),
            [{"topic": "t", "partition": 0, "start": 3, "stop": 6}],
            {},
            planned_from=planned,
        )
    # Offsets nobody committed meanwhile still commit over whatever else happened.
    second.commit(
        3, stage(second, 3), [{"topic": "t", "partition": 1, "start": 0, "stop": 2}], {}, planned_from=planned
    )
    assert Dataset(tmp_path).committed_offsets("t") == {0: 6, 1: 2}
    assert len(Dataset(tmp_path).committed_files()) == 3


def test_a_table_of_another_schema_version_is_refused(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    with dataset.table().transaction() as tx:
        tx.set_properties({"wirestream.schema-version": "99"})
    with pytest.raises(UserError, match="schema version 99"):
        Dataset(tmp_path).next_batch()


def test_an_unreachable_catalog_is_one_clear_error(tmp_path):
    from pipeline.dataset import CatalogSettings

    dataset = Dataset(tmp_path, CatalogSettings(uri="http://127.0.0.1:9"))
    with pytest.raises(UserError, match="cannot reach the catalog at http://127.0.0.1:9"):
        dataset.next_batch()


def test_reading_commands_on_a_folder_without_a_table_say_so(tmp_path):
    import subprocess
    import sys

    for command in (["inspect", str(tmp_path)], ["changes", str(tmp_path)]):
        result = subprocess.run(
            [sys.executable, "-m", "wirestream", *command], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and "nothing committed yet" in line
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_an_object_storage_url_as_output_is_refused_with_the_keys_to_use(tmp_path):
    import subprocess
    import sys

    for command in (["run", "--output", "s3://bucket/x"], ["inspect", "s3://bucket/x"]):
        result = subprocess.run(
            [sys.executable, "-m", "wirestream", *command],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "set catalog_uri and catalog_warehouse" in line
    assert list(tmp_path.iterdir()) == []  # no folder named "s3:"


def test_processes_opening_a_new_catalog_at_once_all_succeed(tmp_path):
    """A continuous run creating the tables while a reader opens the catalog: whoever loses the
    race to create the catalog's own tables opens it again, and both tables exist once."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.dataset import Dataset\n"
        "d = Dataset(sys.argv[1])\n"
        "d.table(create=True); d.table('dead_letters', create=True)\n"
        "print(d.next_batch())\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["1"] * 4
    assert sorted(t[1] for t in Dataset(tmp_path).catalog().list_tables("wirestream")) == [
        "dead_letters",
        "stories",
    ]


def test_a_snapshot_that_replaces_some_files_keeps_the_tables_totals(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    dataset.commit(2, stage(dataset, 2), [{"topic": "t", "partition": 0, "start": 3, "stop": 6}], {})
    [first, _second] = sorted(dataset.live())
    staging = dataset.staging_dir(3)
    merged = "data/ingest_day=2022-07-29/replacement.parquet"
    write_rows(staging / merged, rows(3), CLEAN_SCHEMA, "id")
    dataset.commit(3, staging, [], {}, kind="backfill", removes=[first], carried={merged})
    summary = dataset.table().current_snapshot().summary
    assert summary.operation.value == "overwrite"
    assert (summary["total-records"], summary["total-data-files"]) == ("6", "2")
    assert (summary["deleted-records"], summary["added-records"]) == ("3", "3")
    assert dataset.table().scan().to_arrow().num_rows == 6


def ingest(dataset, batch, start, stop, partition=0):
    """Commit batch ``batch`` of offsets [start, stop) of partition ``partition`` of topic t: one
    story an offset, its id unique to that offset."""
    staging = dataset.staging_dir(batch)
    stories = [
        {
            "id": f"{partition:08x}{offset:024x}",
            "source": "s",
            "headline": f"h{offset}",
            "firstcreated": datetime(2022, 7, 29, tzinfo=UTC),
            "kafka_timestamp": datetime(2022, 7, 29, 12, tzinfo=UTC),
            "kafka_partition": partition,
            "kafka_offset": offset,
        }
        for offset in range(start, stop)
    ]
    write_rows(
        staging / "data" / "ingest_day=2022-07-29" / data_file_name(batch, 0), stories, CLEAN_SCHEMA, "id"
    )
    offsets = [{"topic": "t", "partition": partition, "start": start, "stop": stop}]
    return dataset.commit(batch, staging, offsets, {})


def table_ids(dataset):
    return sorted(dataset.table().scan().to_arrow().column("id").to_pylist())


def data_files_on_disk(root):
    return sorted((root / "stories" / "data").rglob("*.parquet"))


def test_a_deleted_manifest_is_named_nothing_is_deleted_and_repair_rolls_back_to_reread(tmp_path):
    dataset = Dataset(tmp_path)
    commits = [ingest(dataset, batch, 4 * (batch - 1), 4 * batch) for batch in range(1, 5)]
    table = dataset.table()
    second = table.snapshot_by_id(commits[1]["snapshot_id"])
    [manifest] = [
        m.manifest_path for m in second.manifests(table.io) if m.added_snapshot_id == second.snapshot_id
    ]
    local_path(manifest).unlink()
    on_disk = data_files_on_disk(tmp_path)
    expected = (
        f"{manifest}: a manifest of snapshot {commits[1]['snapshot_id']} is missing: run "
        f"`wirestream repair --output {tmp_path}` (it makes snapshot {commits[0]['snapshot_id']} current "
        "again, and the next run reads offsets 4-15 of partition 0 of t again)"
    )
    with pytest.raises(CorruptTable) as error:
        dataset.live()
    assert str(error.value) == expected
    # An interrupted commit's marker: what the snapshots reach is unknown, so nothing is removed.
    dataset.staging_root.mkdir(exist_ok=True)
    (dataset.staging_root / "batch-000005.commit").write_text(
        json.dumps({"batch": 5, "files": [f"file://{p}" for p in on_disk]})
    )
    with pytest.raises(CorruptTable):
        dataset.recover()
    assert data_files_on_disk(tmp_path) == on_disk
    (dataset.staging_root / "batch-000005.commit").unlink()

    report = repair(dataset)
    assert (
        report.lines[0] == f"found: {manifest}: a manifest of snapshot {commits[1]['snapshot_id']} is missing"
    )
    assert dataset.state() == (commits[0]["snapshot_id"], {"t": {0: 4}}, 2)
    assert table_ids(dataset) == [f"{0:08x}{o:024x}" for o in range(4)]
    assert data_files_on_disk(tmp_path) == on_disk  # left for `maintain`, past the retention
    # The next run reads offsets 4-15 again: every story once.
    for batch in range(2, 5):
        ingest(dataset, batch, 4 * (batch - 1), 4 * batch)
    assert table_ids(dataset) == [f"{0:08x}{o:024x}" for o in range(16)]
    assert repair(dataset).lines == []


def test_a_position_past_offsets_no_snapshot_read_is_a_gap_and_repair_rereads_it(tmp_path):
    dataset = Dataset(tmp_path)
    first = ingest(dataset, 1, 0, 4)
    # Another tool appends a snapshot whose position passes offsets 4-7 that nothing read.
    table = dataset.table()
    table.append(
        table.scan().to_arrow().slice(0, 1),
        snapshot_properties={
            "wirestream.batch": "2",
            "wirestream.kind": "ingest",
            "wirestream.offsets": json.dumps([{"topic": "t", "partition": 0, "start": 8, "stop": 12}]),
            "wirestream.position": json.dumps({"t": {"0": 12}}),
        },
    )
    second = dataset.table().current_snapshot().snapshot_id
    expected = (
        f"snapshot {second} (batch 2) passes offsets 4-7 of partition 0 of t, which no kept "
        f"snapshot read: run `wirestream repair --output {tmp_path}` (it makes snapshot "
        f"{first['snapshot_id']} current again, and the next run reads offsets 4-11 of partition 0 of t again)"
    )
    for read in (dataset.state, dataset.commits):
        with pytest.raises(CorruptTable) as error:
            read()
        assert str(error.value) == expected
    repair(dataset)
    assert dataset.state() == (first["snapshot_id"], {"t": {0: 4}}, 2)
    ingest(dataset, 2, 4, 12)
    assert table_ids(dataset) == table_ids_of(0, 12)


def test_offsets_kafka_deleted_before_a_batch_read_them_are_recorded_not_a_gap(tmp_path):
    dataset = Dataset(tmp_path)
    ingest(dataset, 1, 0, 4)
    commit = ingest(dataset, 2, 8, 12)  # retention deleted 4-7 before the run read them
    assert commit["skipped"] == [{"topic": "t", "partition": 0, "start": 4, "stop": 8}]
    assert dataset.state()[1] == {"t": {0: 12}} and offset_gaps(dataset.commits()) == []


def test_offsets_before_the_oldest_kept_snapshot_and_a_new_partitions_start_are_no_gap():
    def commit(snapshot, position, offsets, kind="ingest"):
        return {"snapshot_id": snapshot, "kind": kind, "position": position, "offsets": offsets}

    def rng(partition, start, stop):
        return {"topic": "t", "partition": partition, "start": start, "stop": stop}

    history = [
        commit(1, {"t": {"0": 120}}, [rng(0, 100, 120)]),  # what came before was expired
        commit(2, {"t": {"0": 120}}, [], kind="compaction"),
        commit(3, {"t": {"0": 130, "1": 57}}, [rng(0, 120, 130), rng(1, 50, 57)]),  # Kafka deleted 0-49
    ]
    assert offset_gaps(history) == []
    history.append(commit(4, {"t": {"0": 140, "1": 60}}, [rng(0, 130, 140)]))
    assert offset_gaps(history) == [{"snapshot_id": 4, "topic": "t", "partition": 1, "start": 57, "stop": 60}]


def test_a_truncated_data_file_is_named_skipped_by_dedup_and_taken_out_by_repair(tmp_path, caplog):
    dataset = Dataset(tmp_path)
    ingest(dataset, 1, 0, 4)
    ingest(dataset, 2, 4, 8)
    first, second = dataset.committed_uris()
    with open(local_path(first), "r+b") as handle:
        handle.truncate(100)
    # New stories still commit, and dedup reads what it can, naming what it cannot.
    ingest(dataset, 3, 8, 12)
    with caplog.at_level("WARNING", logger="pipeline.dedup"):
        committed = LoadCommitted(dataset.committed_uris())(candidates=table_ids_of(0, 12))
    assert committed.ids == set(table_ids_of(4, 12))
    assert [r.getMessage().split(": it cannot")[0] for r in caplog.records] == [
        f"dedup skips committed file {first}"
    ]
    expected = (
        f"{first}: data file cannot be read (ArrowInvalid: Parquet magic bytes not found in footer. Either the "
        "file is corrupted or this is not a parquet file.): run "
        f"`wirestream repair --output {tmp_path}` (it takes 1 unreadable data file(s) out of the table, "
        f"whose stories `wirestream backfill --since 2022-07-29 --until 2022-07-30 --output {tmp_path}` "
        "reads again)"
    )
    assert explain(dataset, ValueError("what a reader raised")) == expected
    report = repair(dataset)
    assert report.lines[-1] == (
        "took 1 unreadable data file(s) (4 rows) out of the table; read their stories again with: "
        f"wirestream backfill --since 2022-07-29 --until 2022-07-30 --output {tmp_path}"
    )
    assert table_ids(dataset) == table_ids_of(4, 12)
    assert local_path(first).exists() and dataset.committed_offsets("t") == {0: 12}
    assert explain(dataset, ValueError("what a reader raised")) is None


def table_ids_of(start, stop):
    return [f"{0:08x}{o:024x}" for o in range(start, stop)]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root can mount one; skipped, with the reason, where mounting is not allowed)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_commit_that_fills_the_disk_names_the_space_it_needs_and_leaves_nothing(tmp_path, small_disk):
    import os

    dataset = Dataset(small_disk / "out")
    ingest(dataset, 1, 0, 4)
    before = dataset.state()
    # Staged on another device, so placing copies: 2 MB of compressed text, more than the disk.
    staging = tmp_path / "staging" / "batch-000002"
    big = [dict(r, body=os.urandom(400_000).hex()) for r in rows(5)]
    write_rows(staging / "data" / "ingest_day=2022-07-29" / data_file_name(2, 0), big, CLEAN_SCHEMA, "id")
    staged = sum(p.stat().st_size for p in staging.rglob("*.parquet"))
    with pytest.raises(UserError) as error:
        dataset.commit(2, staging, [{"topic": "t", "partition": 0, "start": 4, "stop": 9}], {})
    message = str(error.value)
    match = re.fullmatch(
        rf"no space left on the device of {re.escape(str(dataset.root))} for batch 2: it needs about "
        r"(\d+) KiB and (\d+) KiB is free; it was not committed and nothing of it is visible; earlier "
        r"batches stay committed\. Free space and run again",
        message,
    )
    assert match, message
    assert int(match.group(1)) >= staged // 1024 > int(match.group(2))
    assert dataset.state() == before and table_ids(dataset) == table_ids_of(0, 4)
    assert not list((dataset.root / "stories" / "data").rglob("batch-000002*"))
    assert not list(dataset.staging_root.glob("*.commit"))


@pytest.mark.parametrize("content", [b"", b"{}", b"garbage"])
def test_unreadable_current_metadata_is_named_and_repair_registers_the_newest_that_reads(tmp_path, content):
    dataset = Dataset(tmp_path)
    first = ingest(dataset, 1, 0, 4)
    ingest(dataset, 2, 4, 8)
    current = dataset.metadata_location()
    local_path(current).write_bytes(content)
    with pytest.raises(CorruptTable) as error:
        dataset.commits()
    assert str(error.value).startswith(
        f"{current}: the current metadata of table wirestream.stories cannot be read ("
    )
    assert str(error.value).endswith(
        f"): run `wirestream repair --output {tmp_path}` (it registers the newest readable metadata file again)"
    )
    report = repair(dataset)
    assert report.lines[0].startswith("registered ") and report.lines[0].endswith(
        f"(the newest that reads; {current} does not); the next `wirestream run` reads on from offset 4 of "
        "partition 0 of t"
    )
    assert dataset.state() == (first["snapshot_id"], {"t": {0: 4}}, 2)
    ingest(dataset, 2, 4, 8)
    assert table_ids(dataset) == table_ids_of(0, 8)


@pytest.mark.parametrize("what", ["manifest list", "manifest"])
@pytest.mark.parametrize("content", [b"", b"{}", b"garbage"])
def test_a_garbage_manifest_or_manifest_list_is_named(tmp_path, what, content):
    dataset = Dataset(tmp_path)
    commits = [ingest(dataset, batch, 4 * (batch - 1), 4 * batch) for batch in range(1, 4)]
    table = dataset.table()
    snapshot = table.snapshot_by_id(commits[1]["snapshot_id"])
    [manifest] = [
        m.manifest_path for m in snapshot.manifests(table.io) if m.added_snapshot_id == snapshot.snapshot_id
    ]
    broken = snapshot.manifest_list if what == "manifest list" else manifest
    local_path(broken).write_bytes(content)
    named = "the manifest list" if what == "manifest list" else "a manifest"
    if what == "manifest list":
        # The current snapshot reads in full; repair's look at every snapshot names the list.
        assert table_ids(dataset) == table_ids_of(0, 12)

        def read():
            plan = dataset.plan_repair()
            assert plan.needed
            raise dataset.corrupt(plan)

        does = "it takes 1 snapshot(s) that cannot be read out of the history"
    else:
        read, does = (
            dataset.live,
            f"it makes snapshot {commits[0]['snapshot_id']} current again, and the next run reads offsets "
            "4-11 of partition 0 of t again",
        )
    with pytest.raises(CorruptTable) as error:
        read()
    assert str(error.value).startswith(
        f"{broken}: {named} of snapshot {snapshot.snapshot_id} cannot be read ("
    )
    assert str(error.value).endswith(f"): run `wirestream repair --output {tmp_path}` ({does})")
    repair(dataset)
    dataset.maintain(timedelta(days=7))
    if what == "manifest":  # the next run reads offsets 4-11 again, and on
        ingest(dataset, 2, 4, 16)
    else:
        ingest(dataset, 4, 12, 16)
    assert table_ids(dataset) == table_ids_of(0, 16)


def test_an_unreadable_dead_letter_manifest_is_named_and_repair_rolls_that_table_back(tmp_path):
    from schemas import DEAD_LETTER_SCHEMA

    dataset = Dataset(tmp_path)
    for batch in (1, 2):
        staging = dataset.staging_dir(batch)
        letter = {
            "kafka_topic": "t",
            "kafka_partition": 0,
            "kafka_offset": batch,
            "stage": "parse",
            "reason": "x",
        }
        write_rows(
            staging / "dead_letters" / f"batch-{batch:06d}-0000-parse.parquet",
            [letter],
            DEAD_LETTER_SCHEMA,
            None,
        )
        dataset.commit(
            batch, staging, [{"topic": "t", "partition": 0, "start": batch - 1, "stop": batch}], {}
        )
    letters = dataset.table("dead_letters")
    second = letters.current_snapshot()
    [manifest] = [
        m.manifest_path for m in second.manifests(letters.io) if m.added_snapshot_id == second.snapshot_id
    ]
    local_path(manifest).unlink()
    with pytest.raises(CorruptTable) as error:
        dataset.live()
    assert str(error.value) == (
        f"{manifest}: a manifest of snapshot {second.snapshot_id} is missing: run `wirestream repair --output "
        f"{tmp_path}` (it makes snapshot {second.parent_snapshot_id} of table wirestream.dead_letters current "
        "again; the dead letters committed after it leave that table)"
    )
    repair(dataset)
    # Batch 1's dead letters stay; batch 2's left with the snapshot that added them.
    assert [e["path"].rsplit("-", 1)[0] for e in dataset.live().values()] == [
        "dead_letters/batch-000001-0000-parse"
    ]


def test_repair_is_refused_while_a_run_writes_to_the_table(tmp_path):
    dataset = Dataset(tmp_path)
    ingest(dataset, 1, 0, 4)
    before = dataset.metadata_location()
    with dataset.lock(), pytest.raises(UserError) as error:
        repair(Dataset(tmp_path))
    assert str(error.value) == f"another wirestream run is writing to {tmp_path}; wait for it to finish"
    assert dataset.metadata_location() == before


def _field_ids(schema) -> dict[str, int]:
    """Every field's id by its dotted path, Arrow or Iceberg."""
    import pyarrow as pa

    ids: dict[str, int] = {}

    def walk(field, path):
        ids[path] = int(field.metadata[b"PARQUET:field_id"])
        kind = field.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            walk(kind.value_field, f"{path}.element")
        elif pa.types.is_struct(kind):
            for child in kind:
                walk(child, f"{path}.{child.name}")

    for field in schema:
        walk(field, field.name)
    return ids


def test_a_new_table_gives_every_column_the_field_id_its_files_carry(tmp_path):
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    table = dataset.table()
    assert _field_ids(schema_to_pyarrow(table.schema())) == _field_ids(CLEAN_SCHEMA)
    assert table.scan().to_arrow().column("firstcreated_from").null_count == 3  # rows staged without it


def test_a_table_created_before_a_column_was_added_gains_it_and_reads_old_files(tmp_path):
    from pyiceberg.io.pyarrow import pyarrow_to_schema, schema_to_pyarrow

    from schemas.clean import FIRST_CLEAN_SCHEMA

    dataset = Dataset(tmp_path)
    catalog = dataset.catalog()
    catalog.create_namespace("wirestream")
    old = catalog.create_table(
        "wirestream.stories",
        pyarrow_to_schema(FIRST_CLEAN_SCHEMA),
        location=(tmp_path / "stories").as_uri(),
        properties={"wirestream.schema-version": "1"},
    )
    assert "firstcreated_from" not in old.schema().column_names
    import pyarrow as pa

    # A file the old release wrote, in a snapshot that records where ingestion reached.
    old.append(
        pa.Table.from_pylist(rows(2), schema=FIRST_CLEAN_SCHEMA),
        snapshot_properties={"wirestream.position": '{"t": {"0": 0}}', "wirestream.kind": "ingest"},
    )
    staged = stage(Dataset(tmp_path), 1)
    Dataset(tmp_path).commit(1, staged, [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    table = Dataset(tmp_path).table()
    assert _field_ids(schema_to_pyarrow(table.schema()))["firstcreated_from"] == 39
    read = table.scan().to_arrow()
    assert read.num_rows == 5 and read.column("firstcreated_from").null_count == 5
