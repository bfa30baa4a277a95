"""Hostile raw messages through every per-story stage: each ends as a dead letter at parse or as a
written row, never as an exception that would fail its batch (and, in continuous mode, every retry
of that batch). Messages are valid JSON built from seeded random text: control characters, lone
and paired surrogate escapes, astral characters, markup fragments, huge and empty fields, and
timestamps at the edges of the calendar."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.clean import clean_story
from pipeline.dedup import sign_rows, summarise
from pipeline.parse import parse_record
from pipeline.tagging import load_taxonomy, tag_row
from pipeline.write import partition_of, shard_of, write_rows
from schemas import CLEAN_SCHEMA, story_id

TIMES = [
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2022-07-29T18:00:00Z",
    "2022-02-30T00:00:00Z",
    "2022-07-29T18:00:00.123456789Z",
    "2022-07-29T18:00:00+23:59",
    "2022-07-29",
]
FIXED = [
    "",
    " ",
    "\x00\x01\x7f\x9f",
    "<html><body><p>x</p></body></html>",
    "<p>" * 2000,
    "&amp;" * 50,
    "a" * 100_000,
    "\u0130stanbul \u0131",
    "\U0001f4a5" * 10,
    "\n" * 500,
    "[Lavrov[",
    "<",
    "<!doctype html><html>" + "<div>" * 1000,
    "\u01c5 \u00df \ufb01 \u212a",
    "\u2028\u2029\r\n\r",
    "\ud83d",  # half an emoji
    "\udc00 tail",
]


def _junk(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(0, 300)):
        roll = rng.random()
        if roll < 0.5:
            out.append(rng.choice(" abcXYZ.,;:!?'\"()[]{}<>&#/\\|-\n\t"))
        elif roll < 0.8:
            out.append(chr(rng.randint(0x80, 0xFFFF)))  # surrogates included
        else:
            out.append(chr(rng.randint(0x10000, 0x10FFFF)))
    return "".join(out)


def _messages(count: int, seed: int):
    rng = random.Random(seed)
    texts = FIXED + [_junk(rng) for _ in range(40)]
    for i in range(count):
        message = {
            "schema_version": 1,
            "id": story_id("hostile", str(i)),
            "source": "hostile",
            "headline": rng.choice(texts) or "h",
            "body": rng.choice(texts) + " " + rng.choice(texts),
            "body_format": rng.choice(["text/plain", "text/html"]),
            "fetched_at": rng.choice(TIMES),
        }
        for name in ("firstcreated", "versioncreated", "summary", "byline"):
            if rng.random() < 0.4:
                message[name] = rng.choice(TIMES if name.endswith("created") else texts)
        if rng.random() < 0.3:
            message["categories"] = [rng.choice(texts)]
        yield {
            "value": json.dumps(message).encode(),  # escapes surrogates: valid JSON, as a producer may send
            "key": message["id"].encode(),
            "topic": "t",
            "partition": 0,
            "offset": i,
            "timestamp_ms": rng.choice([0, -1, 1659117600000, 253402300799999]),
        }


@pytest.mark.parametrize("seed", [1, 2])
def test_every_hostile_message_is_a_dead_letter_or_a_written_row(seed, tmp_path: Path):
    taxonomy = load_taxonomy(None)
    rows, letters = [], []
    for record in _messages(300, seed):
        story, letter = parse_record(record)
        if story is None:
            letters.append(letter)
            continue
        [row] = sign_rows([clean_story(story, "test")])
        summarise(row)
        row = tag_row(row, taxonomy)
        partition_of(row)
        shard_of(row["id"], 3)
        rows.append(row)
    assert rows and letters, "the mix holds both valid and invalid messages"
    assert len(rows) + len(letters) == 300
    reasons = " ".join(letter["reason"] for letter in letters)
    assert "lone surrogate" in reasons and "date-time" in reasons
    write_rows(tmp_path / "rows.parquet", rows, CLEAN_SCHEMA, "id")
    assert pq.read_table(tmp_path / "rows.parquet").num_rows == len(rows)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply"),  # was a RecursionError
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "validate"),  # the deep unknown field left out: {}
        (b"\xff\xfe{", "not JSON: "),
        (b'{"id": "x",', "not JSON: "),
        (b"[NaN]", "validate"),  # the standard parser reads NaN; the schema then refuses a list
    ],
)
def test_a_record_that_is_not_a_json_story_is_a_dead_letter_with_its_reason(value, reason):
    story, letter = parse_record({"topic": "t", "partition": 0, "offset": 7, "key": b"x", "value": value})
    assert story is None
    assert (letter["reason"] if reason != "validate" else letter["stage"]).startswith(reason)
    assert letter["kafka_offset"] == 7 and letter["payload"] == value


def _dofns(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_dofns(sub))]


def test_every_dofn_process_passes_beams_yield_and_return_check(caplog):
    # Beam warns at each ParDo whose process both yields and returns (its outputs may be lost
    # silently), or returns nothing: a run's log would repeat the warning on every batch.
    import types

    import apache_beam as beam
    from apache_beam.transforms.core import _check_fn_use_yield_and_return

    import pipeline.run  # noqa: F401  (imports every stage)

    ours = [
        c
        for c in _dofns(beam.DoFn)
        if c.__module__.split(".")[0] in {"pipeline", "connectors"} and "process" in vars(c)
    ]
    assert len(ours) >= 6  # the reader, prepare, dedup and write DoFns
    flagged = []
    for cls in ours:
        caplog.clear()
        with caplog.at_level("WARNING", logger="apache_beam.transforms.core"):
            mixed = _check_fn_use_yield_and_return(types.MethodType(cls.process, cls.__new__(cls)))
        if mixed or caplog.records:
            flagged.append(cls.__qualname__)
    assert flagged == []
