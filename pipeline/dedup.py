"""Deduplicate stories: re-deliveries of a story id are dropped, near-duplicate copies are flagged.

A re-delivered id (a connector restart, a republished file, a backfill) is the same story: one row
survives, and an id committed by an earlier batch is dropped. The same wire copy under another id,
with other furniture, headline or light edits, is syndication, which is information: those rows are
kept, with ``duplicate_of`` naming the first-seen story and ``cluster_id`` shared by the group.

Near-duplicates are texts whose MinHash signatures (`pipeline.minhash`, over word shingles of the
clean body without its quoted speech) estimate a containment over the shorter copy of at least
``threshold``, or a shared passage (`minhash.PASSAGE_SHINGLES` shingles in common, containment at
least `minhash.PASSAGE_FLOOR`), published at most ``lookback`` apart; groups are the connected
components of such pairs. Containment, not Jaccard similarity: sites cut one agency story to
different lengths, and a lead-only copy shares nearly all its shingles with the full story but few
of the full story's. The passage: two sites can carry different windows of one story (a site's
intro and the lead, the lead and more) that share whole paragraphs but less than half of either,
where independent reports of one event share phrases and quotations.
Stories committed by earlier batches within the look-back take part with their stored ``minhash``
signatures (those committed before signatures kept their shingle count match by Jaccard
similarity); a committed story keeps its flags, so it is the canonical whenever it is in a group.

``DEFAULT_THRESHOLD`` (0.45) was chosen on the development part of the real-copy set
(`benchmarks/quality/real`): copies republished on different sites, cut, extended and lightly
edited, against independent reports of the same events that quote the same statements; it is
the threshold of most recall whose pair precision there is at least 0.97, with the passage rule
as without it (at 0.40 that precision falls to 0.84 there).
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import minhash
from pipeline.rows import MICROSECOND, micros
from pipeline.storage import identity as file_identity
from pipeline.storage import open_source
from pipeline.write import file_order, in_place

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_THRESHOLD",
    "CommittedIndex",
    "LoadCommitted",
    "windows_around",
    "Verdict",
    "first_deliveries",
    "sign_rows",
    "cluster_stories",
    "apply_verdicts",
    "published_us",
]

log = logging.getLogger(__name__)

# Containment over the shorter copy from which two stories are near-duplicates: the threshold
# with the most recall whose pair precision on the development half of the real-copy set
# (`benchmarks/quality/real`) is at least 0.97. A false link merges two different stories'
# clusters, which a reader cannot undo; a missed copy stays a story of its own.
DEFAULT_THRESHOLD = 0.45
DEFAULT_LOOKBACK = timedelta(days=7)


def published_us(row: dict[str, Any]) -> int:
    """Publication time in UTC microseconds, as the dataset partitions it (0 when unknown)."""
    return micros(row.get("firstcreated") or row.get("kafka_timestamp") or row.get("fetched_at"))


# A committed file's signed rows, as `LoadCommitted` reads and caches them.
_SIGNED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("canonical", pa.string()),  # duplicate_of, or the story's own id
        ("cluster", pa.string()),
        ("published", pa.int64()),  # UTC microseconds
        ("minhash", pa.binary()),  # whole signatures only, each `minhash.SIGNATURE_BYTES` (`_read_signed`)
    ]
)


@dataclass
class CommittedIndex:
    """What earlier batches committed: story ids, and the signed stories inside a time window.

    The signed stories are each cached file's signed table with the indexes of its rows inside the
    window: nothing is copied until clustering takes them. A batch's look-back holds 10^5 of them,
    which as Python objects cost time to make and left the allocator's pools in pieces after every
    batch, and as filtered copies cost ~40 MB more at the batch's peak.
    """

    ids: set[str] = field(default_factory=set)
    signed: list[tuple[pa.Table, npt.NDArray[np.intp]]] = field(default_factory=list)

    def add(self, story: str, signature: bytes, canonical: str, cluster: str, published: int) -> None:
        whole = minhash.signature_matrix([signature]).tobytes()  # a legacy signature gets a count of 0
        row = pa.table([[story], [canonical], [cluster], [published], [whole]], schema=_SIGNED_SCHEMA)
        self.signed.append((row, np.zeros(1, np.intp)))

    def signed_rows(self) -> pa.Table:
        """(id, canonical, cluster, published) of the signed stories, in the index's order."""
        empty = _SIGNED_SCHEMA.empty_table().drop_columns(["minhash"])
        return pa.concat_tables(
            [empty, *(table.drop_columns(["minhash"]).take(rows) for table, rows in self.signed)]
        )

    @property
    def story_ids(self) -> list[str]:
        return self.signed_rows().column("id").to_pylist()

    @property
    def signatures(self) -> list[bytes]:
        return [row.tobytes() for table, rows in self.signed for row in _signature_rows(table)[rows]]

    def copy_signatures(self, out: npt.NDArray[np.uint16]) -> None:
        """The signatures, in the index's order, into ``out`` (stories x `minhash.COLUMNS`)."""
        at = 0
        for table, rows in self.signed:
            out[at : at + len(rows)] = _signature_rows(table)[rows]
            at += len(rows)


