"""Per-feed Prometheus metrics served over HTTP, and JSON log lines.

prometheus-client gives the exposition format, label escaping and the HTTP endpoint that every
Prometheus scraper expects; each connector has its own registry so tests and embedded uses do not
collide. Counters live for the process (Prometheus computes rates); the persisted totals that
`wirestream connect status` shows are in the feed state.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib import parse as urlparse

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
                # ``extra`` fields are set after the record is made, so masked here.
                line[key] = _MASKS.mask(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json_logs() -> None:
    """Switch every handler of the root logger to JSON lines."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())


def _escape(text: str, quote: str) -> str:
    """``text`` as Python's repr writes it between ``quote`` characters."""
    out = []
    for char in text:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def _escape_bytes(data: bytes, quote: str) -> str:
    """``data`` as Python's repr of bytes writes it between ``quote`` characters."""
    out = []
    for byte in data:
        char = chr(byte)
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _base64_cores(data: bytes) -> set[str]:
    """The part of any base64 text that encodes ``data``, wherever ``data`` sits in the encoded bytes.

    Base64 encodes three bytes as four characters, so ``data`` at offset k (mod 3) of a longer
    message (SASL PLAIN's ``authzid NUL user NUL password``) always encodes to the same characters
    between the groups it shares with its neighbours.
    """
    cores = set()
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + data).decode("ascii").rstrip("=")
            first = 4 if offset else 0
            last = ((offset + len(data)) // 3) * 4
            cores.add(text[first:last])
    return cores


def secret_forms(secret: str) -> set[str]:
    """Every form ``secret`` takes in a log line: as text, as Python's repr of it and of its UTF-8
    bytes (``s\\xc3\\xa9cret``, how kafka-python prints the SASL bytes it sends), those escaped
    once more (a repr inside a repr), JSON-escaped, URL-encoded, hex, and its base64 (whatever
    surrounds it in the encoded bytes, as in base64 of SASL PLAIN's ``\\0user\\0password``)."""
    data = secret.encode("utf-8", "surrogatepass")
    forms = {secret, data.hex()}
    for quote in ("'", '"'):
        forms.update({_escape(secret, quote), _escape_bytes(data, quote)})
    for once in list(forms):
        for quote in ("'", '"'):
            forms.add(_escape(once, quote))
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.update({urlparse.quote(secret, safe=""), urlparse.quote(secret), urlparse.quote_plus(secret)})
    forms.update(_base64_cores(data))
    return {form for form in forms if len(form) >= 4}


class _Masks:
    """The forms of every protected secret, masked in each log record as it is made."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.forms: list[str] = []
        self._lock = threading.Lock()
        self._factory: Callable[..., logging.LogRecord] | None = None

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            fresh = set(secrets) - self.secrets
            if not fresh:
                return
            self.secrets |= fresh
            forms = set(self.forms).union(*(secret_forms(s) for s in fresh))
            self.forms = sorted(forms, key=len, reverse=True)  # a longer form before a part of it
            if self._factory is None:
                self._factory = logging.getLogRecordFactory()
                logging.setLogRecordFactory(self._record)

    def mask(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, "***")
        return text

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        assert self._factory is not None
        record = self._factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when the record is written
            return record
        masked = self.mask(message)
        if masked is not message:
            record.msg, record.args = masked, ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return record


_MASKS = _Masks()


def protect_secrets(*secrets: str | None) -> None:
    """Mask these values, in every form they take, in every log record, whoever logs it.

    kafka-python logs its configuration and, at DEBUG, each request it sends: the SASL password in
    its configuration and escaped inside the PLAIN authentication bytes. The masking runs where
    records are made (the logging module's record factory), so every handler, formatter and level
    sees only masked text, also the handlers added after this call. Values shorter than 4
    characters are not masked (they would mask ordinary words).
    """
    _MASKS.add(s for s in secrets if s and len(s) >= 4)
