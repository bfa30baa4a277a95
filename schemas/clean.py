"""The clean-row contract: one Arrow schema for every Parquet file the pipeline commits.

Plain types only (string, int, double, UTC microsecond timestamps, lists of structs), so DuckDB,
Spark, BigQuery and Snowflake read the files without casts. Every field, nested ones included,
carries its Apache Iceberg field id (``PARQUET:field_id``): the committed table's schema is derived
from these schemas, and readers that resolve columns by id (Spark, Trino, DuckDB's iceberg_scan)
read the data files exactly as the table declares them. The table is partitioned by
``PARTITION_COLUMN``, the UTC day of ``kafka_timestamp`` (the ingestion day), a hidden partition:
no column of its own in the files.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pyarrow as pa

__all__ = [
    "CLEAN_SCHEMA_VERSION",
    "CLEAN_SCHEMA",
    "FIRST_CLEAN_SCHEMA",
    "ADDED_FIELDS",
    "DEAD_LETTER_SCHEMA",
    "EVIDENCE_TYPE",
    "TOPIC_TYPE",
    "PARTITION_COLUMN",
    "PARTITION_SOURCE",
    "FIELD_ID",
]

CLEAN_SCHEMA_VERSION = 1
PARTITION_COLUMN = "ingest_day"
PARTITION_SOURCE = "kafka_timestamp"
FIELD_ID = b"PARQUET:field_id"

_TS = pa.timestamp("us", tz="UTC")

EVIDENCE_TYPE = pa.struct(
    [
        pa.field("phrase", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
    ]
)

TOPIC_TYPE = pa.struct(
    [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("iptc", pa.string()),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("evidence", pa.list_(EVIDENCE_TYPE)),
    ]
)


def _numbered(fields: list[pa.Field], ids: Iterator[int]) -> list[pa.Field]:
    """``fields`` with Iceberg field ids: a level's fields first, then each one's children."""
    own = [next(ids) for _ in fields]
    return [_with_id(field, number, ids) for field, number in zip(fields, own, strict=True)]


def _with_id(field: pa.Field, number: int, ids: Iterator[int]) -> pa.Field:
    kind = field.type
    if pa.types.is_list(kind):
        kind = pa.list_(_numbered([kind.value_field], ids)[0])
    elif pa.types.is_struct(kind):
        kind = pa.struct(_numbered(list(kind), ids))
    return pa.field(field.name, kind, field.nullable, metadata={FIELD_ID: str(number).encode()})


def _with_field_ids(schema: pa.Schema) -> pa.Schema:
    return pa.schema(_numbered(list(schema), itertools.count(1)), metadata=schema.metadata)


CLEAN_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("uri", pa.string()),
        pa.field("url", pa.string()),
        pa.field("headline", pa.string()),
        pa.field("body", pa.string()),
        pa.field("byline", pa.string()),
        pa.field("dateline", pa.string()),
        pa.field("credit", pa.string()),
        pa.field("language", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("word_count", pa.int32()),
        pa.field("content_hash", pa.string()),
        pa.field("duplicate_of", pa.string()),
        pa.field("cluster_id", pa.string()),
        # MinHash of the clean body's word shingles (pipeline/minhash.py: 128 little-endian uint16,
        # then the count of distinct shingles as a uint32; 256 bytes without the count in rows
        # written before it was kept), so later batches can match near-duplicates against
        # committed stories.
        pa.field("minhash", pa.binary()),
        pa.field("topics", pa.list_(TOPIC_TYPE)),
        pa.field("firstcreated", _TS),
        pa.field("versioncreated", _TS),
        pa.field("fetched_at", _TS),
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("kafka_timestamp", _TS),
        pa.field("pipeline_version", pa.string()),
        pa.field("schema_version", pa.int32()),
    ],
    metadata={b"wirestream.schema": b"wirestream.clean_story", b"wirestream.schema_version": b"1"},
)
CLEAN_SCHEMA = _with_field_ids(CLEAN_SCHEMA)
# The table as its first release created it; fields added since are in `ADDED_FIELDS`.
FIRST_CLEAN_SCHEMA = CLEAN_SCHEMA
# Fields added after the first release, in the order a table gains them: each takes the next unused
# field id and is appended, nullable, so a table created before it adds the column (an Iceberg schema
# update) without renumbering any other, and files written before it read it as null.
ADDED_FIELDS = [
    # Where `firstcreated` comes from: "feed" (the source's own date), "text" (a date the story's
    # text states) or "ingested" (neither gave one: the time Kafka took the story in).
    pa.field("firstcreated_from", pa.string(), metadata={FIELD_ID: b"39"}),
]
for _added in ADDED_FIELDS:
    CLEAN_SCHEMA = CLEAN_SCHEMA.append(_added)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("story_id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("payload", pa.binary()),
    ],
    metadata={b"wirestream.schema": b"wirestream.dead_letter", b"wirestream.schema_version": b"1"},
)
DEAD_LETTER_SCHEMA = _with_field_ids(DEAD_LETTER_SCHEMA)