# The FileIO properties committed files are opened with (`storage.open_source`), hashable.
_IO = tuple[tuple[str, str], ...]

# `published_us` takes the first of these a row has (0 when it has none).
_PUBLISHED_FROM = ("firstcreated", "kafka_timestamp", "fetched_at")


@functools.lru_cache(maxsize=8192)
def _published_span(path: str, io: _IO, _size: int, _mtime_ns: int) -> tuple[int, int] | None:
    """The earliest and latest `published_us` the file's rows can have, from its row groups'
    statistics (None when they do not say): files whose span misses every window are not read."""
    metadata = pq.read_metadata(open_source(path, dict(io)))
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    low, high = None, None
    for column in _PUBLISHED_FROM:
        if column not in names:
            return None
        index = names.index(column)
        nulls = 0
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count:
                return None
            nulls += stats.null_count
            if stats.has_min_max:
                first, last = micros(stats.min), micros(stats.max)
                low = first if low is None else min(low, first)
                high = last if high is None else max(high, last)
        if not nulls:
            break
    else:
        low = 0 if low is None else min(low, 0)  # rows with no time at all publish at 0
        high = 0 if high is None else max(high, 0)
    return None if low is None or high is None else (low, high)


class LoadCommitted:
    """Picklable loader of the `CommittedIndex` from committed Parquet files.

    Called with windows ``[(earliest, latest), ...]`` in UTC microseconds (see `windows_around`), it
    reads signatures only from files whose rows' publication times (their statistics) can fall inside one, and keeps
    those published inside one.
    Given ``candidates`` (a batch's story ids), ``ids`` holds those of them already committed, found
    with one columnar membership test over every file; without, every committed id. Either way memory follows
    the batch and the look-back window, not the size of the dataset. Rows committed before the
    ``minhash`` column existed are signed from their body. A committed file that cannot be read
    (truncated, missing) is skipped with a warning naming it, so it does not stop new commits.
    """

    def __init__(self, files: list[str], properties: Mapping[str, str] | None = None) -> None:
        self._files = list(files)
        self._io: _IO = tuple(sorted((properties or {}).items()))

    def __call__(
        self, windows: list[tuple[int, int]] | None = None, candidates: Iterable[str] | None = None
    ) -> CommittedIndex:
        index = CommittedIndex()
        committed = []
        for path in self._files:
            try:
                identity = file_identity(path)
                ids = _committed_ids(path, self._io, *identity)
                span = _published_span(path, self._io, *identity) if windows is not None else None
                if (
                    windows is not None
                    and span is not None
                    and not any(span[0] <= last and span[1] >= first for first, last in windows)
                ):
                    committed.append(ids)
                    continue
                table = _SIGNED.get(path, self._io, identity)
            except (OSError, pa.ArrowException) as exc:
                # A committed file that cannot be read must not stop new stories from committing:
                # its ids are unknown to this batch (a re-delivery of one of them is kept again),
                # which `wirestream repair` and a backfill of its day set right.
                log.warning(
                    "dedup skips committed file %s: it cannot be read (%s); run `wirestream repair`",
                    path,
                    " ".join(str(exc).split())[:200],
                )
                continue
            committed.append(ids)
            index.signed.append((table, _rows_inside(table.column("published"), windows)))
        _SIGNED.look_up_done()
        ids = pa.chunked_array(committed, pa.string())
        if candidates is None:
            index.ids.update(ids.to_pylist())
        elif len(wanted := pa.array(sorted(set(candidates)), pa.string())):
            # One membership test over every file: its hash table of the batch's ids is built once,
            # not once a file (at 1M committed stories, ~1 s a batch).
            index.ids.update(ids.filter(pc.is_in(ids, value_set=wanted)).to_pylist())
        return index


