"""`wirestream demo`: the whole loop on embedded defaults, from bundled feeds to a summary.

With the default bootstrap servers the demo starts the local broker on ``broker_port`` and stops it
at the end unless asked to keep it, so no broker is left holding the port for a later command.
"""

from __future__ import annotations

import dataclasses
import time
from importlib import resources
from pathlib import Path

from connectors.feeds import FeedSpec, poll_feeds
from connectors.publisher import Publisher
from pipeline.dataset import Dataset, catalog_settings
from pipeline.run import run_until_caught_up
from wirestream.broker import LocalBroker, check_cluster
from wirestream.config import Config
from wirestream.localhttp import serve_folder
from wirestream.summary import summarize


def sample_feeds_dir() -> Path:
    return Path(str(resources.files("wirestream").joinpath("samples", "feeds")))


def run_demo(config: Config, output: str, keep_broker: bool = False) -> int:
    started = time.monotonic()
    broker = LocalBroker(config)
    launched = False
    if config.bootstrap_servers == broker.bootstrap:
        launched, seconds = broker.up()
        print(
            f"broker: {f'started in {seconds:.1f}s' if launched else 'already running'} on {broker.bootstrap}"
        )
    try:
        check_cluster(config)
        return _demo(config, output, started)
    finally:
        if launched and not keep_broker:
            broker.down()
            print(f"broker: stopped (pass --keep-broker to leave it running on {broker.bootstrap})")
        elif launched:
            print(
                f"broker: left running on {broker.bootstrap}; stop it with `wirestream kafka down --port "
                f"{config.broker_port}`"
            )


def _demo(config: Config, output: str, started: float) -> int:
    folder = sample_feeds_dir()
    feed_files = sorted(p.name for p in folder.iterdir() if p.is_file())
    # The bundled feeds are served from this machine, so the private-network guard is lifted here only.
    config = dataclasses.replace(config, allow_private_networks=True)
    with serve_folder(folder) as base:
        specs = [FeedSpec(url=f"{base}/{name}", name=f"demo/{Path(name).stem}") for name in feed_files]
        print(f"serving {len(specs)} sample feed(s) at {base}")
        with Publisher(config) as publisher:
            report = poll_feeds(
                publisher,
                config.state_dir,
                specs,
                allow_private=True,
                timeout_s=config.http_timeout_s,
                max_bytes=config.max_body_bytes,
            )
    print(
        f"connectors: published {report.published}, dead-lettered {report.dead_lettered}, "
        f"already published {report.skipped}, failed {report.failed}"
    )
    results = run_until_caught_up(config, output)
    if not results:
        print("pipeline: nothing new on the raw topic (the demo's stories were committed by an earlier run)")
    for result in results:
        print(f"pipeline: batch {result.batch} committed in {result.seconds:.1f}s")
    print()
    summary = summarize(Dataset(output, catalog_settings(config)))
    summary.connector_dead_letters = report.dead_lettered
    summary.dlq_topic = config.dlq_topic
    for line in summary.lines():
        print(line)
    print(f"\noutput: {Path(output).resolve()}   (wall time {time.monotonic() - started:.1f}s)")
    return 1 if report.failed else 0
