"""`wirestream dead-letters`: a connector's dead letter (Kafka) and the pipeline's (the table) listed
with their reasons, and a fixed story republished to the raw topic reaching the table."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from kafka import KafkaProducer

from schemas import story_id
from tests.conftest import env_for, table_rows, wirestream


def listed(*args: str, env: dict[str, str]) -> list[dict]:
    result = wirestream("dead-letters", "--json", *args, env=env)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_dead_letters_listed_with_reasons_and_a_fixed_story_republished(kafka_config, tmp_path):
    env = env_for(kafka_config)
    drop = tmp_path / "drop.jsonl"
    good = {"uri": "good-1", "headline": "Grain deal extended", "body": "Ministers agreed on Friday."}
    empty = {"uri": "fix-me", "headline": "", "body": ""}
    drop.write_text(json.dumps(good) + "\n" + json.dumps(empty) + "\n")
    connected = wirestream("connect", "files", str(drop), "--source", "drop", env=env)
    assert "published 1, dead-lettered 1" in connected.stdout
    producer = KafkaProducer(bootstrap_servers=kafka_config.bootstrap_servers, acks="all")
    producer.send(kafka_config.raw_topic, value=b"{not json", partition=0).get(30)
    producer.close()
    out = str(tmp_path / "dataset")
    assert "dead letters 1" in wirestream("run", "--output", out, env=env).stdout

    text = wirestream("dead-letters", "--output", out, env=env).stdout.splitlines()
    assert text[-1] == "2 dead letter(s): 1 from the connectors, 1 from the pipeline"
    [connector_line] = [line for line in text if "  connectors  " in line]
    assert f"drop {drop}:2: (message): story has neither headline nor body" in connector_line
    [pipeline_line] = [line for line in text if "  pipeline  " in line]
    assert f"{kafka_config.raw_topic}/0@0: not JSON" in pipeline_line

    letters = listed("--output", out, env=env)
    assert [x["source"] for x in letters] == ["connectors", "pipeline"]  # oldest first
    connector, pipeline = letters
    assert connector["reason"] == "(message): story has neither headline nor body"
    assert connector["story_source"] == "drop" and connector["origin"] == f"{drop}:2"
    assert connector["kafka"]["topic"] == kafka_config.dlq_topic
    assert json.loads(connector["payload"]) == empty
    assert pipeline["stage"] == "parse" and pipeline["reason"].startswith("not JSON")
    assert pipeline["payload"] == "{not json" and "story" not in pipeline
    assert pipeline["kafka"] == {"topic": kafka_config.raw_topic, "partition": 0, "offset": 0}

    assert [x["source"] for x in listed("--source", "connectors", env=env)] == ["connectors"]
    assert [x["source"] for x in listed("--source", "pipeline", "--output", out, env=env)] == ["pipeline"]
    # --since: connector letters by the time Kafka appended them, pipeline ones by their commit.
    after_connector = datetime.fromisoformat(connector["at"]) + timedelta(milliseconds=1)
    since = listed("--output", out, "--since", after_connector.isoformat(), env=env)
    assert [x["source"] for x in since] == ["pipeline"]
    after_all = datetime.fromisoformat(pipeline["at"]) + timedelta(seconds=1)
    assert listed("--output", out, "--since", after_all.isoformat(), env=env) == []

    # A fix that still breaks the contract is refused whole: one line, nothing sent.
    draft = connector["story"]
    assert draft["id"] == story_id("drop", "fix-me") and draft["source"] == "drop"
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(draft) + "\n")
    refused = wirestream("dead-letters", "republish", "--from", str(broken), env=env, check=False)
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        refused.stderr
        == f"error: --from {broken}: nothing sent; line 1: (message): story has neither headline nor body\n"
    )
    assert "nothing new" in wirestream("run", "--output", out, env=env).stdout

    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(
        json.dumps({**draft, "headline": "Fixed headline", "body": "The body, restored."}) + "\n"
    )
    sent = wirestream("dead-letters", "republish", "--from", str(fixed), env=env)
    assert sent.stdout == f"republished 1 of 1 story(ies) to {kafka_config.raw_topic}\n"
    assert "batch 2 committed" in wirestream("run", "--output", out, env=env).stdout
    rows = {row["id"]: row for row in table_rows(out)}
    assert rows[draft["id"]]["headline"] == "Fixed headline" and rows[draft["id"]]["source"] == "drop"
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "pipeline"], "no output folder"),
        (["--source", "pipeline", "--output", "{tmp}/missing"], "does not exist"),
        (["republish", "--from", "{tmp}/missing.jsonl"], "no such file"),
        (["republish", "--from", "{tmp}/not-json.jsonl"], "line 1: not JSON"),
    ],
    ids=["pipeline-without-output", "missing-dataset", "missing-fix-file", "fix-not-json"],
)
def test_dead_letters_mistakes_end_in_one_line(tmp_path, args, message):
    (tmp_path / "not-json.jsonl").write_text("{oops\n")
    before = sorted(tmp_path.rglob("*"))
    env = {"WIRESTREAM_OUTPUT": "", "WIRESTREAM_STATE_DIR": str(tmp_path / "state")}
    result = wirestream("dead-letters", *[a.format(tmp=tmp_path) for a in args], env=env, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert sorted(tmp_path.rglob("*")) == before
