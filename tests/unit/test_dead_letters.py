"""`wirestream.deadletters` without Kafka: messages of the dead-letter topic read back, a letter as
JSON, and the check of a file of fixed stories."""

from __future__ import annotations

import base64
import json
from collections import namedtuple
from pathlib import Path

import pytest

from connectors.publisher import DeadLetter
from tests.conftest import raw_story
from wirestream.deadletters import letter_from_message, read_fixed
from wirestream.errors import UserError

Record = namedtuple("Record", "topic partition offset timestamp value")


def test_a_connector_dead_letter_reads_back_with_its_reason_payload_and_completed_story():
    letter = DeadLetter(
        "drop", "/in/drop.jsonl:2", "(message): story has neither headline nor body", b'{"uri":"u"}'
    )
    record = Record("news.dlq.v1", 1, 7, 1_765_000_000_000, json.dumps(letter.to_message()).encode())
    read = letter_from_message(record)
    assert (read.source, read.stage, read.story_source, read.origin) == (
        "connectors",
        "connector",
        "drop",
        "/in/drop.jsonl:2",
    )
    assert read.reason == letter.reason and read.payload == b'{"uri":"u"}'
    entry = read.as_dict()
    assert entry["kafka"] == {"topic": "news.dlq.v1", "partition": 1, "offset": 7}
    assert entry["at"] == "2025-12-06T05:46:40Z"
    # The draft is the message as the connector judged it: id and source filled in.
    assert entry["story"]["source"] == "drop" and len(entry["story"]["id"]) == 32
    assert entry["story"]["fetched_at"] == entry["at"]
    assert "drop /in/drop.jsonl:2: (message): story has neither" in read.line()


def test_a_message_another_producer_wrote_is_listed_not_dropped():
    read = letter_from_message(Record("news.dlq.v1", 0, 3, 1_765_000_000_000, b"\xff\xfe not ours"))
    assert read.reason == "not a wirestream dead letter (unreadable message)"
    entry = read.as_dict()
    assert base64.b64decode(entry["payload_b64"]) == b"\xff\xfe not ours" and "payload" not in entry


def test_fixed_stories_are_checked_against_the_raw_contract_before_any_is_sent(tmp_path: Path):
    good = raw_story(1)
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(json.dumps(good) + "\n\n" + json.dumps(raw_story(2)) + "\n")
    assert [s["id"] for s in read_fixed(fixed)] == [good["id"], raw_story(2)["id"]]

    fixed.write_text(json.dumps(good) + "\n" + json.dumps({**good, "language": "English"}) + "\n[1]\n")
    with pytest.raises(UserError) as refused:
        read_fixed(fixed)
    message = str(refused.value)
    assert message.startswith(f"--from {fixed}: nothing sent; line 2: language: 'English' does not match")
    assert "| line 3: message must be a JSON object, got list" in message

    fixed.write_bytes(b"\xff\n")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        read_fixed(fixed)
    fixed.write_text("\n")
    with pytest.raises(UserError, match="holds no stories"):
        read_fixed(fixed)
