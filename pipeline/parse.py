"""Parse Kafka records into raw stories; anything that breaks the contract becomes a dead letter."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson

from schemas import validate_raw
from schemas.raw import bound_reason, shorten, without_deep_members

__all__ = [
    "parse_record",
    "parse_chunk",
    "dead_letter",
    "failed_story",
    "each_story",
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
        "reason": bound_reason(reason),
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
    described = shorten(repr(error), 600)
    log.warning("story %s failed in %s: %s", story.get("id"), stage, described)
    return dead_letter(record, stage, f"{stage} failed: {described}", story.get("id"))


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
            message, reason = without_deep_members(value.decode("utf-8", "replace"))
            if message is None:
                return None, dead_letter(record, "parse", reason)
            if reason:
                log.warning(
                    "record %s/%s@%s: %s",
                    record.get("topic"),
                    record.get("partition"),
                    record.get("offset"),
                    reason,
                )
    problems = validate_raw(message, unicode_checked)
    story_id = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), str) else None
    key = record.get("key")
    if not problems and key is not None and key.decode("utf-8", "replace") != story_id:
        problems.append(f"Kafka key {shorten(repr(key))} does not match story id {story_id!r}")
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
