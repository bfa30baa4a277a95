"""Parse Kafka records into raw stories; anything that breaks the contract becomes a dead letter."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import orjson
from apache_beam import pvalue

from pipeline.rows import Chunk
from schemas import validate_raw

__all__ = [
    "ParseRawStories",
    "parse_record",
    "parse_chunk",
    "dead_letter",
    "failed_story",
    "per_story",
    "each_story",
    "chunk_outputs",
    "DEAD_LETTERS",
]

log = logging.getLogger(__name__)

DEAD_LETTERS = "dead_letters"
_PROVENANCE = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp_ms")


def dead_letter(
    record: dict[str, Any], stage: str, reason: str, story_id: str | None = None
) -> dict[str, Any]:
    return {
        "kafka_topic": record.get("topic"),
        "kafka_partition": record.get("partition"),
        "kafka_offset": record.get("offset"),
        "story_id": story_id,
        "stage": stage,
        "reason": reason,
        "payload": record.get("value"),
    }


def failed_story(story: dict[str, Any], stage: str, error: Exception) -> dict[str, Any]:
    """The dead letter for a story a later stage raised on. The payload is the story as that stage
    received it (for cleaning, the raw message again, which can be republished once the cause is
    fixed)."""
    message = {k: v for k, v in story.items() if k not in _PROVENANCE and k != "minhash"}
    record = {
        "topic": story.get("kafka_topic"),
        "partition": story.get("kafka_partition"),
        "offset": story.get("kafka_offset"),
        "value": json.dumps(message, default=str).encode(),
    }
    log.warning("story %s failed in %s: %r", story.get("id"), stage, error)
    return dead_letter(record, stage, f"{stage} failed: {error!r}", story.get("id"))


class _OrDeadLetter(beam.DoFn):
    """Each story of a chunk through ``fn``; a story it raises on leaves as a dead letter with the
    exception, and the rest of the chunk goes on. (Beam's ``with_exception_handling`` works per
    element, here a whole chunk, and emits ``(element, (type, repr, traceback))`` tuples that need
    one more transform to become dead letters.)"""

    def __init__(self, stage: str, fn: Callable[..., dict[str, Any]], *args: Any) -> None:
        self._stage = stage
        self._fn = fn
        self._args = args

    def process(self, stories: list[dict[str, Any]]) -> Iterator[Any]:
        yield from chunk_outputs(*each_story(self._stage, self._fn, stories, *self._args))


def chunk_outputs(
    done: list[dict[str, Any]],
    letters: list[dict[str, Any]],
    wrap: Callable[[Any], Any] = lambda v: v,
    tag: str = DEAD_LETTERS,
) -> Iterator[Any]:
    """A stage's outputs for one chunk: its results as one chunk (none when empty) and each dead
    letter on the output ``tag``; ``wrap`` gives each a window and timestamp of its own."""
    if done:
        yield wrap(done)
    for letter in letters:
        yield pvalue.TaggedOutput(tag, wrap(letter))


def each_story(
    stage: str, fn: Callable[..., dict[str, Any]], stories: list[dict[str, Any]], *args: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``fn(story, *args)`` for each story: (the results, dead letters for the stories it raised on)."""
    done, letters = [], []
    for story in stories:
        try:
            done.append(fn(story, *args))
        except Exception as exc:  # any input-driven failure: the rest of the batch goes on
            letters.append(failed_story(story, stage, exc))
    return done, letters


def per_story(stage: str, fn: Callable[..., dict[str, Any]], *args: Any) -> beam.ParDo:
    """``fn(story, *args)`` for each story of each chunk, with outputs ``rows`` (chunks) and
    ``dead_letters`` (one element each)."""
    return (
        beam.ParDo(_OrDeadLetter(stage, fn, *args))
        .with_output_types(Chunk)
        .with_outputs(DEAD_LETTERS, main="rows")
    )


def parse_record(record: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(story, None) for a valid record, (None, dead letter) otherwise; never raises on bad data."""
    value = record.get("value")
    if not value:
        return None, dead_letter(record, "parse", "empty record value")
    try:
        message = orjson.loads(value)
        unicode_checked = True  # orjson refuses a lone surrogate
    except orjson.JSONDecodeError:
        unicode_checked = False
        # orjson refuses what the validator explains better (a lone surrogate escape: which field,
        # which character) and what is not UTF-8: the standard parser decides those records.
        try:
            message = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, dead_letter(record, "parse", f"not JSON: {exc}")
        except RecursionError:
            return None, dead_letter(record, "parse", "not JSON: nested too deeply")
    problems = validate_raw(message, unicode_checked)
    story_id = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), str) else None
    key = record.get("key")
    if not problems and key is not None and key.decode("utf-8", "replace") != story_id:
        problems.append(f"Kafka key {key!r} does not match story id {story_id!r}")
    if problems:
        return None, dead_letter(record, "validate", "; ".join(problems), story_id)
    message["kafka_topic"] = record["topic"]
    message["kafka_partition"] = record["partition"]
    message["kafka_offset"] = record["offset"]
    message["kafka_timestamp_ms"] = record.get("timestamp_ms")
    return message, None


def parse_chunk(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stories, dead letters) for a chunk of Kafka records."""
    parsed = [parse_record(record) for record in records]
    return (
        [story for story, _letter in parsed if story is not None],
        [letter for _story, letter in parsed if letter is not None],
    )


class _Parse(beam.DoFn):
    def process(self, records: list[dict[str, Any]]) -> Iterator[Any]:
        yield from chunk_outputs(*parse_chunk(records))


class ParseRawStories(beam.PTransform):
    """Chunks of Kafka records in; outputs ``stories`` (chunks) and ``dead_letters`` (one element
    each, with reasons). Every record leaves as exactly one of the two."""

    def expand(self, records: beam.PCollection) -> pvalue.DoOutputsTuple:
        return records | "ParseAndValidate" >> beam.ParDo(_Parse()).with_output_types(Chunk).with_outputs(
            DEAD_LETTERS, main="stories"
        )
