"""Write the Parquet dataset: where a row goes, how a file is written, and how files are named.

Files are named by batch and shard, never by time or worker, so a retried bundle rewrites the same
file instead of adding a second copy. A file holds its rows in Kafka order (partition, offset), so
the same input gives byte-identical files on every runner. `transforms.GroupByFile` and
`transforms.WriteParquetDataset` run this inside Beam.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.rows import CHUNK_SIZE
from schemas import CLEAN_SCHEMA, PARTITION_COLUMN, PARTITION_SOURCE

__all__ = [
    "pack_files",
    "unpack_files",
    "partition_of",
    "shard_of",
    "route_rows",
    "write_rows",
    "data_file_name",
    "file_order",
    "in_place",
    "sorted_table",
    "spill_dir",
    "spill_root",
]


def partition_of(row: dict[str, Any]) -> str:
    """The table partition a row belongs to: the UTC day Kafka received it (the ingestion day;
    ``null`` for a row without a Kafka time). A batch's rows then fall in one or two partitions
    whatever dates their stories carry, and a backfill over a Kafka time range rewrites only the
    partitions of that range."""
    moment = row.get(PARTITION_SOURCE)
    day = moment.date().isoformat() if moment is not None else "null"
    return f"{PARTITION_COLUMN}={day}"


def shard_of(story_id: str, shards: int) -> int:
    if shards == 1:
        return 0  # the common case, without a hash per row
    return int(hashlib.sha256(story_id.encode()).hexdigest()[:8], 16) % shards


def spill_dir(staging: str | Path, part: int = 0) -> Path:
    """Where a pipeline run over one part of a batch spills its rows on their way to their files
    (`pack_files`): beside the batch's staging folder, under the dataset's staging root, so that a
    crashed run's spill goes with the rest of what it staged (`Dataset.recover`), and the next
    batch's rows can be spilled before that batch has a staging folder (`workers.CallsAhead`)."""
    staging = Path(staging)
    return spill_root(staging.parent) / f"{staging.name}-{part:04d}"


def spill_root(staging_root: str | Path) -> Path:
    """The folder every `spill_dir` of a dataset's staging root is in."""
    return Path(staging_root) / "_spill"


def data_file_name(batch: int, shard: int, part: int = 0) -> str:
    """``part`` numbers the chunks of a batch that is processed in several pipeline runs (a backfill)."""
    return f"batch-{batch:06d}-{part:04d}-{shard:03d}.parquet"


