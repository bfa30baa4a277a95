"""Feeds over real local HTTP into the real broker: restarts, reordering, hostile feeds, SSRF, articles."""

from __future__ import annotations

import gzip
import json
import logging
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
from connectors.feedstate import FeedStore
from connectors.fetch import Limits
from connectors.publisher import Publisher
from wirestream.config import Config
from wirestream.localhttp import serve_folder, serve_handler

CORPUS = Path(__file__).resolve().parent.parent / "cases" / "connectors" / "hostile"
LOCAL = Limits(allow_private=True, connect_timeout_s=2, read_timeout_s=2, deadline_s=3, max_bytes=256 * 1024)
SETTINGS = FeedSettings(limits=LOCAL, jitter=0, workers=4)


def read_topic(config: Config, topic: str, timeout_s: float = 30) -> list:
    """Every record of ``topic`` from the beginning to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=config.bootstrap_servers, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
            partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"topic {topic} has no partitions"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the topic to its end in time"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def rss(items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><title>Story {guid}</title><link>https://wire.example/{guid}</link><guid>https://wire.example/{guid}</guid>"
        f"<pubDate>{date}</pubDate><description>Body of story {guid}.</description></item>"
        for guid, date in items
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>W</title><link>https://wire.example/</link><description>d</description>{body}</channel></rss>'


def test_restart_republishes_nothing_and_reordered_redated_entries_are_not_new(kafka_config, tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    dates = "Fri, 29 Jul 2022 21:47:00 +0400"
    for feed in "abc":
        (folder / f"{feed}.rss").write_text(rss([(f"{feed}{i}", dates) for i in range(5)]))
    with serve_folder(folder, gzip=True) as base, Publisher(kafka_config) as publisher:
        specs = [FeedSpec(url=f"{base}/{feed}.rss", name=f"wire/{feed}") for feed in "abc"]
        with FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as connector:
            first = connector.run_once()
        assert (first.published, first.failed) == (15, 0)

        with FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as restarted:
            again = restarted.run_once()
            assert (again.published, again.skipped) == (0, 0)  # every feed answered 304
            assert restarted.store.get("wire/a").not_modified == 1

        # Feed a reorders its entries, re-dates them all and adds one.
        redated = "Sat, 30 Jul 2022 08:00:00 GMT"
        (folder / "a.rss").write_text(
            rss([("a-new", redated)] + [(f"a{i}", redated) for i in reversed(range(5))])
        )
        with FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as connector:
            changed = connector.run_once()
        assert (changed.published, changed.skipped) == (1, 5)

    records = read_topic(kafka_config, kafka_config.raw_topic)
    keys = [r.key for r in records]
    assert len(keys) == 16 == len(set(keys))
    story = json.loads(records[0].value)
    assert story["encoding"] == {"declared": "utf-8", "detected": "utf-8"}
    assert dict(records[0].headers)["schema"] == b"wirestream.raw_story.v1"


def _hostile_server(request) -> None:
    path = request.path
    if path == "/huge":
        body = b"<rss>" + b"x" * (LOCAL.max_bytes + 10)
        headers = {}
    elif path == "/gzip-bomb":
        body = gzip.compress(b"\0" * (20 * 1024 * 1024), 9)
        headers = {"Content-Encoding": "gzip"}
    elif path == "/redirect-loop":
        request.send_response(302)
        request.send_header("Location", "/redirect-loop")
        request.send_header("Content-Length", "0")
        request.end_headers()
        return
    elif path == "/slow":
        request.send_response(200)
        request.end_headers()
        for _ in range(60):
            request.wfile.write(b" ")
            request.wfile.flush()
            time.sleep(0.1)
        return
    else:
        request.send_response(404)
        request.send_header("Content-Length", "0")
        request.end_headers()
        return
    request.send_response(200)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def test_every_hostile_feed_ends_as_a_dead_letter_or_a_logged_counted_failure(kafka_config, caplog):
    import yaml

    expected = yaml.safe_load((CORPUS / "expected.yaml").read_text("utf-8"))
    documents = sorted(name for name, want in expected.items() if want.get("mode", "feed") == "feed")
    caplog.set_level(logging.WARNING)
    with serve_folder(CORPUS) as base, serve_handler(_hostile_server) as hostile:
        specs = [FeedSpec(url=f"{base}/{name}", name=f"hostile/{name}") for name in documents]
        specs += [
            FeedSpec(url=f"{hostile}/{p}", name=f"hostile{p}")
            for p in ("/huge", "/gzip-bomb", "/redirect-loop", "/slow", "/missing")
        ]
        with (
            Publisher(kafka_config) as publisher,
            FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as connector,
        ):
            started = time.monotonic()
            report = connector.run_once()
            assert time.monotonic() - started < 60, "hostile feeds must not stall the pass"
            records = {spec.name: connector.store.get(spec.name) for spec in specs}
            metrics = connector.metrics.registry
            # A second pass over the same broken documents sends no second dead letter.
            again = connector.run_once()
            assert again.dead_lettered == 0
    letters = [json.loads(r.value) for r in read_topic(kafka_config, kafka_config.dlq_topic)]
    by_source: dict[str, list[str]] = {}
    for letter in letters:
        by_source.setdefault(letter["source"], []).append(letter["reason"])
    handled = 0
    for spec in specs:
        record = records[spec.name]
        name = spec.name.split("/", 1)[-1]
        want = expected.get(name, {})
        if "refused" in want:
            assert any(want["refused"] in reason for reason in by_source[spec.name]), spec.name
            assert record.consecutive_failures == 1 and record.last_error_kind == "invalid_document"
        elif name in expected:
            assert record.consecutive_failures == 0 and len(by_source.get(spec.name, [])) == len(
                want.get("dead_letters", [])
            )
        else:  # a fetch-level failure: no dead letter, a logged error, a counted kind
            assert record.consecutive_failures == 1 and record.last_error_kind, spec.name
            assert any(spec.name in m and "failed" in m for m in caplog.messages), spec.name
            kind = record.last_error_kind
            # counted once per pass (two passes ran)
            assert (
                metrics.get_sample_value("wirestream_feed_errors_total", {"feed": spec.name, "kind": kind})
                == 2
            )
        handled += 1
    assert handled == len(specs) == len(documents) + 5
    kinds = {
        records[f"hostile{p}"].last_error_kind
        for p in ("/huge", "/gzip-bomb", "/redirect-loop", "/slow", "/missing")
    }
    assert kinds == {"too_large", "too_many_redirects", "timeout", "http_4xx"}
    assert report.published == sum(expected[n].get("stories", 0) for n in documents)


def test_private_addresses_are_refused_without_the_allowance(kafka_config, tmp_path, caplog):
    (tmp_path / "feed.rss").write_text(rss([("x1", "Fri, 29 Jul 2022 21:47:00 +0400")]))
    hits: list[str] = []
    caplog.set_level(logging.ERROR)
    with (
        serve_handler(lambda r: (hits.append(r.path), r.send_error(500))) as base,
        Publisher(kafka_config) as publisher,
    ):
        settings = FeedSettings(limits=Limits(allow_private=False), jitter=0)
        spec = FeedSpec(url=f"{base}/feed.rss", name="private")
        with FeedConnector(publisher, kafka_config.state_dir, [spec], settings) as connector:
            report = connector.run_once()
            record = connector.store.get("private")
    assert report.failed == 1 and hits == []
    assert record.last_error_kind == "refused_address" and "--allow-private-networks" in record.last_error
    assert any("refused_address" in m for m in caplog.messages)


def test_full_articles_are_fetched_for_summary_only_feeds(kafka_config, tmp_path):
    state = {"flaky": 0}

    def respond(request):
        path = request.path
        if path == "/feed.rss":
            items = "".join(
                f"<item><title>Story {n}</title><link>http://{request.headers['Host']}/article/{n}</link>"
                f"<guid>urn:story:{n}</guid><description>Only a teaser {n}.</description></item>"
                for n in ("ok", "gone", "flaky")
            )
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://x/</link><description>d</description>{items}</channel></rss>'.encode()
        elif path == "/article/ok":
            body = "<html><head><meta charset='windows-1251'></head><body><p>Полный текст статьи.</p></body></html>".encode(
                "cp1251"
            )
        elif path == "/article/flaky" and state["flaky"] > 0:
            body = b"<html><body><p>Now it works.</p></body></html>"
        else:
            state["flaky"] += path == "/article/flaky"
            request.send_response(404 if path == "/article/gone" else 503)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        request.send_response(200)
        request.send_header("Content-Type", "text/html" if "article" in path else "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    with serve_handler(respond) as base, Publisher(kafka_config) as publisher:
        spec = FeedSpec(url=f"{base}/feed.rss", name="teasers", fetch_article=True)
        with FeedConnector(publisher, kafka_config.state_dir, [spec], SETTINGS) as connector:
            first = connector.run_once()
            assert (first.published, first.dead_lettered) == (1, 1)  # the 503 article waits for the next poll
            assert connector.store.get("teasers").etag is None
            second = connector.run_once()
            assert (second.published, second.dead_lettered) == (1, 0)
            assert (second.skipped, second.skipped_dead_letters) == (1, 1)  # ok was published, gone refused
    stories = {
        json.loads(r.value)["uri"]: json.loads(r.value)
        for r in read_topic(kafka_config, kafka_config.raw_topic)
    }
    ok = stories["urn:story:ok"]
    assert ok["body_format"] == "text/html" and "Полный текст статьи." in ok["body"]
    assert ok["summary"] == "Only a teaser ok." and ok["encoding"] == {
        "declared": "windows-1251",
        "detected": "windows-1251",
    }
    assert "Now it works." in stories["urn:story:flaky"]["body"]
    [letter] = [json.loads(r.value) for r in read_topic(kafka_config, kafka_config.dlq_topic)]
    assert "HTTP 404" in letter["reason"] and letter["origin"].endswith("/article/gone")


def test_feed_state_never_runs_ahead_of_kafka(kafka_config, tmp_path):
    """Whatever a poll recorded as published is on the topic (the invariant a SIGTERM relies on)."""
    folder = tmp_path / "feeds"
    folder.mkdir()
    for feed in range(20):
        (folder / f"{feed}.rss").write_text(
            rss([(f"{feed}-{i}", "Fri, 29 Jul 2022 21:47:00 +0400") for i in range(20)])
        )
    with serve_folder(folder) as base, Publisher(kafka_config) as publisher:
        specs = [FeedSpec(url=f"{base}/{feed}.rss", name=f"f{feed}") for feed in range(20)]
        with FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as connector:
            import threading

            stop = threading.Event()
            polls = {"n": 0}
            original = connector.poll

            def poll_then_maybe_stop(spec):  # stop the scheduler part-way, as SIGTERM would
                result = original(spec)
                polls["n"] += 1
                if polls["n"] == 7:
                    stop.set()
                return result

            connector.poll = poll_then_maybe_stop  # type: ignore[method-assign]
            connector.run(stop)
    store = FeedStore(kafka_config.state_dir)
    recorded = sum(record.seen for record in store.records())
    store.close()
    on_kafka = {r.key.decode() for r in read_topic(kafka_config, kafka_config.raw_topic)}
    assert 0 < recorded <= len(on_kafka) < 400
    # The next run publishes exactly what the first left.
    with serve_folder(folder) as base, Publisher(kafka_config) as publisher:
        specs = [FeedSpec(url=f"{base}/{feed}.rss", name=f"f{feed}") for feed in range(20)]
        with FeedConnector(publisher, kafka_config.state_dir, specs, SETTINGS) as connector:
            rest = connector.run_once()
    assert rest.published == 400 - recorded
    assert len({r.key for r in read_topic(kafka_config, kafka_config.raw_topic)}) == 400


@pytest.mark.parametrize("workers", [1])
def test_parsing_in_worker_processes_gives_the_same_stories(kafka_config, tmp_path, workers):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "w.rss").write_text(rss([(f"w{i}", "Fri, 29 Jul 2022 21:47:00 +0400") for i in range(10)]))
    settings = FeedSettings(limits=LOCAL, jitter=0, parse_workers=workers)
    with (
        serve_folder(folder) as base,
        Publisher(kafka_config) as publisher,
        FeedConnector(
            publisher, kafka_config.state_dir, [FeedSpec(url=f"{base}/w.rss", name="w")], settings
        ) as connector,
    ):
        assert connector.run_once().published == 10
