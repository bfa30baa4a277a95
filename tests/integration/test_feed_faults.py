"""Feed faults against real local HTTP servers and the real broker: slow hosts, dripping servers."""

from __future__ import annotations

import contextlib
import time

import pytest

from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
from connectors.fetch import Fetcher, FetchError, Limits
from connectors.publisher import Publisher
from tests.integration.test_connector_feeds import read_topic, rss
from wirestream.localhttp import serve_handler

DEADLINE_S = 3.0
LIMITS = Limits(allow_private=True, connect_timeout_s=2, read_timeout_s=2, deadline_s=DEADLINE_S, per_host=2)
DATE = "Fri, 29 Jul 2022 21:47:00 +0400"


def drip(request, data: bytes, every_s: float = 0.5) -> None:
    """Write ``data`` one byte at a time: each byte arrives well within the read timeout."""
    with contextlib.suppress(OSError):  # the client hung up at its deadline
        for byte in data:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(every_s)


def feed_host(request) -> None:
    """/status-drip and /header-drip answer a byte every half second; /good/N answer at once."""
    if request.path == "/status-drip":
        drip(request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    elif request.path == "/header-drip":
        request.wfile.write(b"HTTP/1.1 200 OK\r\n")
        drip(request, b"X-Padding: " + b"x" * 40 + b"\r\n\r\n")
    else:
        body = rss([(request.path.strip("/").replace("/", "-") + f"-{i}", DATE) for i in range(3)]).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


@pytest.mark.parametrize("path", ["/status-drip", "/header-drip"])
def test_a_server_dripping_its_status_line_or_headers_is_cut_at_the_deadline(path):
    with serve_handler(feed_host) as base:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            Fetcher(LIMITS).get(f"{base}{path}")
        took = time.monotonic() - started
    assert caught.value.kind == "timeout"
    assert str(caught.value) == f"fetch took longer than its {DEADLINE_S:g}s deadline"
    assert DEADLINE_S - 0.1 <= took < DEADLINE_S + 1.0


def test_a_slow_host_neither_starves_another_host_nor_fails_its_own_good_feeds(kafka_config):
    settings = FeedSettings(limits=LIMITS, jitter=0, workers=4)
    with serve_handler(feed_host) as slow_host, serve_handler(feed_host) as other_host:
        slow = [
            FeedSpec(url=f"{slow_host}/status-drip", name="slow/status"),
            FeedSpec(url=f"{slow_host}/header-drip", name="slow/headers"),
        ]
        # Listed after the slow ones, so they wait for the host's two slots while the slow feeds hold them.
        siblings = [FeedSpec(url=f"{slow_host}/good/{i}", name=f"slow-host/good{i}") for i in range(4)]
        others = [FeedSpec(url=f"{other_host}/other/{i}", name=f"other-host/good{i}") for i in range(3)]
        with (
            Publisher(kafka_config) as publisher,
            FeedConnector(publisher, kafka_config.state_dir, slow + siblings + others, settings) as connector,
        ):
            started = time.monotonic()
            reports = {report.feed: report for report in connector.poll_all()}
            took = time.monotonic() - started
            records = {spec.name: connector.store.get(spec.name) for spec in slow + siblings + others}

    for spec in slow:
        assert reports[spec.name].status == "failed"
        assert reports[spec.name].error == f"fetch took longer than its {DEADLINE_S:g}s deadline"
        assert records[spec.name].last_error_kind == "timeout"
    for spec in siblings + others:
        assert reports[spec.name].status == "ok", reports[spec.name].error
        assert (reports[spec.name].report.published, records[spec.name].consecutive_failures) == (3, 0)
    # The slow feeds end at the deadline; the good ones on their host follow at once.
    assert took < DEADLINE_S + 2.0
    published = read_topic(kafka_config, kafka_config.raw_topic)
    assert len(published) == 3 * len(siblings + others) == len({r.key for r in published})


def test_the_other_host_is_served_while_the_slow_host_holds_its_slots(kafka_config):
    """Workers never queue for a busy host: with every slow-host feed waiting, the other host's
    feeds are fetched during the slow fetches, not after them."""
    settings = FeedSettings(limits=LIMITS, jitter=0, workers=3)
    finished: dict[str, float] = {}

    def timed(request) -> None:
        feed_host(request)
        finished[request.path] = time.monotonic()

    with serve_handler(timed) as slow_host, serve_handler(timed) as other_host:
        specs = [
            FeedSpec(url=f"{slow_host}/status-drip", name="slow/status"),
            FeedSpec(url=f"{slow_host}/header-drip", name="slow/headers"),
        ]
        specs += [FeedSpec(url=f"{slow_host}/good/{i}", name=f"slow-host/{i}") for i in range(3)]
        specs += [FeedSpec(url=f"{other_host}/other/{i}", name=f"other/{i}") for i in range(3)]
        with (
            Publisher(kafka_config) as publisher,
            FeedConnector(publisher, kafka_config.state_dir, specs, settings) as connector,
        ):
            started = time.monotonic()
            reports = connector.poll_all()
    statuses = {report.feed: report.status for report in reports}
    assert [statuses[f"other/{i}"] for i in range(3)] == ["ok"] * 3
    assert [statuses[f"slow-host/{i}"] for i in range(3)] == ["ok"] * 3
    # Three workers, two held by the slow feeds: the third serves the other host meanwhile.
    assert max(finished[f"/other/{i}"] for i in range(3)) - started < DEADLINE_S - 0.5


def test_continuous_polling_keeps_other_hosts_on_schedule_beside_a_slow_host(kafka_config):
    import threading

    settings = FeedSettings(limits=LIMITS, jitter=0, workers=3, interval_s=1.0)
    with serve_handler(feed_host) as slow_host, serve_handler(feed_host) as other_host:
        specs = [FeedSpec(url=f"{slow_host}/status-drip", name=f"slow/{i}") for i in range(4)]
        specs += [FeedSpec(url=f"{other_host}/other/0", name="other/0")]
        with (
            Publisher(kafka_config) as publisher,
            FeedConnector(publisher, kafka_config.state_dir, specs, settings) as connector,
        ):
            stop = threading.Event()
            runner = threading.Thread(target=connector.run, args=(stop,))
            runner.start()
            try:
                deadline = time.monotonic() + DEADLINE_S + 1.5
                while time.monotonic() < deadline and connector.store.get("other/0").fetches < 3:
                    time.sleep(0.1)
                other = connector.store.get("other/0")
            finally:
                stop.set()
                runner.join(timeout=30)
    # Polled every second while four slow feeds on one host take turns at its two slots.
    assert other.fetches >= 3 and other.consecutive_failures == 0
