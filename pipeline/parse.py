"""Parse Kafka records into raw stories; anything that breaks the contract becomes a dead letter."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson

from schemas import raw_schema, validate_raw
from schemas.raw import bound_reason, shorten

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
# A JSON token that changes the nesting or separates members; strings are matched whole so that
# brackets inside them do not count.
_MAX_DEPTH = 256
"""Members nested deeper than this are left out of a message the parsers refuse as too deep."""
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[][{},:]')


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
            message, reason = _without_deep_members(value)
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


def _without_deep_members(value: bytes) -> tuple[dict[str, Any] | None, str]:
    """A message too deeply nested for a JSON parser's recursion, read without its deep members.

    The contract's fields nest two levels at most and unknown fields are allowed (an older reader
    keeps reading a newer producer), so an unknown member nested deeper than any parser follows is
    left out and the story read; a contract field nested that deeply, or a message that is not an
    object, is refused. The scan walks the text's tokens with a depth counter (no recursion), as
    neither orjson nor the standard parser reads past their depth limits. Returns (the message,
    what was left out) or (None, the reason to refuse it).
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not JSON: {exc}"
    known = set(raw_schema()["properties"])
    kept: list[str] = []
    dropped: list[str] = []
    depth = 0
    start = 0  # where the current top-level member starts
    key: str | None = None
    deepest = 0
    closed_at: int | None = None
    for token in _TOKEN.finditer(text):
        symbol = token.group()
        if symbol in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth == 1:
                if symbol != "{":
                    return None, "not JSON: nested too deeply (and not an object)"
                start = token.end()
        elif symbol in "]}":
            depth -= 1
            if depth == 0:
                if key is not None:
                    _member(text, start, token.start(), key, deepest, known, kept, dropped)
                closed_at = token.end()
                break
        elif depth == 1:
            if symbol == ",":
                if key is not None:
                    _member(text, start, token.start(), key, deepest, known, kept, dropped)
                key, start, deepest = None, token.end(), 1
            elif symbol.startswith('"') and key is None:
                key = symbol
    if closed_at is None:
        return None, "not JSON: the text ends before the message's object closes"
    if text[closed_at:].strip():
        return None, "not JSON: text after the message's object"
    refused = [name for name in dropped if name in known]
    if refused:
        return None, f"{shorten(refused[0])}: nested deeper than {_MAX_DEPTH} levels"
    try:
        message = orjson.loads("{" + ",".join(kept) + "}")
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    if not dropped:
        return message, ""
    names = ", ".join(shorten(name, 60) for name in dropped[:5])
    return message, f"left out unknown field(s) nested deeper than {_MAX_DEPTH} levels: {names}"


def _member(
    text: str,
    start: int,
    end: int,
    key: str,
    deepest: int,
    known: set[str],
    kept: list[str],
    dropped: list[str],
) -> None:
    try:
        name = json.loads(key)
    except ValueError:
        name = key
    if deepest > _MAX_DEPTH:
        dropped.append(name)
    else:
        kept.append(text[start:end])


def parse_chunk(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stories, dead letters) for a chunk of Kafka records."""
    parsed = [parse_record(record) for record in records]
    return (
        [story for story, _letter in parsed if story is not None],
        [letter for _story, letter in parsed if letter is not None],
    )
