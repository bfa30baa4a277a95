"""The log masking of secrets, on records made by any logger and handler."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

from connectors.observability import JsonFormatter, protect_secrets

SECRET = "ünit-sé'cr\"et\\pass"


def test_every_form_is_masked_in_messages_exceptions_and_extras_of_any_handler(caplog):
    protect_secrets(SECRET)
    caplog.set_level(logging.DEBUG)  # a handler added after the secret was protected
    data = SECRET.encode()
    log = logging.getLogger("test.masking")
    for offset in range(3):  # base64 of the secret wherever it sits in the encoded bytes
        log.debug("auth %s", base64.b64encode(b"u" * offset + b"\0user\0" + data + b"\0tail").decode())
    log.debug("config %r and bytes %r", {"sasl_plain_password": SECRET}, (b"\0user\0" + data,))
    log.info("url https://user:%s@host/", quote(SECRET, safe=""))
    try:
        raise ValueError(f"refused {SECRET!r}")
    except ValueError:
        log.exception("failed", extra={"detail": SECRET})
    text = caplog.text + "".join(JsonFormatter().format(record) for record in caplog.records)
    assert SECRET not in text and repr(SECRET)[1:-1] not in text and repr(data)[2:-1] not in text
    assert base64.b64encode(data).decode()[:-4] not in text and quote(SECRET, safe="") not in text
    for record in caplog.records:
        assert "***" in record.getMessage() or "***" in (record.exc_text or "")
    assert '"detail": "***"' in JsonFormatter().format(caplog.records[-1])


def test_short_values_are_not_masked(caplog):
    protect_secrets("abc")
    caplog.set_level(logging.INFO)
    logging.getLogger("test.masking").info("abc stays")
    assert "abc stays" in caplog.text


def test_a_malformed_log_call_still_reaches_the_handlers():
    protect_secrets(SECRET)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("test.masking.malformed")
    log.addHandler(Collect())
    log.propagate = False
    log.setLevel(logging.INFO)
    log.info("two %s %s", "args expected")  # no exception at the call
    assert len(records) == 1 and records[0].msg == "two %s %s"
