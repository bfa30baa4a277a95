"""Dead-letter reasons stay small and only contract violations dead-letter a story."""

from __future__ import annotations

import json

import pytest

from connectors.formats import parse_document
from connectors.publisher import DeadLetter
from pipeline.parse import failed_story, parse_record
from schemas.raw import MAX_REASON_BYTES, bound_reason
from tests.conftest import raw_story

DEEP = 50_000


def record(message: dict | bytes, key: bytes | None = None) -> dict:
    value = message if isinstance(message, bytes) else json.dumps(message).encode()
    if key is None and isinstance(message, dict):
        key = message["id"].encode()
    return {"topic": "t", "partition": 0, "offset": 3, "key": key, "value": value}


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def size(reason: str) -> int:
    return len(reason.encode("utf-8"))


def test_a_10_mb_body_is_one_dead_letter_whose_reason_cuts_the_body_and_says_how_much():
    story = raw_story(1)
    story["body"] = "é" + "x" * (10 * 1024 * 1024)
    story_value, letter = parse_record(record(story))
    assert story_value is None and letter is not None
    reason = letter["reason"]
    assert size(reason) <= MAX_REASON_BYTES
    assert reason.startswith("body: 'éxxx") and reason.endswith("is too long")
    cut = len(repr(story["body"])) - 120
    assert f"[{cut} more characters cut]" in reason
    assert letter["payload"] == record(story)["value"]  # the input itself is kept whole


def test_many_oversized_fields_together_stay_within_the_bound():
    story = raw_story(2)
    story.update(headline="h" * 5000, language="x" * 5000, source="s" * 5000, body_format="b" * 5000)
    _, letter = parse_record(record(story))
    assert letter is not None
    assert size(letter["reason"]) <= MAX_REASON_BYTES
    assert "more characters cut]" in letter["reason"]


def test_a_huge_kafka_key_is_cut_in_the_reason():
    story = raw_story(3)
    _, letter = parse_record(record(story, key=b"k" * 100_000))
    assert letter is not None and letter["stage"] == "validate"
    assert size(letter["reason"]) <= MAX_REASON_BYTES and "does not match story id" in letter["reason"]


def test_an_unknown_field_nested_50k_deep_is_left_out_and_the_story_read(caplog):
    story = raw_story(4)
    text = json.dumps(story)
    value = (text[:-1] + f', "extra": {{"deep": {nested(DEEP)}}}, "tags": ["kept"]}}').encode()
    parsed, letter = parse_record(record(value, key=story["id"].encode()))
    assert letter is None and parsed is not None
    assert {k: parsed[k] for k in story} == story
    assert parsed["tags"] == ["kept"] and "extra" not in parsed
    assert "left out unknown field(s) nested deeper than 256 levels: extra" in caplog.text


def test_a_contract_field_nested_50k_deep_is_a_bounded_dead_letter():
    story = raw_story(5)
    value = (json.dumps(story)[:-1] + f', "encoding": {nested(DEEP)}}}').encode()
    parsed, letter = parse_record(record(value, key=story["id"].encode()))
    assert parsed is None and letter is not None
    assert letter["reason"] == "encoding: nested deeper than 256 levels"


@pytest.mark.parametrize(
    "value, reason",
    [
        (nested(DEEP).encode(), "not JSON: nested too deeply (and not an object)"),
        (b'{"a": ' + nested(DEEP).encode(), "not JSON: the text ends before the message's object closes"),
    ],
)
def test_a_deep_message_that_is_not_a_story_is_a_dead_letter(value, reason):
    parsed, letter = parse_record(record(value, key=b"x"))
    assert parsed is None and letter is not None and letter["reason"].startswith(reason)


def test_a_later_stage_failure_quoting_a_huge_value_is_bounded():
    story = raw_story(6)
    letter = failed_story(story, "clean", ValueError("bad value " + "v" * 100_000))
    assert size(letter["reason"]) <= MAX_REASON_BYTES
    assert letter["reason"].startswith("clean failed: ValueError('bad value vvv")


def test_connector_dead_letters_are_bounded_too():
    letter = DeadLetter("wire", "https://wire.example/feed", "r" * 5000 + " end", b"payload")
    message = letter.to_message()
    assert size(message["reason"]) <= MAX_REASON_BYTES and message["reason"].startswith("rrr")
    assert message["reason"].endswith(f"[{5004 - (MAX_REASON_BYTES - 48)} more characters cut]")

    # A JSON Feed item whose title is far over the contract's limit: one dead letter, bounded.
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "W",
        "items": [{"id": "1", "url": "https://wire.example/1", "title": "t" * 100_000, "content_text": "b"}],
    }
    parsed = parse_document(
        json.dumps(document).encode(),
        source="wire",
        origin="https://wire.example/feed.json",
        fetched_at="2022-07-29T12:00:00.000000Z",
    )
    letters = [item.dead_letter for item in parsed.items if item.dead_letter is not None]
    assert len(letters) == 1 and "headline" in letters[0].reason
    assert size(letters[0].reason) <= MAX_REASON_BYTES


@pytest.mark.parametrize("limit", [64, 100, 1024])
def test_bound_reason_cuts_on_a_character_and_counts_what_it_cut(limit):
    reason = "ж" * 3000  # two bytes each
    bounded = bound_reason(reason, limit)
    assert size(bounded) <= limit
    kept = bounded.split("…")[0]
    assert set(kept) == {"ж"} and bounded.endswith(f"[{3000 - len(kept)} more characters cut]")
    assert bound_reason("short", limit) == "short"


@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_connectors_read_a_raw_message_with_an_unknown_field_nested_50k_deep(suffix, caplog):
    story = raw_story(7)
    text = json.dumps(story)[:-1] + f', "extra": {nested(DEEP)}}}'
    parsed = parse_document(
        text.encode(),
        source="files",
        origin=f"drop{suffix}",
        fetched_at=story["fetched_at"],
        suffix=suffix,
        allow_text=True,  # as the files connector reads
    )
    assert parsed.error is None
    [item] = parsed.items
    assert item.dead_letter is None and item.story is not None
    assert item.story["headline"] == story["headline"] and "extra" not in item.story
    note = "left out unknown field(s) nested deeper than 256 levels: extra"
    assert note in caplog.text or note in parsed.warnings
