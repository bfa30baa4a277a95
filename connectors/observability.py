"""Per-feed Prometheus metrics served over HTTP, and JSON log lines.

prometheus-client gives the exposition format, label escaping and the HTTP endpoint that every
Prometheus scraper expects; each connector has its own registry so tests and embedded uses do not
collide. Counters live for the process (Prometheus computes rates); the persisted totals that
`wirestream connect status` shows are in the feed state.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

# Attributes every LogRecord has; anything else passed through ``extra=`` goes into the JSON line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class FeedMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter(name, text, ["feed", *labels], registry=self.registry)

        self.fetches = counter("wirestream_feed_fetches", "HTTP fetches of the feed (any outcome).")
        self.not_modified = counter("wirestream_feed_not_modified", "Fetches answered 304 Not Modified.")
        self.new_entries = counter("wirestream_feed_new_entries", "Entries not seen before.")
        self.published = counter("wirestream_feed_published", "Stories Kafka acknowledged.")
        self.dead_lettered = counter("wirestream_feed_dead_lettered", "Dead letters Kafka acknowledged.")
        self.errors = counter("wirestream_feed_errors", "Failures by kind.", "kind")
        self.last_success = Gauge(
            "wirestream_feed_last_success_timestamp_seconds",
            "Unix time of the last successful poll (200 or 304).",
            ["feed"],
            registry=self.registry,
        )
        self.consecutive_failures = Gauge(
            "wirestream_feed_consecutive_failures",
            "Failed polls since the last success.",
            ["feed"],
            registry=self.registry,
        )

    def serve(self, port: int, address: str = "127.0.0.1") -> Any:
        """Start the /metrics endpoint in a daemon thread; returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json_logs() -> None:
    """Switch every handler of the root logger to JSON lines."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())


class _Redact(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, ()
        return True


_REDACT = _Redact()


def protect_secrets(*secrets: str | None) -> None:
    """Mask these values in every log line, whoever logs them.

    kafka-python logs its whole configuration, SASL password included, at DEBUG; the filter sits on
    the root logger's handlers, so it sees every record that is written anywhere.
    """
    _REDACT.secrets.update(s for s in secrets if s and len(s) >= 4)
    root = logging.getLogger()
    for handler in root.handlers:
        if _REDACT not in handler.filters:
            handler.addFilter(_REDACT)