def windows_around(times: Iterable[int], margin: int, most: int = 64) -> list[tuple[int, int]]:
    """The publication times a batch's stories can match, as few sorted intervals: each time give or
    take ``margin``, overlapping ones merged, then the closest neighbours merged until at most
    ``most`` remain (a superset is safe: clustering checks each pair's distance itself).

    Not one (earliest, latest) span: a batch that reads the end of one Kafka partition and the start
    of the next holds stories months apart, and the span between them would load every signature
    committed in those months.
    """
    windows: list[tuple[int, int]] = []
    for t in sorted(times):
        if windows and t - margin <= windows[-1][1]:
            windows[-1] = (windows[-1][0], t + margin)
        else:
            windows.append((t - margin, t + margin))
    if len(windows) <= most:
        return windows
    # Merging two windows leaves every other gap as it was, so merging the closest neighbours one
    # at a time (the leftmost of equals first) ends where keeping only the widest ``most - 1`` gaps
    # (the rightmost of equals) does, in one sort.
    by_width = sorted(range(len(windows) - 1), key=lambda i: (windows[i][1] - windows[i + 1][0], -i))
    widest = by_width[: most - 1]
    kept: list[tuple[int, int]] = []
    first = windows[0][0]
    for i in sorted(widest):
        kept.append((first, windows[i][1]))
        first = windows[i + 1][0]
    kept.append((first, windows[-1][1]))
    return kept


# Committed files never change in place (a retry rewrites a file with a new mtime), so what one
# holds is read once per process: a continuous run re-reads nothing it loaded for earlier batches.
# Both caches hold Arrow columns, not Python objects: ~36 bytes per id, ~330 per signed row.
@functools.lru_cache(maxsize=8192)
def _committed_ids(path: str, io: _IO, _size: int, _mtime_ns: int) -> pa.Array:
    ids = (
        pq.read_table(open_source(path, dict(io)), columns=["id"], partitioning=None)
        .column("id")
        .combine_chunks()
    )
    return ids.cast(pa.string())  # one type for every file's, so that they chain without a copy


