"""Deduplicate stories: re-deliveries of a story id are dropped, copies of the same text are flagged.

A re-delivered id (a connector restart, a republished file) is the same story: one row survives.
The same words under another id are syndication, which is information: those rows are kept, with
``duplicate_of`` naming the first-seen story and ``cluster_id`` shared by the group. Both checks
run against stories already committed by earlier batches as well as within the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq

__all__ = ["DeduplicateStories", "CommittedIndex", "LoadCommitted", "first_delivery", "assign_clusters"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CommittedIndex:
    """What earlier batches committed: story ids and the cluster each content hash belongs to."""

    def __init__(
        self, ids: set[str] | None = None, clusters: dict[str, tuple[str, str]] | None = None
    ) -> None:
        self.ids = ids or set()
        self.clusters = clusters or {}  # content_hash -> (canonical id, cluster id)


class LoadCommitted:
    """Picklable loader of the `CommittedIndex`: reads only three columns of committed files."""

    def __init__(self, files: list[str]) -> None:
        self._files = files

    def __call__(self) -> CommittedIndex:
        index = CommittedIndex()
        for path in self._files:
            table = pq.read_table(path, columns=["id", "content_hash", "duplicate_of", "cluster_id"])
            for story, digest, dup, cluster in zip(
                *(table.column(c).to_pylist() for c in table.column_names), strict=True
            ):
                index.ids.add(story)
                if dup is None and digest not in index.clusters:
                    index.clusters[digest] = (story, cluster or story)
        return index


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    seen = row.get("firstcreated") or row.get("kafka_timestamp") or _EPOCH
    return (
        seen,
        row.get("kafka_timestamp") or _EPOCH,
        row.get("kafka_partition") or 0,
        row.get("kafka_offset") or 0,
        row["id"],
    )


def first_delivery(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Of several deliveries of one story id, the one read first from Kafka."""
    return min(
        rows,
        key=lambda r: (
            r.get("kafka_timestamp") or _EPOCH,
            r.get("kafka_partition") or 0,
            r.get("kafka_offset") or 0,
        ),
    )


def assign_clusters(rows: Iterable[dict[str, Any]], committed: CommittedIndex) -> list[dict[str, Any]]:
    """Rows sharing one content hash: drop ids committed before, flag all but the first-seen copy."""
    fresh = sorted((r for r in rows if r["id"] not in committed.ids), key=_order)
    if not fresh:
        return []
    known = committed.clusters.get(fresh[0]["content_hash"])
    canonical, cluster = known if known else (fresh[0]["id"], fresh[0]["id"])
    out = []
    for row in fresh:
        duplicate_of = None if row["id"] == canonical else canonical
        out.append({**row, "duplicate_of": duplicate_of, "cluster_id": cluster})
    return out


class _AssignClusters(beam.DoFn):
    def __init__(self, load_committed: Any) -> None:
        self._load = load_committed
        self._committed: CommittedIndex | None = None

    def setup(self) -> None:
        self._committed = self._load()

    def process(self, element: tuple[str, Iterable[dict[str, Any]]]):  # type: ignore[no-untyped-def]
        assert self._committed is not None
        yield from assign_clusters(element[1], self._committed)


class DeduplicateStories(beam.PTransform):
    """Clean rows in, deduplicated rows out (bounded input; output is deterministic for a given input).

    ``load_committed`` is a picklable callable returning the `CommittedIndex` of earlier batches;
    it runs once per worker.
    """

    def __init__(self, load_committed: Any) -> None:
        super().__init__()
        if not callable(load_committed):
            raise ValueError("load_committed must be callable")
        self._load = load_committed

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            | "KeyById" >> beam.Map(lambda r: (r["id"], r))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirstDelivery" >> beam.MapTuple(lambda _id, group: first_delivery(group))
            | "KeyByContent" >> beam.Map(lambda r: (r["content_hash"], r))
            | "GroupByContent" >> beam.GroupByKey()
            | "AssignClusters" >> beam.ParDo(_AssignClusters(self._load))
        )
