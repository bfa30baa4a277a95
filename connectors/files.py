"""Agency drops on disk: TURAN-style plain text, JSON and NDJSON raw messages.

Plain text keeps the scraper's shape: the first non-empty line is the headline and everything after
it is the body, furniture and signature included: cleaning is the pipeline's job.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.delivery import DeliveryReport, Item, deliver
from connectors.publisher import DeadLetter, Publisher
from connectors.state import ConnectorState
from schemas import RAW_SCHEMA_VERSION, rfc3339, story_id, validate_raw
from wirestream.errors import UserError

JSON_SUFFIXES = {".json"}
NDJSON_SUFFIXES = {".ndjson", ".jsonl"}
TEXT_ENCODINGS = ("utf-8", "cp1251", "koi8-r", "iso-8859-9")


def expand_paths(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"no such file or directory: {raw}")
    return found


def decode_text(data: bytes) -> tuple[str, str]:
    """Strict UTF-8 first; the legacy encodings agencies still use after that."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", data, 0, 1, "not decodable as " + ", ".join(TEXT_ENCODINGS))


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


def _checked(key: str, message: Any, source: str, origin: str, payload: bytes) -> Item:
    problems = validate_raw(message)
    if problems:
        return Item(key, dead_letter=DeadLetter(source, origin, "; ".join(problems), payload))
    return Item(key, story=message)


def items_from_file(path: Path, source: str, fetched_at: str) -> Iterator[Item]:
    """Every story (or dead letter) in one file; one bad line never stops the rest."""
    origin = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield Item(
            f"unreadable:{origin}", dead_letter=DeadLetter(source, origin, f"cannot read file: {exc}", b"")
        )
        return
    file_key = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    if suffix in NDJSON_SUFFIXES:
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            key = hashlib.sha256(line).hexdigest()
            where = f"{origin}:{number}"
            try:
                message = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Item(key, dead_letter=DeadLetter(source, where, f"invalid JSON: {exc}", line))
                continue
            yield _checked(key, complete_message(message, source, fetched_at), source, where, line)
        return
    if suffix in JSON_SUFFIXES:
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield Item(file_key, dead_letter=DeadLetter(source, origin, f"invalid JSON: {exc}", data))
            return
        messages = parsed if isinstance(parsed, list) else [parsed]
        for index, message in enumerate(messages):
            payload = json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
            key = hashlib.sha256(payload).hexdigest()
            yield _checked(
                key, complete_message(message, source, fetched_at), source, f"{origin}[{index}]", payload
            )
        return
    try:
        text, _encoding = decode_text(data)
    except UnicodeDecodeError as exc:
        yield Item(file_key, dead_letter=DeadLetter(source, origin, f"undecodable text: {exc}", data))
        return
    message = story_from_text(text, source, f"sha256:{file_key}", fetched_at)
    yield _checked(file_key, message, source, origin, data)


def publish_files(
    publisher: Publisher, state_dir: str | os.PathLike[str], files: list[Path], source: str
) -> DeliveryReport:
    state = ConnectorState(state_dir, "files")
    seen = state.section("seen")
    now = rfc3339(datetime.now(UTC))
    report = DeliveryReport()
    for path in files:
        report.add(deliver(publisher, seen, items_from_file(path, source, now), now))
        state.save()
    return report