def _read_signed(path: str, io: _IO) -> pa.Table:
    """(id, canonical, cluster, published, minhash) of every committed row of a file."""
    names = set(pq.read_schema(open_source(path, dict(io))).names)
    stored = "minhash" in names
    columns = ["id", "duplicate_of", "cluster_id", "firstcreated", "kafka_timestamp", "fetched_at", "body"]
    columns = [c for c in columns if c in names and not (stored and c == "body")]
    table = pq.read_table(
        open_source(path, dict(io)), columns=columns + (["minhash"] if stored else []), partitioning=None
    )
    ids = table.column("id")
    times = [table.column(c).cast(pa.timestamp("us", "UTC")) for c in _TIME_COLUMNS if c in names]
    published = pc.coalesce(*times) if times else pa.nulls(len(table), pa.timestamp("us", "UTC"))
    if stored:
        signatures = table.column("minhash")
    else:
        signatures = pa.array(minhash.signatures([body or "" for body in table.column("body").to_pylist()]))
    optional = {
        c: table.column(c) if c in names else pa.nulls(len(table), pa.string()) for c in _FLAG_COLUMNS
    }
    signed = pa.table(
        {
            "id": ids.cast(pa.string()),
            "canonical": pc.coalesce(optional["duplicate_of"], ids).cast(pa.string()),
            "cluster": pc.coalesce(optional["cluster_id"], ids).cast(pa.string()),
            "published": pc.fill_null(published.cast(pa.int64()), 0),
            "minhash": signatures.cast(pa.binary()),
        }
    )
    # Only whole signatures take part, each `minhash.SIGNATURE_BYTES` long (one committed before
    # signatures kept their shingle count gets a count of 0): then the column's one buffer is the
    # signature matrix itself (`_signature_rows`).
    length = pc.binary_length(signed.column("minhash"))
    legacy = pc.fill_null(pc.equal(length, minhash.LEGACY_SIGNATURE_BYTES), False)
    if pc.any(legacy).as_py():
        pad = bytes(minhash.SIGNATURE_BYTES - minhash.LEGACY_SIGNATURE_BYTES)
        padded = pc.binary_join_element_wise(signed.column("minhash"), pa.scalar(pad), pa.scalar(b""))
        column = pc.if_else(legacy, padded, signed.column("minhash"))
        signed = signed.set_column(signed.schema.get_field_index("minhash"), "minhash", column)
    whole = pc.equal(pc.binary_length(signed.column("minhash")), minhash.SIGNATURE_BYTES)
    return signed.filter(pc.fill_null(whole, False)).combine_chunks()


_TIME_COLUMNS = ("firstcreated", "kafka_timestamp", "fetched_at")  # published_us's order
_FLAG_COLUMNS = ("duplicate_of", "cluster_id")


class _SignedCache:
    """Signed rows of the files the latest look-up used.

    Batches move forward in time, so the next batch's look-back window needs nearly the same files
    as this one's: each look-up keeps what it used and lets go of the rest, and memory follows the
    window, however large the dataset grows.
    """

    def __init__(self) -> None:
        self._tables: dict[tuple[str, int, int], pa.Table] = {}
        self._used: dict[tuple[str, int, int], pa.Table] = {}

    def get(self, path: str, io: _IO, identity: tuple[int, int]) -> pa.Table:
        key = (path, *identity)
        table = self._tables.get(key)
        if table is None:
            table = _read_signed(path, io)
        self._used[key] = table
        return table

    def look_up_done(self) -> None:
        self._tables, self._used = self._used, {}


# Per process, like the lru caches above: a continuous run's batches share it.
_SIGNED = _SignedCache()


def _rows_inside(published: pa.ChunkedArray, windows: list[tuple[int, int]] | None) -> npt.NDArray[np.intp]:
    """Indexes of the times inside one of ``windows`` (every index without windows)."""
    times = published.to_numpy()
    if windows is None:
        return np.arange(len(times))
    inside = np.zeros(len(times), bool)
    for first, last in windows:
        inside |= (times >= first) & (times <= last)
    return np.flatnonzero(inside)


def _signature_rows(table: pa.Table) -> npt.NDArray[np.uint16]:
    """A signed table's signatures as a (stories x `minhash.COLUMNS`) view of its own buffer."""
    column = table.column("minhash")
    if not len(column):
        return np.zeros((0, minhash.COLUMNS), np.uint16)
    (chunk,) = column.chunks
    offsets = np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    return data.view("<u2").reshape(len(chunk), minhash.COLUMNS)


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    """(seen, Kafka time, partition, offset, id): times in UTC microseconds, so summaries cross a
    shuffle as plain integers."""
    return (
        micros(row.get("firstcreated") or row.get("kafka_timestamp")),
        micros(row.get("kafka_timestamp")),
        row.get("kafka_partition") or 0,
        row.get("kafka_offset") or 0,
        row["id"],
    )


