import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import CLEAN_SCHEMA, DEAD_LETTER_SCHEMA, RAW_SCHEMA_VERSION, raw_schema, story_id, validate_raw


def message(**overrides):
    base = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": story_id("turan", "guid-1"),
        "source": "turan",
        "uri": "guid-1",
        "headline": "Antony Blinken and Sergey Lavrov",
        "body": "U.S. Secretary of State Antony Blinken on Friday spoke with Russia's Sergey Lavrov.",
        "body_format": "text/plain",
        "fetched_at": "2022-07-29T18:00:00.000000Z",
    }
    base.update(overrides)
    return base


def test_valid_message_has_no_problems():
    assert validate_raw(message()) == []


def test_every_problem_is_reported_at_once():
    bad = message(body_format="application/pdf", fetched_at="yesterday", firstcreated="2022-07-29")
    del bad["source"]
    problems = validate_raw(bad)
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "'source' is a required property" in text
    assert "body_format" in text and "fetched_at" in text and "firstcreated" in text


def test_story_without_headline_and_body_is_invalid():
    assert any("neither headline nor body" in p for p in validate_raw(message(headline="", body="")))


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_non_objects_are_rejected_with_a_reason(value):
    assert validate_raw(value)[0].startswith("message must be a JSON object")


def test_story_id_is_stable_and_source_scoped():
    assert story_id("turan", "x") == story_id("turan", "x")
    assert story_id("turan", "x") != story_id("apa", "x")
    assert len(story_id("turan", "x")) == 32


def test_an_older_reader_accepts_newer_messages_with_extra_fields():
    newer = message(sentiment=0.3, entities=[{"name": "Lavrov"}])
    assert validate_raw(newer) == []
    assert raw_schema().get("additionalProperties", True) is not False


def test_schema_versions_are_declared():
    assert raw_schema()["properties"]["schema_version"] == {"const": RAW_SCHEMA_VERSION}
    assert CLEAN_SCHEMA.metadata[b"wirestream.schema_version"] == b"1"


def _plain(t: pa.DataType) -> bool:
    if pa.types.is_list(t):
        return _plain(t.value_type)
    if pa.types.is_struct(t):
        return all(_plain(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_timestamp(t):
        return t.unit == "us" and t.tz == "UTC"
    return pa.types.is_string(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_binary(t)


@pytest.mark.parametrize("schema", [CLEAN_SCHEMA, DEAD_LETTER_SCHEMA], ids=["clean", "dead_letter"])
def test_parquet_types_are_plain(schema):
    for field in schema:
        assert _plain(field.type), f"{field.name}: {field.type}"


def test_clean_schema_round_trips_through_parquet(tmp_path):
    row = {name: None for name in CLEAN_SCHEMA.names}
    row.update(
        id="a" * 32,
        source="turan",
        topics=[{"topic": "detainees", "label": "D", "iptc": None, "score": 2.0, "evidence": []}],
    )
    pq.write_table(pa.Table.from_pylist([row], schema=CLEAN_SCHEMA), tmp_path / "x.parquet")
    back = pq.read_table(tmp_path / "x.parquet")
    assert back.schema.equals(CLEAN_SCHEMA, check_metadata=False)
    assert back.to_pylist()[0]["topics"][0]["topic"] == "detainees"


def test_raw_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.validators.validator_for(raw_schema()).check_schema(raw_schema())
    json.dumps(raw_schema())


def test_half_of_a_surrogate_pair_is_reported_with_field_and_position():
    # Valid JSON (an escape), but not Unicode text: no UTF-8 writer or Parquet file takes it.
    cut = json.loads('{"body": "An emoji cut in two \\ud83d", "headline": "ok \\ud83d\\ude00"}')
    problems = validate_raw(message(**cut))
    assert problems == [
        "body: lone surrogate U+D83D at character 20 is not Unicode text"
        " (half of a UTF-16 pair: the producer cut a character in two)"
    ]
    cut_category = json.loads('["World", "\\udc00"]')
    assert validate_raw(message(categories=cut_category))[0].startswith("categories: lone surrogate U+DC00")
    # Alongside schema problems, it is listed too.
    assert len(validate_raw(message(body_format="application/pdf", **cut))) == 2


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_that_leaves_the_calendar_in_utc_is_invalid(moment):
    # Readable as written, but not in UTC, the only time the dataset keeps.
    assert any(p.startswith("firstcreated:") for p in validate_raw(message(firstcreated=moment)))