def route_rows(rows: Iterable[dict[str, Any]], shards: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows grouped by the file they go to: ``(partition/shard, rows)``."""
    routes: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        routes.setdefault(f"{partition_of(row)}/{shard_of(row['id'], shards):03d}", []).append(row)
    return list(routes.items())


def rows_table(rows: Iterable[dict[str, Any]], schema: pa.Schema, sort_key: str) -> pa.Table:
    """The rows as one file holds them: sorted by ``sort_key``, then Kafka partition and offset."""
    ordered = sorted(
        rows, key=lambda r: (r.get(sort_key) or "", r.get("kafka_partition") or 0, r.get("kafka_offset") or 0)
    )
    return pa.Table.from_pylist(ordered, schema=schema)


# Kafka order: a row's place is its own (no runner moves it), and rows in a file run in roughly the
# order they were published, so row groups' statistics on the time columns prune well.
_FILE_ORDER = [("kafka_partition", "ascending"), ("kafka_offset", "ascending"), ("id", "ascending")]


def file_order(table: pa.Table, rows: pa.Array | None = None) -> pa.Array:
    """The positions of ``table``'s rows (or of the rows at indices ``rows``) in the order a data
    file holds them: by Kafka partition and offset, then id (a stable sort). Only the key columns
    are read or taken."""
    keys = table.select([name for name, _ in _FILE_ORDER])
    if rows is not None:
        keys = keys.take(rows)
    return pc.sort_indices(keys, sort_keys=_FILE_ORDER, null_placement="at_start")


def in_place(indices: pa.Array, rows: int) -> bool:
    """Whether ``indices`` are 0, 1, ..., ``rows`` - 1: taking them would only copy the table."""
    return len(indices) == rows and indices.equals(pa.array(np.arange(rows, dtype=np.uint64)))


def sorted_table(table: pa.Table) -> pa.Table:
    """A data file's rows in `file_order`, one chunk to each block of `CHUNK_SIZE` Kafka offsets
    of a partition (a block of fewer than half that many rows joins the ones after it, so a file
    whose rows are spread thin over many blocks is not cut into tiny chunks). The Parquet writer
    checks a page's size between batches of rows, which start afresh in each chunk, so chunks
    that follow from the rows alone give a file the same bytes however its rows arrived. A block
    that arrived as one piece (the workers read and spill whole blocks: `kafka_source.in_blocks`)
    is passed on as it lies; only a chunk that came in pieces is copied into one."""
    order = file_order(table)
    if not in_place(order, table.num_rows):
        table = table.take(order)
    if not table.num_rows:
        return table.combine_chunks()
    partition = table.column("kafka_partition").fill_null(-1).to_numpy()
    block = table.column("kafka_offset").fill_null(-1).to_numpy() // CHUNK_SIZE
    edges = [0]
    for start in (np.flatnonzero((partition[1:] != partition[:-1]) | (block[1:] != block[:-1])) + 1).tolist():
        if start - edges[-1] >= CHUNK_SIZE // 2:
            edges.append(start)
    edges.append(table.num_rows)
    # A slice within one piece stays a view; combining copies only a slice of several pieces.
    pieces = [table.slice(a, b - a).combine_chunks() for a, b in itertools.pairwise(edges)]
    return pa.Table.from_batches([batch for piece in pieces for batch in piece.to_batches()], table.schema)


def pack_files(rows: Iterable[dict[str, Any]], shards: int, spill: str | Path) -> list[tuple[str, str]]:
    """The rows bound for each data file, ``(partition/shard, path)``: the rows as one Arrow IPC
    stream, written where the rows are made into the folder ``spill`` (`spill_dir`), beside the
    batch's staging folder that the workers write the data files into, so only its path travels
    through the runner. A batch's rows as bytes in the runner's shuffle would be held there whole
    until the verdicts are in (in a Flink TaskManager's state: every row serialised, stored, and
    sent back to a Python worker), and copied several times on the way."""
    folder = Path(spill)
    folder.mkdir(parents=True, exist_ok=True)
    packed: list[tuple[str, str]] = []
    for route, group in route_rows(rows, shards):
        table = pa.Table.from_pylist(group, schema=CLEAN_SCHEMA)
        path = folder / f"{uuid.uuid4().hex}.arrow"
        with pa.OSFile(str(path), "wb") as file, pa.ipc.new_stream(file, CLEAN_SCHEMA) as stream:
            stream.write_table(table)
        packed.append((route, str(path)))
    return packed


def unpack_files(paths: Iterable[str]) -> pa.Table:
    """One data file's rows from the Arrow IPC streams `pack_files` spilled for it, memory-mapped
    (the rows are read from the page cache, not copied), each stream's rows in Kafka order and the
    streams put in that order too: the rows then are in `file_order` already, wherever they
    arrived, and need no reordering copy."""
    tables = [pa.ipc.open_stream(pa.memory_map(path)).read_all() for path in paths]
    tables.sort(key=_first_position)
    return pa.concat_tables(tables) if tables else CLEAN_SCHEMA.empty_table()


def _first_position(table: pa.Table) -> tuple[int, int]:
    """Where the table's first row sits in `file_order` (a missing position sorts first)."""
    if not table.num_rows:
        return (-1, -1)
    partition, offset = (table.column(name)[0].as_py() for name in ("kafka_partition", "kafka_offset"))
    return (-1 if partition is None else partition, -1 if offset is None else offset)


_UNIQUE_PER_ROW = frozenset({"body", "minhash"})


def write_table(path: Path, table: pa.Table) -> int:
    """Write one Parquet file atomically (temp name, then rename); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    # Bodies and signatures are unique per row: a dictionary for them is built, overflows and is
    # dropped in every column chunk (~15% of a data file's encoding time).
    dictionary = [name for name in table.column_names if name not in _UNIQUE_PER_ROW]
    pq.write_table(table, tmp, compression="zstd", row_group_size=50_000, use_dictionary=dictionary)
    tmp.replace(path)
    return table.num_rows


def write_rows(path: Path, rows: Iterable[dict[str, Any]], schema: pa.Schema, sort_key: str) -> int:
    """Write one Parquet file of ``rows`` atomically; returns the row count."""
    return write_table(path, rows_table(rows, schema, sort_key))
