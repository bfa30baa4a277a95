"""Versioned data contracts: the raw message on Kafka and the clean Parquet row."""

from schemas.clean import (
    CLEAN_SCHEMA,
    CLEAN_SCHEMA_VERSION,
    DEAD_LETTER_SCHEMA,
    FIELD_ID,
    PARTITION_COLUMN,
    PARTITION_SOURCE,
)
from schemas.raw import (
    RAW_SCHEMA_NAME,
    RAW_SCHEMA_VERSION,
    parse_rfc3339,
    raw_schema,
    rfc3339,
    story_id,
    validate_raw,
)

__all__ = [
    "CLEAN_SCHEMA",
    "CLEAN_SCHEMA_VERSION",
    "DEAD_LETTER_SCHEMA",
    "FIELD_ID",
    "PARTITION_COLUMN",
    "PARTITION_SOURCE",
    "RAW_SCHEMA_NAME",
    "RAW_SCHEMA_VERSION",
    "parse_rfc3339",
    "raw_schema",
    "rfc3339",
    "story_id",
    "validate_raw",
]
