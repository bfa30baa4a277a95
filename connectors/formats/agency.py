"""Agency drops that are not a standard: TURAN-style plain text, and hand-written raw messages.

Plain text keeps the scraper's shape: the first non-empty line is the headline and everything after
it is the body, furniture and signature included: cleaning is the pipeline's job. Raw messages
(JSON, a list of them, or NDJSON) are completed with what a hand-written message may leave out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from connectors.delivery import Item
from connectors.encoding import Decoded, EncodingError, decode
from connectors.formats.common import checked, dead, problems
from schemas import RAW_SCHEMA_VERSION, story_id
from schemas.raw import without_deep_members

log = logging.getLogger(__name__)


def story_from_text(text: str, source: str, guid: str, fetched_at: str) -> dict[str, Any]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    headline = lines[first].strip() if first is not None else ""
    body = "\n".join(lines[first + 1 :]).strip("\n") if first is not None else ""
    return {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": story_id(source, guid),
        "source": source,
        "uri": guid,
        "url": None,
        "headline": headline,
        "body": body,
        "body_format": "text/plain",
        "fetched_at": fetched_at,
    }


def parse_text(data: bytes, decoded: Decoded, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    """One story per file, keyed by the file's bytes (the same file twice is one story)."""
    key = hashlib.sha256(data).hexdigest()
    if "\x00" in decoded.text:
        yield dead(key, source, origin, "binary data (NUL bytes), not a text story", data)
        return
    message = story_from_text(decoded.text, source, f"sha256:{key}", fetched_at)
    message["encoding"] = decoded.record()
    yield checked(message, origin, lambda: data, key=key)


def complete_message(message: Any, default_source: str, fetched_at: str) -> Any:
    """Fill the fields a hand-written raw message may leave out; validation judges the rest."""
    if not isinstance(message, dict):
        return message
    message = dict(message)
    message.setdefault("schema_version", RAW_SCHEMA_VERSION)
    message.setdefault("source", default_source)
    message.setdefault("body_format", "text/plain")
    message.setdefault("fetched_at", fetched_at)
    if "id" not in message:
        identity = message.get("uri") or message.get("guid") or message.get("url")
        if isinstance(identity, str) and identity and isinstance(message.get("source"), str):
            message["id"] = story_id(message["source"], identity)
    if "guid" in message and "uri" not in message:
        message["uri"] = message.pop("guid")
    return message


def _raw(key: str, message: Any, source: str, origin: str, payload: bytes) -> Item:
    found = problems(message)
    if found:
        return dead(key, source, origin, "; ".join(found), payload)
    return Item(key, story=message)


def parse_raw_messages(document: Any, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    messages = document if isinstance(document, list) else [document]
    for index, message in enumerate(messages):
        payload = json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
        key = hashlib.sha256(payload).hexdigest()
        yield _raw(key, complete_message(message, source, fetched_at), source, f"{origin}[{index}]", payload)


def parse_ndjson(data: bytes, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    """One raw message per line; one bad line never stops the rest."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        key = hashlib.sha256(line).hexdigest()
        where = f"{origin}:{number}"
        try:
            text = decode(line).text
            message = json.loads(text)
        except (EncodingError, ValueError) as exc:
            yield dead(key, source, where, f"invalid JSON: {exc}", line)
            continue
        except RecursionError:  # an unknown member nested too deeply is left out, not fatal
            message, note = without_deep_members(text)
            if message is None:
                yield dead(key, source, where, f"invalid JSON: {note}", line)
                continue
            if note:
                log.warning("%s: %s", where, note)
        yield _raw(key, complete_message(message, source, fetched_at), source, where, line)
