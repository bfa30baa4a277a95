"""The continuous scheduler while Kafka does not acknowledge: polls pause, the cluster is checked
with a capped backoff, a line says so at a fixed interval, and polling resumes by itself.

The broker's side is a publisher that refuses acknowledgements until a set time (the real broker
stopped and started is in tests/integration/test_connector_broker_gone.py); feeds come from a real
local HTTP server.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka.errors import KafkaTimeoutError

from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
from connectors.fetch import Limits
from wirestream.localhttp import serve_folder

DATE = "Fri, 29 Jul 2022 21:47:00 +0400"


def rss(guids: list[str]) -> str:
    items = "".join(
        f"<item><title>{g}</title><link>https://wire.example/{g}</link><guid>{g}</guid>"
        f"<pubDate>{DATE}</pubDate><description>Body {g}.</description></item>"
        for g in guids
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}</channel></rss>'


@dataclass
class Topics:
    raw_topic: str = "raw"
    dlq_topic: str = "dlq"
    bootstrap_servers: str = "127.0.0.1:1"


class Sent:
    def __init__(self, ok: bool) -> None:
        self.ok = ok


class FlakyKafka:
    """Acknowledges nothing between ``down_at`` and ``up_at`` (monotonic seconds)."""

    def __init__(self) -> None:
        self.config = Topics()
        self.down_at = float("inf")
        self.up_at = float("inf")
        self.sends: list[float] = []
        self.probes: list[float] = []
        self.acknowledged: set[str] = set()

    def _up(self) -> bool:
        now = time.monotonic()
        return not self.down_at <= now < self.up_at

    def publish(self, story: dict) -> Sent:
        self.sends.append(time.monotonic())
        ok = self._up()
        if ok:
            self.acknowledged.add(story["id"])
        return Sent(ok)

    def dead_letter(self, letter: object) -> Sent:
        return Sent(self._up())

    def wait(self, future: Sent, timeout_s: float) -> KafkaTimeoutError | None:
        return None if future.ok else KafkaTimeoutError("no acknowledgement in time")

    def reachable(self, timeout_s: float = 5.0) -> bool:
        self.probes.append(time.monotonic())
        return self._up()


def test_polls_pause_while_kafka_is_gone_and_resume_by_themselves(tmp_path, caplog):
    folder = tmp_path / "feeds"
    folder.mkdir()
    feed = folder / "wire.rss"
    feed.write_text(rss(["a1", "a2"]))
    settings = FeedSettings(
        limits=Limits(allow_private=True, deadline_s=5),
        interval_s=0.2,
        jitter=0,
        ack_timeout_s=0.1,
        kafka_probe_max_s=2.0,
        kafka_notice_s=1.0,
    )
    kafka = FlakyKafka()
    caplog.set_level(logging.DEBUG, logger="connectors.feeds")
    stop = threading.Event()
    with (
        serve_folder(folder) as base,
        FeedConnector(
            kafka, tmp_path / "state", [FeedSpec(url=f"{base}/wire.rss", name="wire")], settings
        ) as connector,  # type: ignore[arg-type]
    ):
        runner = threading.Thread(target=connector.run, args=(stop,))
        runner.start()
        try:
            deadline = time.monotonic() + 20
            while len(kafka.acknowledged) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            kafka.down_at, kafka.up_at = time.monotonic(), time.monotonic() + 5.5
            feed.write_text(rss(["a1", "a2", "b1"]))
            while len(kafka.acknowledged) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            runner.join(timeout=30)
        remembered = [record.seen for record in connector.store.records()]

    assert len(kafka.acknowledged) == 3 and time.monotonic() < deadline
    # One poll met the outage; none was made during it.
    during = [t for t in kafka.sends if kafka.down_at <= t < kafka.up_at]
    assert len(during) == 1
    # The checks back off 1 s, 2 s, 2 s (the cap) and the first after the return succeeds.
    gaps = [round(b - a, 1) for a, b in zip(kafka.probes, kafka.probes[1:], strict=False)]
    assert gaps and all(1.0 <= gap <= 2.3 for gap in gaps) and gaps == sorted(gaps)
    assert kafka.probes[-1] >= kafka.up_at and kafka.probes[-2] < kafka.up_at
    waiting = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "Kafka at" in r.getMessage()
    ]
    assert waiting[0].startswith("Kafka at 127.0.0.1:1 does not acknowledge (KafkaTimeoutError")
    assert waiting[-1].startswith("Kafka at 127.0.0.1:1 answers again after")
    still = [line for line in waiting if line.startswith("still waiting for Kafka")]
    outage_s = kafka.probes[-1] - kafka.down_at
    assert int(outage_s) - 1 <= len(still) <= int(outage_s)  # once a second (kafka_notice_s)
    # Only acknowledged entries are remembered: b1 was fetched again after the outage.
    assert remembered == [3]
