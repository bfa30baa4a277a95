"""Prometheus metrics of pipeline runs (`wirestream run [--continuous] --metrics-port P`).

Counters of what batches read, wrote, dead-lettered and dropped as duplicates; histograms of a
batch's duration and of its commit; the time of the last commit; and the consumer lag per
partition (records Kafka holds that the table has not committed), measured after each batch. The
endpoint is prometheus-client's, the one Prometheus scrapers and Kubernetes probes expect; each run
has its own registry, so tests and embedded uses do not collide.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["PipelineMetrics"]

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def counter(name: str, text: str) -> Counter:
            return Counter(name, text, registry=self.registry)

        self.records = counter("wirestream_pipeline_records_read", "Kafka records read by committed batches.")
        self.rows = counter("wirestream_pipeline_stories_written", "Stories committed to the table.")
        self.dead_letters = counter("wirestream_pipeline_dead_letters", "Records committed as dead letters.")
        self.duplicates = counter(
            "wirestream_pipeline_duplicates_dropped", "Re-deliveries of committed stories dropped."
        )
        self.batches = counter("wirestream_pipeline_batches", "Batches committed (one snapshot each).")
        self.batch_seconds = Histogram(
            "wirestream_pipeline_batch_duration_seconds",
            "A batch from planning to its commit.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "wirestream_pipeline_commit_duration_seconds",
            "Placing a batch's files and committing its snapshot.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.last_commit = Gauge(
            "wirestream_pipeline_last_commit_timestamp_seconds",
            "Unix time of the last committed batch.",
            registry=self.registry,
        )
        self.lag = Gauge(
            "wirestream_pipeline_consumer_lag",
            "Records on the raw topic the table has not committed, per partition.",
            ["topic", "partition"],
            registry=self.registry,
        )

    def observe(self, report: Any) -> None:
        """Count one committed batch (a `pipeline.run.RunReport`)."""
        self.records.inc(report.records)
        self.rows.inc(report.rows)
        self.dead_letters.inc(report.dead_letters)
        self.duplicates.inc(report.duplicates_dropped)
        self.batches.inc()
        self.batch_seconds.observe(report.seconds)
        self.commit_seconds.observe(report.commit_seconds)
        self.last_commit.set(time.time())

    def observe_lag(self, topic: str, ends: dict[int, int], position: dict[int, int]) -> None:
        """The lag of each partition: its end offset less the table's next offset for it."""
        for partition, end in ends.items():
            self.lag.labels(topic, str(partition)).set(max(0, end - position.get(partition, 0)))

    def serve(self, port: int, address: str = "0.0.0.0") -> Any:
        """Start the /metrics endpoint in a daemon thread; returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server
