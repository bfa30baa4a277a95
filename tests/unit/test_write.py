from datetime import UTC, datetime

import apache_beam as beam
import pyarrow.parquet as pq

from pipeline.dedup import summarise_chunk
from pipeline.parse import dead_letter
from pipeline.rows import Packed
from pipeline.transforms import DeduplicateStories, GroupByFile, TableCoder, WriteParquetDataset
from pipeline.write import pack_files, unpack_files


def test_each_stage_dead_letters_go_to_their_own_file_beside_the_rows(tmp_path):
    row = {
        "id": "a",
        "source": "wire",
        "headline": "Talks",
        "body": "Ministers met.",
        "firstcreated": datetime(2022, 7, 29, 18, tzinfo=UTC),
        "topics": [],
        "categories": [],
    }
    parse_letter = dead_letter(
        {"topic": "t", "partition": 0, "offset": 1, "value": b"{"}, "parse", "not JSON"
    )
    clean_letter = dead_letter(
        {"topic": "t", "partition": 0, "offset": 2, "value": b"{}"}, "clean", "clean failed"
    )
    with beam.Pipeline() as p:
        packed = Packed(summarise_chunk([row]), pack_files([row], 1, tmp_path / "_spill"))
        rows = p | "Rows" >> beam.Create([packed]) | GroupByFile()
        letters = {
            "parse": p | "ParseLetters" >> beam.Create([parse_letter]),
            "clean": p | "CleanLetters" >> beam.Create([clean_letter]),
            "tag": p | "NoTagLetters" >> beam.Create([]),
        }
        _ = (rows, letters) | WriteParquetDataset(tmp_path, batch=3, part=1)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "data/published_date=2022-07-29/batch-000003-0001-000.parquet",
        "dead_letters/batch-000003-0001-clean.parquet",
        "dead_letters/batch-000003-0001-parse.parquet",
    ]
    read = pq.read_table(tmp_path / "dead_letters" / "batch-000003-0001-clean.parquet").to_pylist()
    assert [(d["stage"], d["reason"], d["kafka_offset"]) for d in read] == [("clean", "clean failed", 2)]
    assert pq.read_table(tmp_path / files[0]).column("id").to_pylist() == ["a"]


def test_a_files_table_crosses_stages_as_arrow_and_is_sized_without_being_encoded(tmp_path, monkeypatch):
    # Runners size sampled elements for their metrics: a table must not be encoded just for that.
    rows = [
        {"id": f"s{i}", "source": "wire", "headline": "Talks", "body": "Ministers met. " * 50, "topics": []}
        for i in range(40)
    ]
    ((route, path),) = pack_files(rows, 1, tmp_path)
    table = unpack_files([path])
    packed = Packed(summarise_chunk(rows), [(route, path)])
    p = beam.Pipeline()
    grouped = p | beam.Create([packed]) | GroupByFile()
    deduplicated = p | "Packed" >> beam.Create([packed]) | DeduplicateStories(_no_committed, packed=True)
    # What the stages that carry a file's table declare, as Beam codes it.
    assert grouped.element_type == deduplicated.element_type
    hint = grouped.element_type
    coder = beam.coders.registry.get_coder(hint)
    assert isinstance(coder.coders()[1], TableCoder)
    encoded = coder.encode((route, table))
    assert coder.decode(encoded) == (route, table)

    def refuse(self, value):
        raise AssertionError("encoded to be sized")

    monkeypatch.setattr(TableCoder, "encode", refuse)
    size = beam.coders.registry.get_coder(hint).get_impl().estimate_size((route, table))
    assert size >= table.get_total_buffer_size() > 40 * 50 * 15


def _no_committed(windows, ids):
    raise AssertionError("not run")
