from datetime import UTC, datetime

import apache_beam as beam
import pyarrow.parquet as pq

from pipeline.dedup import summarise_chunk
from pipeline.parse import dead_letter
from pipeline.rows import Packed
from pipeline.write import GroupByFile, WriteParquetDataset, pack_files


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
