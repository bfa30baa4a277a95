"""How stories travel between stages: in chunks, and how a chunk crosses a shuffle.

Stories move through the pipeline as `Chunk` elements: lists of up to `CHUNK_SIZE` records,
stories or rows (in a bounded read, as every batch and backfill part is: one block of `CHUNK_SIZE`
offsets of a partition), never one element per story. Beam's per-element work
(the runner's bookkeeping, the restriction tracker, the coders) then happens once a chunk instead of
once a story; per story it had cost about a quarter of a backfill's CPU. Each stage loops over a
chunk with its plain per-story function, so a story that fails still fails alone.

A chunk crosses a shuffle pickled whole (`transforms.ChunkCoder`): C code throughout, timestamps
included, where Beam's default coder for a list of dicts walks every value and pickles each
datetime apart.

Prepared rows go further as Arrow: the stage that prepares a chunk hands it over `Packed`, its
rows already Arrow record batches, one per data file they go to, beside the few fields dedup
clusters on. The runner then moves bytes, not dicts, from where rows are prepared through the
shuffle to the writer: no row is pickled, unpickled or converted to Arrow on the way (on one
machine, only the paths of the spilled batches move).

Every coder (in `transforms`, registered with Beam when that module is imported) sizes an element
without encoding it (`estimate_size`): runners sample element sizes for their metrics, and the first
elements of each output are always sampled. A file's rows travel as one Arrow table, so Beam's
pickle-based default would pickle every file's table whole once per stage it leaves, only to measure
it (~1 GB of copies in a 100k backfill).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "Chunk",
    "Packed",
    "CHUNK_SIZE",
    "MICROSECOND",
    "micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Records per chunk: large enough that per-element costs vanish, small enough that a chunk (~2 MB of
# 4 KB stories) is nothing beside a batch.
CHUNK_SIZE = 500


def micros(moment: datetime | None) -> int:
    """UTC microseconds since the epoch (0 for no time): how timestamps cross shuffles, and the
    unit dedup compares publication times in."""
    return (moment - _EPOCH) // MICROSECOND if moment else 0


class Chunk(list[Any]):
    """Type hint for a PCollection of chunks (lists of records, stories or rows); the elements
    themselves are plain lists."""


@dataclass(frozen=True)
class Packed:
    """A chunk of rows as `transforms.PrepareStories` hands them over for a backfill's files."""

    # (order, id, published_us, signature) of each row, what `dedup.cluster_stories` needs,
    # pickled (`dedup.summarise_chunk`).
    summaries: bytes
    # (route, path): ``partition/shard`` and the Arrow IPC stream of the rows bound for that data
    # file, spilled beside the batch's staging folder (`write.pack_files`).
    files: list[tuple[str, str]]
