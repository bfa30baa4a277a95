"""A manifest-format dataset becomes Iceberg tables with the same live rows and ingest position."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import Dataset
from pipeline.migrate import migrate
from schemas import CLEAN_SCHEMA, DEAD_LETTER_SCHEMA
from tests.conftest import table_rows, wirestream
from wirestream.errors import UserError


def _plain(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_list(kind):
        return pa.list_(_plain(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain(f.type), f.nullable) for f in kind])
    return kind


def old_schema(schema: pa.Schema) -> pa.Schema:
    """The schema as the manifest format wrote it: no field ids."""
    return pa.schema([pa.field(f.name, _plain(f.type), f.nullable) for f in schema])


def write_old(root, relative, first, n, day):
    rows = [
        {
            "id": f"{first + i:032x}",
            "source": "s",
            "kafka_topic": "t",
            "kafka_partition": 0,
            "kafka_offset": first + i,
            "kafka_timestamp": datetime(2026, 11, day + (i % 2 if day == 20 else 0), 9, tzinfo=UTC),
        }
        for i in range(n)
    ]
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema(CLEAN_SCHEMA)), path)
    return {"kind": "data", "path": relative, "rows": n, "bytes": path.stat().st_size}


def old_dataset(root):
    a = write_old(root, "data/published_date=2026-11-01/batch-000001-0000-000.parquet", 0, 4, 1)
    b = write_old(root, "data/published_date=2026-11-02/batch-000001-0000-000.parquet", 4, 3, 2)
    letters = root / "dead_letters" / "batch-000001-0000-parse.parquet"
    letters.parent.mkdir(parents=True)
    letter = {
        "kafka_topic": "t",
        "kafka_partition": 0,
        "kafka_offset": 7,
        "stage": "parse",
        "reason": "not JSON",
    }
    pq.write_table(pa.Table.from_pylist([letter], schema=old_schema(DEAD_LETTER_SCHEMA)), letters)
    # Batch 2 is a backfill that replaced batch 1's second file with one spanning two ingestion days.
    c = write_old(root, "data/published_date=2026-11-02/batch-000002-0000-000.parquet", 4, 3, 20)
    manifests = [
        {
            "batch": 1,
            "kind": "ingest",
            "offsets": [{"topic": "t", "partition": 0, "start": 0, "stop": 9}],
            "files": [
                a,
                b,
                {"kind": "dead_letters", "path": "dead_letters/batch-000001-0000-parse.parquet", "rows": 1},
            ],
            "removes": [],
            "stats": {"records": 9, "rows": 7, "dead_letters": 1, "duplicates_dropped": 1},
        },
        {
            "batch": 2,
            "kind": "backfill",
            "offsets": [{"topic": "t", "partition": 0, "start": 4, "stop": 7}],
            "files": [c],
            "removes": [b["path"]],
            "stats": {"records": 3, "rows": 3, "dead_letters": 0},
        },
    ]
    (root / "_manifests").mkdir()
    for manifest in manifests:
        (root / "_manifests" / f"batch-{manifest['batch']:06d}.json").write_text(json.dumps(manifest))
    return a, c


def test_migrate_registers_the_live_files_in_place(tmp_path):
    old = tmp_path / "old"
    a, _c = old_dataset(old)
    report = migrate(old, Dataset(tmp_path / "new"))
    assert (report.manifests, report.rows, report.rewritten, report.dead_letter_files) == (2, 7, 1, 1)
    rows = table_rows(tmp_path / "new")
    assert len(rows) == 7 == sum(1 for _ in {r["id"] for r in rows})  # the manifests' count, no doubles
    dataset = Dataset(tmp_path / "new")
    assert f"file://{old / a['path']}" in dataset.committed_uris()  # registered, not rewritten
    assert dataset.committed_offsets("t") == {0: 9}
    assert dataset.next_batch() == 3
    assert dataset.commits()[-1]["kind"] == "migration"
    assert len(dataset.committed_uris("dead_letters")) == 1


def test_migrate_refuses_a_table_that_holds_commits_and_a_broken_manifest(tmp_path):
    old = tmp_path / "old"
    old_dataset(old)
    migrate(old, Dataset(tmp_path / "new"))
    with pytest.raises(UserError, match="already holds commits"):
        migrate(old, Dataset(tmp_path / "new"))
    (old / "_manifests" / "batch-000003.json").write_text("{garbage")
    result = wirestream("migrate", "--from", str(old), "--output", str(tmp_path / "other"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {old / '_manifests' / 'batch-000003.json'}: not a readable manifest "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); repair or remove it first"
    )