def sign_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with ``minhash`` set from their clean body (None for a body without words). A row
    that arrives signed keeps its signature: `transforms.PrepareStories` signs in its workers."""
    unsigned = [row.get("body") or "" for row in rows if row.get("minhash") is None]
    if not unsigned:
        return list(rows)
    sigs = iter(minhash.signatures(unsigned))
    return [row if row.get("minhash") is not None else {**row, "minhash": next(sigs)} for row in rows]


class Verdict(NamedTuple):
    """What dedup decided for one story id: drop it, or keep it with these flags. A tuple: a
    batch makes one per story, and the side input carries them as plain tuples."""

    keep: bool
    duplicate_of: str | None = None
    cluster_id: str | None = None


# What one story contributes to clustering: (order, id, published_us, signature).
Summary = tuple[tuple[Any, ...], str, int, bytes | None]


def summarise(row: dict[str, Any]) -> Summary:
    return (_order(row), row["id"], published_us(row), row.get("minhash"))


def summarise_chunk(rows: Iterable[dict[str, Any]]) -> bytes:
    """The rows' summaries, pickled once where they are made: the pipeline process and the
    runner then move one bytes object a chunk (~500 tuples of five objects each would be pickled
    and unpickled at every hand-over), and only clustering unpickles them (`summaries_of`)."""
    return pickle.dumps([summarise(row) for row in rows], protocol=pickle.HIGHEST_PROTOCOL)


def summaries_of(chunks: Iterable[bytes]) -> Iterator[Summary]:
    """Every summary of chunks `summarise_chunk` pickled."""
    for chunk in chunks:
        yield from pickle.loads(chunk)


def cluster_stories(
    stories: Iterable[Summary], committed: CommittedIndex, threshold: float, lookback: timedelta
) -> dict[str, Verdict]:
    """A verdict for every story id: committed ids are dropped; the rest are grouped with each other
    and with committed stories, the earliest (a committed story first) being the canonical."""
    verdicts: dict[str, Verdict] = {}
    fresh: list[str] = []
    sigs: list[bytes] = []
    times: list[int] = []
    for _order_key, story, published, signature in sorted(stories, key=lambda s: s[0]):
        if story in committed.ids:
            verdicts[story] = Verdict(keep=False)
        elif signature is None or not minhash.is_signature(signature):
            verdicts[story] = Verdict(keep=True, cluster_id=story)
        else:
            fresh.append(story)
            sigs.append(signature)
            times.append(published)
    # Committed stories take the lowest indexes, so a group's smallest index is its canonical.
    signed = committed.signed_rows()
    base = signed.num_rows
    matrix = np.empty((base + len(sigs), minhash.COLUMNS), np.uint16)
    committed.copy_signatures(matrix[:base])
    matrix[base:] = minhash.signature_matrix(sigs)
    published = np.concatenate([signed.column("published").to_numpy(), np.array(times, np.int64)])
    del sigs, times
    pairs = minhash.near_duplicate_pairs(matrix, threshold, published, lookback // MICROSECOND)
    pairs = pairs[pairs[:, 1] >= base]  # committed pairs were settled when they were committed
    label = minhash.connected_components(len(matrix), pairs)
    heads = _committed_heads(signed, label[base:])
    for story, head in zip(fresh, label[base:].tolist(), strict=True):
        if head < base:
            canonical, cluster = heads[head]
        else:
            canonical = cluster = fresh[head - base]
        verdicts[story] = Verdict(True, None if canonical == story else canonical, cluster)
    return verdicts


def _committed_heads(signed: pa.Table, labels: npt.NDArray[np.intp]) -> dict[int, tuple[str, str]]:
    """(canonical, cluster) of each committed story that heads a group of fresh ones, by index."""
    heads = np.unique(labels[labels < signed.num_rows])
    rows = signed.select(["canonical", "cluster"]).take(pa.array(heads, pa.int64())).to_pylist()
    return {int(head): (row["canonical"], row["cluster"]) for head, row in zip(heads, rows, strict=True)}


def first_deliveries(stories: Iterable[Summary]) -> list[Summary]:
    """One summary per story id: the delivery read first from Kafka (Kafka time, then partition and
    offset)."""
    best: dict[str, Summary] = {}
    for summary in stories:
        current = best.get(summary[1])
        # order = (published, kafka timestamp, partition, offset, id): compare the Kafka part.
        if current is None or summary[0][1:4] < current[0][1:4]:
            best[summary[1]] = summary
    return list(best.values())


def _kept(verdicts: dict[str, Any], story: str, partition: int | None, offset: int | None) -> Any:
    """The verdict's (canonical, cluster) if this delivery of ``story`` is kept: its verdict keeps
    it and it is the delivery read first (Kafka partition and offset); else None."""
    entry = verdicts.get(story)
    if entry is None or not entry[0] or ((partition or 0), (offset or 0)) != (entry[3], entry[4]):
        return None
    return entry[1], entry[2]


def apply_verdicts(rows: Iterable[dict[str, Any]], verdicts: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with their story's verdict applied, without those the verdict drops and those that
    are a later delivery of a story whose first delivery is kept."""
    kept = []
    for row in rows:
        flags = _kept(verdicts, row["id"], row.get("kafka_partition"), row.get("kafka_offset"))
        if flags is not None:
            kept.append({**row, "duplicate_of": flags[0], "cluster_id": flags[1]})
    return kept


