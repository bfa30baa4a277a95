"""Feed connector state in one SQLite file: validators, health, counters and the entries seen.

SQLite because hundreds of feeds with thousands of remembered entries each outgrow a JSON file
rewritten on every change, and because one transaction records "these entries were acknowledged"
and "these validators are current" together: a crash or SIGTERM leaves the state before or after
a feed's poll, never half-way. Seen entries expire ``seen_ttl`` after they last appeared in the
feed, so an entry a feed keeps listing is never forgotten and republished.

An entry is remembered per topic it was acknowledged on (a story on the raw topic, a dead letter on
the dead-letter topic), and validators per pair of topics they were earned with: after the raw or
dead-letter topic changes, every entry goes to the new topic and nothing hides behind a 304.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEEN_TABLE = """
CREATE TABLE IF NOT EXISTS seen (
    feed TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (feed, topic, key)
) WITHOUT ROWID
"""

SCHEMA = (
    SEEN_TABLE
    + """;
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_fetch REAL,
    last_success REAL,
    last_error TEXT,
    last_error_kind TEXT,
    last_error_at REAL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_due REAL,
    fetches INTEGER NOT NULL DEFAULT 0,
    not_modified INTEGER NOT NULL DEFAULT 0,
    new_entries INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '{}',
    validators_for TEXT
);
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (last_seen);
"""
)


@dataclass
class FeedRecord:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    next_due: float | None = None
    fetches: int = 0
    not_modified: int = 0
    new_entries: int = 0
    published: int = 0
    dead_lettered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    validators_for: str | None = None
    """The topics (``topics_key``) the validators were earned with; others must fetch in full."""
    seen: int = 0


@dataclass
class Outcome:
    """What one poll of one feed changes in the state, written in one transaction."""

    at: float
    status: str  # "ok", "not_modified" or "failed"
    next_due: float
    acknowledged: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    validators: tuple[str | None, str | None] | None = None
    published: int = 0
    dead_lettered: int = 0
    new_entries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    dead_letter_keys: list[str] = field(default_factory=list)
    """The acknowledged keys that were dead letters (remembered on the dead-letter topic)."""
    topics: tuple[str, str] = ("", "")
    """The raw and dead-letter topics this poll published to."""


def topics_key(topics: tuple[str, str]) -> str:
    return "\n".join(topics)


def _utc(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedStore:
    """Thread-safe (one connection behind a lock: every statement is short)."""

    def __init__(self, state_dir: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(state_dir) / "connectors" / "feeds.sqlite"
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses at most the last transactions on power loss, never on a process crash; a lost
        # "seen" only republishes, which the pipeline's story-id dedup drops.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._upgrade()
        self._db.executescript(SCHEMA)
        if fresh:
            self._import_json(Path(state_dir) / "connectors" / "feeds.json")

    def _upgrade(self) -> None:
        """Give the state of an earlier version its topic columns; its entries and validators are
        claimed by the topics of the first connector that opens it (``adopt``)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            seen = [row[1] for row in self._db.execute("PRAGMA table_info(seen)")]
            if seen and "topic" not in seen:
                self._db.execute("ALTER TABLE seen RENAME TO seen_without_topic")
                self._db.execute("DROP INDEX IF EXISTS seen_by_age")
                self._db.execute(SEEN_TABLE)
                self._db.execute(
                    "INSERT INTO seen SELECT feed, '', key, first_seen, last_seen FROM seen_without_topic"
                )
                self._db.execute("DROP TABLE seen_without_topic")
            feeds = [row[1] for row in self._db.execute("PRAGMA table_info(feeds)")]
            if feeds and "validators_for" not in feeds:
                self._db.execute("ALTER TABLE feeds ADD COLUMN validators_for TEXT")

    def adopt(self, topics: tuple[str, str]) -> None:
        """Entries and validators recorded without topics (by an earlier version) belong to these."""
        key = topics_key(topics)
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for topic in dict.fromkeys(topics):
                self._db.execute(
                    "INSERT OR IGNORE INTO seen SELECT feed, ?, key, first_seen, last_seen FROM seen WHERE topic = ''",
                    (topic,),
                )
            self._db.execute("DELETE FROM seen WHERE topic = ''")
            self._db.execute(
                "UPDATE feeds SET validators_for = ? WHERE validators_for IS NULL AND (etag IS NOT NULL OR last_modified IS NOT NULL)",
                (key,),
            )

    def _import_json(self, legacy: Path) -> None:
        """Carry over the one-file JSON state of earlier versions, so an upgrade republishes nothing."""
        if not legacy.exists():
            return
        try:
            data = json.loads(legacy.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot import legacy connector state {legacy}: {exc}") from None
        now = datetime.now(UTC).timestamp()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for name, section in data.items():
                if not isinstance(section, dict):
                    continue
                self._db.execute(
                    "INSERT OR IGNORE INTO feeds (name, url, etag, last_modified) VALUES (?, '', ?, ?)",
                    (name, section.get("etag"), section.get("last_modified")),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO seen VALUES (?, '', ?, ?, ?)",
                    [(name, key, now, now) for key in section.get("seen", {})],
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def register(self, name: str, url: str) -> FeedRecord:
        with self._lock:
            self._db.execute(
                "INSERT INTO feeds (name, url) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET url = excluded.url",
                (name, url),
            )
        return self.get(name)

    def get(self, name: str) -> FeedRecord:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM feeds WHERE name = ?", (name,))
            row = cursor.fetchone()
            if row is None:
                raise KeyError(name)
            values = dict(zip([c[0] for c in cursor.description], row, strict=True))
        values["errors"] = json.loads(values["errors"])
        return FeedRecord(**values)

    def records(self) -> list[FeedRecord]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM feeds ORDER BY name")
            columns = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
            counts = dict(
                self._db.execute("SELECT feed, count(DISTINCT key) FROM seen GROUP BY feed").fetchall()
            )
        records = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            values["errors"] = json.loads(values["errors"])
            records.append(FeedRecord(**values, seen=counts.get(values["name"], 0)))
        return records

    def unseen(self, name: str, keys: Iterable[str], topic: str = "") -> set[str]:
        """The keys not yet acknowledged on ``topic`` for this feed."""
        wanted = set(keys)
        return wanted - set(self.acknowledged_on(name, wanted, (topic,)))

    def acknowledged_on(self, name: str, keys: Iterable[str], topics: tuple[str, ...]) -> dict[str, str]:
        """Of ``keys``, those acknowledged on one of ``topics``, each with the first such topic."""
        ordered = sorted(set(keys))
        found: dict[str, str] = {}
        with self._lock:
            for topic in topics:
                for start in range(0, len(ordered), 500):
                    chunk = ordered[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key FROM seen WHERE feed = ? AND topic = ? AND key IN ({marks})"
                    for (key,) in self._db.execute(query, (name, topic, *chunk)):
                        found.setdefault(key, topic)
        return found

    def record(self, name: str, outcome: Outcome) -> None:
        """Everything one poll learned, atomically."""
        with self._lock, self._db:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            if outcome.acknowledged:
                raw, dead = outcome.topics
                letters = set(outcome.dead_letter_keys)
                db.executemany(
                    "INSERT INTO seen VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(feed, topic, key) DO UPDATE SET last_seen = excluded.last_seen",
                    [
                        (name, dead if key in letters else raw, key, outcome.at, outcome.at)
                        for key in outcome.acknowledged
                    ],
                )
            if outcome.present:
                db.executemany(
                    "UPDATE seen SET last_seen = ? WHERE feed = ? AND key = ?",
                    [(outcome.at, name, key) for key in outcome.present],
                )
            row = db.execute("SELECT errors FROM feeds WHERE name = ?", (name,)).fetchone()
            errors = json.loads(row[0]) if row else {}
            for kind, count in outcome.errors.items():
                errors[kind] = errors.get(kind, 0) + count
            sets = [
                "last_fetch = :at",
                "next_due = :next_due",
                "fetches = fetches + 1",
                "published = published + :published",
                "dead_lettered = dead_lettered + :dead_lettered",
                "new_entries = new_entries + :new_entries",
                "errors = :errors",
            ]
            if outcome.status == "failed":
                sets += [
                    "consecutive_failures = consecutive_failures + 1",
                    "last_error = :error",
                    "last_error_kind = :error_kind",
                    "last_error_at = :at",
                ]
            else:
                sets += ["consecutive_failures = 0", "last_success = :at"]
            if outcome.status == "not_modified":
                sets.append("not_modified = not_modified + 1")
            if outcome.validators is not None:
                sets += ["etag = :etag", "last_modified = :last_modified", "validators_for = :topics"]
            etag, last_modified = outcome.validators or (None, None)
            db.execute(
                f"UPDATE feeds SET {', '.join(sets)} WHERE name = :name",
                {
                    "name": name,
                    "at": outcome.at,
                    "next_due": outcome.next_due,
                    "published": outcome.published,
                    "dead_lettered": outcome.dead_lettered,
                    "new_entries": outcome.new_entries,
                    "errors": json.dumps(errors, sort_keys=True),
                    "error": outcome.error,
                    "error_kind": outcome.error_kind,
                    "etag": etag,
                    "last_modified": last_modified,
                    "topics": topics_key(outcome.topics),
                },
            )

    def expire(self, older_than: float) -> int:
        """Forget entries no feed has listed since ``older_than``; returns how many."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return self._db.execute("DELETE FROM seen WHERE last_seen < ?", (older_than,)).rowcount


def describe(record: FeedRecord, now: float, interval_s: float) -> dict[str, Any]:
    """One feed's health for `wirestream connect status`."""
    if record.last_success is None and record.last_error_at is None:
        health = "never polled"
    elif record.consecutive_failures:
        health = f"failing ({record.consecutive_failures} in a row)"
    elif record.last_success is not None and now - record.last_success > 3 * interval_s + 60:
        health = "stale"
    else:
        health = "ok"
    return {
        "feed": record.name,
        "url": record.url,
        "health": health,
        "last_success": _utc(record.last_success),
        "last_error": record.last_error,
        "last_error_kind": record.last_error_kind,
        "last_error_at": _utc(record.last_error_at),
        "next_due": _utc(record.next_due),
        "fetches": record.fetches,
        "not_modified": record.not_modified,
        "new_entries": record.new_entries,
        "published": record.published,
        "dead_lettered": record.dead_lettered,
        "errors": record.errors,
        "remembered_entries": record.seen,
    }
