"""Prepare stories: parse, clean, tag and sign each story of a chunk, in worker processes beside the
pipeline's own.

These are the per-story stages: pure functions of one story, holding the GIL, and most of a story's
CPU. In one process a second core idles, so each full chunk goes to a worker whole, through every
stage, and comes back as signed rows plus each stage's dead letters: one hand-over per chunk, not
one per stage. The stages themselves live in their modules (`parse`, `clean`, `tagging`, and
`dedup.sign_rows`); this module chains them, and `transforms.PrepareStories` runs the chain in
workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.clean import clean_chunk
from pipeline.dedup import sign_rows, summarise_chunk
from pipeline.kafka_source import DeferredRead
from pipeline.parse import each_story, parse_chunk
from pipeline.rows import Packed
from pipeline.tagging import Taxonomy, tag_row
from pipeline.write import pack_files

__all__ = ["prepare_chunk", "pack_chunk", "prepare_read", "STAGES"]

# Each stage's dead letters leave on an output of its name (and land in a file of that name).
STAGES = ("parse", "clean", "tag")

Prepared = tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]


def prepare_chunk(records: list[dict[str, Any]], pipeline_version: str, taxonomy: Taxonomy) -> Prepared:
    """(clean rows with topics and signatures, {stage: dead letters}) for a chunk of Kafka records."""
    stories, parse_letters = parse_chunk(records)
    rows, clean_letters = clean_chunk(stories, pipeline_version)
    tagged, tag_letters = each_story("tag", tag_row, rows, taxonomy)
    return sign_rows(tagged), {"parse": parse_letters, "clean": clean_letters, "tag": tag_letters}


def pack_chunk(
    records: list[dict[str, Any]], pipeline_version: str, taxonomy: Taxonomy, shards: int, spill: str
) -> tuple[Packed | None, dict[str, list[dict[str, Any]]]]:
    """`prepare_chunk`, its rows `Packed` as Arrow for the data files of ``shards`` shards, spilled
    to the folder ``spill`` (`write.pack_files`; None: no rows)."""
    rows, letters = prepare_chunk(records, pipeline_version, taxonomy)
    packed = Packed(summarise_chunk(rows), pack_files(rows, shards, spill)) if rows else None
    return packed, letters


def prepare_read(prepare: Callable[..., Any], read: DeferredRead, *args: Any) -> list[Any]:
    """``prepare(chunk, *args)`` for each chunk of records of a deferred Kafka read, read here."""
    return [prepare(chunk, *args) for chunk in read.chunks()]
