from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from pipeline.dataset import Dataset
from pipeline.write import data_file_name, partition_of, shard_of, write_rows
from schemas import CLEAN_SCHEMA
from wirestream.errors import UserError


def rows(n):
    return [
        {
            "id": f"{i:032x}",
            "source": "s",
            "headline": f"h{i}",
            "firstcreated": datetime(2022, 7, 29, tzinfo=UTC),
            "kafka_offset": i,
        }
        for i in reversed(range(n))
    ]


def stage(dataset, batch, n=3):
    staging = dataset.staging_dir(batch)
    write_rows(
        staging / "data" / "published_date=2022-07-29" / data_file_name(batch, 0), rows(n), CLEAN_SCHEMA, "id"
    )
    return staging


def test_partition_and_shard_are_deterministic():
    assert (
        partition_of({"firstcreated": datetime(2022, 7, 29, 23, 59, tzinfo=UTC)})
        == "published_date=2022-07-29"
    )
    assert partition_of({"kafka_timestamp": datetime(2022, 8, 1, tzinfo=UTC)}) == "published_date=2022-08-01"
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
    manifest = dataset.commit(1, staging, offsets, {})
    assert manifest["stats"] == {"records": 4, "rows": 3, "dead_letters": 0, "duplicates_dropped": 1}
    assert dataset.committed_offsets("t") == {0: 4}
    assert dataset.next_batch() == 2
    [path] = dataset.committed_files()
    assert pq.read_table(path).num_rows == 3
    assert not staging.exists()


def test_recover_discards_what_no_manifest_names(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.commit(1, stage(dataset, 1), [{"topic": "t", "partition": 0, "start": 0, "stop": 3}], {})
    # A crash after files moved into place but before the manifest was written:
    orphan = tmp_path / "data" / "published_date=2022-07-29" / data_file_name(2, 0)
    write_rows(orphan, rows(2), CLEAN_SCHEMA, "id")
    stage(dataset, 3)
    removed = dataset.recover()
    assert orphan in removed and not orphan.exists()
    assert not any((tmp_path / "_staging").iterdir())
    assert len(dataset.committed_files()) == 1


def test_a_second_writer_is_refused(tmp_path):
    dataset = Dataset(tmp_path)
    with dataset.lock(), pytest.raises(UserError, match="another wirestream run"), Dataset(tmp_path).lock():
        pass
