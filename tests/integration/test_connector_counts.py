"""`connect feeds --once`: its exit status, per-feed summary and counts; seen-state per topic."""

from __future__ import annotations

import json

from tests.conftest import env_for, wirestream
from tests.integration.test_connector_feeds import read_topic, rss
from wirestream.localhttp import serve_folder

DATE = "Fri, 29 Jul 2022 21:47:00 +0400"


def feeds_folder(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "good.rss").write_text(rss([(f"good{i}", DATE) for i in range(3)]))
    (folder / "broken.rss").write_text("this is not a feed at all")
    return folder


def feed_line(line: str) -> tuple[str, str]:
    name, rest = line.split(maxsplit=1)
    return name, rest


def once(env: dict[str, str], *urls: str):
    return wirestream("connect", "feeds", "--once", "--allow-private-networks", *urls, env=env, check=False)


def test_once_exits_non_zero_with_a_line_per_feed_when_any_feed_failed(kafka_config, tmp_path):
    env = env_for(kafka_config)
    with serve_folder(feeds_folder(tmp_path)) as base:
        urls = [f"{base}/good.rss", f"{base}/broken.rss", f"{base}/missing.rss"]
        first = once(env, *urls)
        again = once(env, *urls)

    assert first.returncode == 1, first.stderr
    lines = first.stdout.splitlines()
    assert feed_line(lines[0]) == (
        "127.0.0.1/good.rss",
        "ok: published 3, dead-lettered 0, already published 0, already dead-lettered 0",
    )
    assert feed_line(lines[1]) == (
        "127.0.0.1/broken.rss",
        "failed (invalid_document): neither XML nor JSON: not a feed; dead-lettered 1",
    )
    assert feed_line(lines[2]) == ("127.0.0.1/missing.rss", "failed (http_4xx): HTTP 404 Not Found")
    assert lines[3] == (
        "3 feed(s): 1 ok, 0 unchanged, 2 failed; published 3, dead-lettered 1, "
        "already published 0, already dead-lettered 0"
    )
    error = first.stderr.strip().splitlines()[-1]
    assert error == (
        "error: 2 of 3 feed(s) failed (127.0.0.1/broken.rss, 127.0.0.1/missing.rss); "
        "the next run retries them (see above, or `wirestream connect status`)"
    )

    # The refused document is fetched again (its validators stay stale) and counted as what it is.
    assert again.returncode == 1
    assert feed_line(again.stdout.splitlines()[0]) == ("127.0.0.1/good.rss", "unchanged (304)")
    assert again.stdout.splitlines()[-1] == (
        "3 feed(s): 0 ok, 1 unchanged, 2 failed; published 0, dead-lettered 0, "
        "already published 0, already dead-lettered 1"
    )
    assert len(read_topic(kafka_config, kafka_config.raw_topic)) == 3
    assert len(read_topic(kafka_config, kafka_config.dlq_topic)) == 1


def test_once_exits_zero_when_every_feed_is_fine(kafka_config, tmp_path):
    with serve_folder(feeds_folder(tmp_path)) as base:
        result = once(env_for(kafka_config), f"{base}/good.rss")
    assert result.returncode == 0 and "error" not in result.stderr.lower()
    assert result.stdout.splitlines()[-1].startswith("1 feed(s): 1 ok, 0 unchanged, 0 failed; published 3,")


def test_changing_the_topics_sends_every_entry_and_dead_letter_to_the_new_ones(kafka_config, tmp_path):
    env = env_for(kafka_config)
    moved_raw, moved_dlq = kafka_config.raw_topic + "-moved", kafka_config.dlq_topic + "-moved"
    moved = {**env, "WIRESTREAM_RAW_TOPIC": moved_raw, "WIRESTREAM_DLQ_TOPIC": moved_dlq}
    with serve_folder(feeds_folder(tmp_path)) as base:
        urls = [f"{base}/good.rss", f"{base}/broken.rss"]
        once(env, *urls)
        after_move = once(moved, *urls)
        # Back on the first topics: everything is there already.
        back = once(env, *urls)
        # Only the raw topic moves again: stories go there; the dead letter is already on its topic.
        raw_only = once({**env, "WIRESTREAM_RAW_TOPIC": moved_raw + "2"}, *urls)

    assert after_move.stdout.splitlines()[-1].endswith(
        "published 3, dead-lettered 1, already published 0, already dead-lettered 0"
    )
    # good.rss is fetched in full (its validators were earned on the moved topics) and found there.
    assert back.stdout.splitlines()[-1].endswith(
        "published 0, dead-lettered 0, already published 3, already dead-lettered 1"
    )
    assert raw_only.stdout.splitlines()[-1].endswith(
        "published 3, dead-lettered 0, already published 0, already dead-lettered 1"
    )
    for topic, count in (
        (kafka_config.raw_topic, 3),
        (kafka_config.dlq_topic, 1),
        (moved_raw, 3),
        (moved_dlq, 1),
        (moved_raw + "2", 3),
    ):
        assert len(read_topic(kafka_config, topic)) == count, topic
    letter = json.loads(read_topic(kafka_config, moved_dlq)[0].value)
    assert letter["reason"].startswith("neither XML nor JSON")


def test_files_are_remembered_per_topic_and_counted_by_what_they_became(kafka_config, tmp_path):
    from tests.conftest import raw_story

    drop = tmp_path / "drop.ndjson"
    drop.write_text("\n".join([json.dumps(raw_story(1)), json.dumps(raw_story(2)), "{not json"]) + "\n")
    env = env_for(kafka_config)
    moved = {**env, "WIRESTREAM_RAW_TOPIC": kafka_config.raw_topic + "-moved"}
    moved["WIRESTREAM_DLQ_TOPIC"] = kafka_config.dlq_topic + "-moved"
    first = wirestream("connect", "files", str(drop), env=env)
    again = wirestream("connect", "files", str(drop), env=env)
    after_move = wirestream("connect", "files", str(drop), env=moved)
    counts = "published {}, dead-lettered {}, already published {}, already dead-lettered {}, failed 0"
    assert first.stdout.strip() == counts.format(2, 1, 0, 0)
    assert again.stdout.strip() == counts.format(0, 0, 2, 1)
    assert after_move.stdout.strip() == counts.format(2, 1, 0, 0)
    for topic, count in (
        (kafka_config.raw_topic, 2),
        (kafka_config.dlq_topic, 1),
        (moved["WIRESTREAM_RAW_TOPIC"], 2),
        (moved["WIRESTREAM_DLQ_TOPIC"], 1),
    ):
        assert len(read_topic(kafka_config, topic)) == count, topic
