"""Agency drops on disk: TURAN-style text, IPTC ninjs, NewsML-G2, JSON Feed, RSS/Atom, raw messages.

The format comes from the content (``connectors.formats``); ``.txt`` is always TURAN-style text
and ``.ndjson``/``.jsonl`` one raw message per line. A file's state key is its bytes' hash for
text and its stories' ids otherwise, so the same file published twice publishes nothing new.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from connectors.delivery import DeliveryReport, Item, deliver
from connectors.formats import parse_document
from connectors.formats.agency import complete_message, story_from_text
from connectors.formats.common import dead, digest
from connectors.publisher import Publisher
from connectors.state import ConnectorState
from schemas import rfc3339
from wirestream.errors import UserError

__all__ = ["complete_message", "expand_paths", "items_from_file", "publish_files", "story_from_text"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


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


def items_from_file(
    path: Path, source: str, fetched_at: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Item]:
    """Every story (or dead letter) in one file; one bad item never stops the rest."""
    origin = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            with path.open("rb") as handle:
                head = handle.read(64 * 1024)
            reason = f"file of {size} bytes is over the {max_bytes}-byte limit (first 64 KiB kept)"
            yield dead(f"too-large:{digest(head)}:{size}", source, origin, reason, head)
            return
        data = path.read_bytes()
    except OSError as exc:
        yield dead(f"unreadable:{origin}", source, origin, f"cannot read file: {exc}", b"")
        return
    parsed = parse_document(
        data, source=source, origin=origin, fetched_at=fetched_at, suffix=path.suffix, allow_text=True
    )
    yield from parsed.items


def publish_files(
    publisher: Publisher,
    state_dir: str | os.PathLike[str],
    files: list[Path],
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DeliveryReport:
    """Publish every file's stories and dead letters not yet on the current topics.

    What was published is remembered per topic (a story on the raw topic, a dead letter on the
    dead-letter topic): after either topic changes, the files' items go to the new one.
    """
    state = ConnectorState(state_dir, "files")
    raw, dlq = publisher.config.raw_topic, publisher.config.dlq_topic
    stories, letters = state.section(f"seen on {raw}"), state.section(f"seen on {dlq}")
    legacy = state.data.pop("seen", None)  # an earlier version's, not per topic: the first topics' own
    if legacy:
        stories.update(legacy)
        letters.update(legacy)
    now = rfc3339(datetime.now(UTC))
    report = DeliveryReport()
    for path in files:
        items = items_from_file(path, source, now, max_bytes)
        report.add(deliver(publisher, stories, items, now, letters))
        state.save()
    return report
