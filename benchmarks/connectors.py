"""Feed connector throughput: 200 feeds x 50 entries from a local HTTP server into a real broker.

Measures (1) entries published to Kafka per second on the first pass, where every entry is new,
with parsing in the connector's process and in worker processes, and (2) the connector's CPU
seconds per polling cycle when nothing changed (every feed answers 304). The HTTP server runs in
its own process, so its CPU is not counted. Targets: >= 2,000 entries/s on the first pass; an idle
cycle over 200 feeds under 0.5 CPU-seconds.

    python -m benchmarks.connectors [--bootstrap-servers HOST:PORT] [--feeds 200] [--entries 50]

Without --bootstrap-servers a local broker is started on a free port and stopped afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
from connectors.fetch import Limits
from connectors.publisher import Publisher
from wirestream.config import Config

PARAGRAPH = (
    "The foreign ministers spoke for about twenty-five minutes about the grain deal, the detainees "
    "and the annexation plans, according to officials who briefed reporters after the call. "
)


def write_feeds(folder: Path, feeds: int, entries: int) -> list[str]:
    names = []
    for f in range(feeds):
        items = []
        for e in range(entries):
            items.append(
                f"<item><title>Feed {f} story {e}: ministers discuss the grain deal</title>"
                f"<link>https://news.example/{f}/{e}</link><guid>https://news.example/{f}/{e}</guid>"
                f"<pubDate>Fri, 29 Jul 2022 {e % 24:02d}:47:00 +0400</pubDate><category>Politics</category>"
                f"<description><![CDATA[<p>{PARAGRAPH * 6}</p><p>Story {f}-{e}.</p>]]></description></item>"
            )
        name = f"feed-{f:04d}.rss"
        (folder / name).write_text(
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>https://news.example/{f}</link><description>d</description><language>en</language>"
            + "".join(items)
            + "</channel></rss>",
            "utf-8",
        )
        names.append(name)
    return names


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_pass(config: Config, specs: list[FeedSpec], settings: FeedSettings) -> tuple[float, int, float]:
    """(seconds, published, connector CPU seconds) of one pass where every entry is new."""
    tag = uuid.uuid4().hex[:8]
    config = dataclasses.replace(
        config, raw_topic=f"bench-{tag}.raw", dlq_topic=f"bench-{tag}.dlq", state_dir=tempfile.mkdtemp()
    )
    with (
        Publisher(config) as publisher,
        FeedConnector(publisher, config.state_dir, specs, settings) as connector,
    ):
        if settings.parse_workers:
            connector._parser.parse(
                data=b"<rss/>", source="warm", origin="warm", fetched_at="x"
            )  # start the pool
        cpu, wall = time.process_time(), time.perf_counter()
        report = connector.run_once()
        seconds = time.perf_counter() - wall
        cpu_seconds = time.process_time() - cpu
        assert report.failed == 0, report.failures[:5]
        idle = []
        for _ in range(3):
            cpu = time.process_time()
            again = connector.run_once()
            idle.append(time.process_time() - cpu)
            assert again.published == 0 and again.failed == 0
        connector.idle_cpu = min(idle)  # type: ignore[attr-defined]
        first_pass.idle = idle  # type: ignore[attr-defined]
    return seconds, report.published, cpu_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16, help="feeds polled at the same time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    broker = None
    if args.bootstrap_servers:
        config = Config(bootstrap_servers=args.bootstrap_servers)
    else:
        from wirestream.broker import LocalBroker

        port = _free_port()
        state = tempfile.mkdtemp(prefix="bench-broker-")
        config = Config(
            bootstrap_servers=f"127.0.0.1:{port}",
            broker_port=port,
            broker_controller_port=_free_port(),
            broker_sasl_port=0,
            state_dir=state,
        )
        broker = LocalBroker(config)
        broker.up()
    folder = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    names = write_feeds(folder, args.feeds, args.entries)
    server = subprocess.Popen(
        [sys.executable, "-m", "wirestream.localhttp", str(folder), "--gzip"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        specs = [FeedSpec(url=f"{base}/{name}", name=f"bench/{name}") for name in names]
        limits = Limits(allow_private=True, per_host=8)
        total = args.feeds * args.entries
        print(f"{args.feeds} feeds x {args.entries} entries = {total} entries, served gzipped from {base}")
        for workers in (0, 2):
            settings = FeedSettings(limits=limits, workers=args.workers, parse_workers=workers)
            seconds, published, cpu = first_pass(config, specs, settings)
            idle = first_pass.idle  # type: ignore[attr-defined]
            where = "in the connector process" if workers == 0 else f"in {workers} worker processes"
            print(
                f"first pass, parsing {where}: {published} published in {seconds:.2f}s = "
                f"{published / seconds:,.0f} entries/s (connector process CPU {cpu:.2f}s)"
            )
            print(
                f"  idle cycle (all {args.feeds} feeds 304): CPU seconds per cycle "
                + ", ".join(f"{c:.3f}" for c in idle)
            )
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(10)
        if broker is not None:
            broker.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
