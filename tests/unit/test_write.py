from datetime import UTC, datetime

import apache_beam as beam
import pyarrow.parquet as pq

from pipeline.dedup import LoadCommitted, summarise_chunk
from pipeline.parse import dead_letter
from pipeline.rows import Packed
from pipeline.transforms import DeduplicateStories, TableCoder, WriteParquetDataset
from pipeline.write import pack_files, unpack_files


def test_each_stage_dead_letters_go_to_their_own_file_beside_the_rows(tmp_path):
    row = {
        "id": "a",
        "source": "wire",
        "headline": "Talks",
        "body": "Ministers met.",
        "firstcreated": datetime(2022, 7, 29, 18, tzinfo=UTC),
        "kafka_timestamp": datetime(2022, 7, 29, 18, 5, tzinfo=UTC),
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
        rows = p | "Rows" >> beam.Create([packed]) | DeduplicateStories(LoadCommitted([]))
        letters = {
            "parse": p | "ParseLetters" >> beam.Create([parse_letter]),
            "clean": p | "CleanLetters" >> beam.Create([clean_letter]),
            "tag": p | "NoTagLetters" >> beam.Create([]),
        }
        _ = (rows, letters) | WriteParquetDataset(tmp_path, batch=3, part=1)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "data/ingest_day=2022-07-29/batch-000003-0001-000.parquet",
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
    deduplicated = p | "Packed" >> beam.Create([packed]) | DeduplicateStories(_no_committed)
    # What the stage that carries a file's table declares, as Beam codes it.
    hint = deduplicated.element_type
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


def test_a_data_file_is_chunked_by_blocks_of_offsets_and_a_block_spilled_whole_is_not_copied(tmp_path):
    """`sorted_table` cuts one chunk to each block of `CHUNK_SIZE` offsets of a partition: a block
    the workers spilled whole keeps its very buffers, one spilled in pieces becomes one chunk, and
    the file's bytes are the same whichever way its rows came."""
    import random
    from pathlib import Path

    import pyarrow as pa

    from pipeline.rows import CHUNK_SIZE
    from pipeline.write import sorted_table, write_table
    from schemas import CLEAN_SCHEMA

    rng = random.Random(2)
    day = datetime(2022, 7, 29, 18, tzinfo=UTC)
    topic = {
        "topic": "talks",
        "label": None,
        "iptc": None,
        "score": 1.0,
        "evidence": [{"phrase": "talks", "field": "body", "start": 0, "end": 5}],
    }

    def story(p, o):
        return {"id": f"s{p}-{o}", "source": "wire", "body": f"story {o} " * rng.randint(1, 40),
                "kafka_partition": p, "kafka_offset": o, "firstcreated": day,
                "topics": [topic] * rng.randint(0, 2), "categories": ["world"] * rng.randint(0, 1)}  # fmt: skip

    # blocks of 300, 500, 500 and 50 rows in each of two partitions
    rows = [story(p, o) for p in (0, 1) for o in range(CHUNK_SIZE - 300, 3 * CHUNK_SIZE + 50)]
    blocks: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        blocks.setdefault((r["kafka_partition"], r["kafka_offset"] // CHUNK_SIZE), []).append(r)
    # a block of under half a chunk (a part's last 50 offsets) joins the next one
    sizes = [300, 500, 500, 50 + 300, 500, 500, 50]

    def spilled(pieces: list[list[dict]], folder: str) -> pa.Table:
        paths = [path for piece in pieces for _route, path in pack_files(piece, 1, tmp_path / folder)]
        rng.shuffle(paths)
        return unpack_files(paths)

    whole = spilled(list(blocks.values()), "whole")
    written = sorted_table(whole)
    assert [len(c) for c in written.column("body").chunks] == sizes
    spilled_whole = {c.buffers()[2].address for c in whole.column("body").chunks}
    kept = [c.buffers()[2].address in spilled_whole for c in written.column("body").chunks]
    assert kept == [True, True, True, False, True, True, True]  # only the joined blocks copied

    cut = spilled([b[i : i + 77] for b in blocks.values() for i in range(0, len(b), 77)], "cut")
    assert cut.column("body").num_chunks > len(sizes)
    assert [len(c) for c in sorted_table(cut).column("body").chunks] == sizes

    shuffled = pa.Table.from_pylist(rng.sample(rows, len(rows)), schema=CLEAN_SCHEMA)
    for name, table in (("whole", whole), ("cut", cut), ("shuffled", shuffled)):
        write_table(Path(tmp_path / f"{name}.parquet"), sorted_table(table))
        back = pq.read_table(tmp_path / f"{name}.parquet")
        assert back.select(["id", "topics", "categories"]).to_pylist() == [
            {key: r[key] for key in ("id", "topics", "categories")} for r in rows
        ]
    assert (tmp_path / "whole.parquet").read_bytes() == (tmp_path / "cut.parquet").read_bytes()
    assert (tmp_path / "whole.parquet").read_bytes() == (tmp_path / "shuffled.parquet").read_bytes()

    # a file with one row in each block (dates or shards that interleave) gets chunks of half a
    # block's rows, not a chunk a row
    sparse = pa.Table.from_pylist([story(0, o * CHUNK_SIZE) for o in range(600)], schema=CLEAN_SCHEMA)
    assert [len(c) for c in sorted_table(sparse).column("id").chunks] == [250, 250, 100]