def verdict_columns(verdicts: dict[str, Any]) -> pa.Table:
    """The batch's verdicts as columns (id, keep, duplicate_of, cluster_id, and the Kafka partition
    and offset of the delivery kept), built once a batch for `apply_verdicts_to_table`."""
    entries = list(verdicts.values())
    return pa.table(
        {
            "id": pa.array(list(verdicts), pa.string()),
            "keep": pa.array([e[0] for e in entries], pa.bool_()),
            "duplicate_of": pa.array([e[1] for e in entries], pa.string()),
            "cluster_id": pa.array([e[2] for e in entries], pa.string()),
            "partition": pa.array([e[3] for e in entries], pa.int64()),
            "offset": pa.array([e[4] for e in entries], pa.int64()),
        }
    )


def apply_verdicts_to_table(table: pa.Table, verdicts: pa.Table) -> pa.Table:
    """`apply_verdicts` for rows in an Arrow table, with the `verdict_columns`: the rule of `_kept`
    in vector operations (a missing partition or offset counts as 0, as there). The kept rows come
    out in `write.file_order`, taken in one copy (none when all are kept and already in order):
    the writer then has nothing to reorder."""
    at = pc.index_in(table.column("id"), value_set=verdicts.column("id"))  # null: no verdict

    def verdict(name: str) -> Any:
        return verdicts.column(name).take(at)

    first_delivery = pc.and_(
        pc.equal(pc.fill_null(table.column("kafka_partition").cast(pa.int64()), 0), verdict("partition")),
        pc.equal(pc.fill_null(table.column("kafka_offset").cast(pa.int64()), 0), verdict("offset")),
    )
    kept = pc.indices_nonzero(pc.fill_null(pc.and_(verdict("keep"), first_delivery), False))
    rows = kept.take(file_order(table, kept))
    # Spilled rows arrive in file order (`write.unpack_files`): when every one is kept, no copy.
    out = table if in_place(rows, table.num_rows) else table.take(rows)
    for name in ("duplicate_of", "cluster_id"):
        index = out.schema.get_field_index(name)
        out = out.set_column(index, out.schema.field(index), verdict(name).take(rows))
    return out
