"""RSS and Atom feeds over HTTP, parsed by feedparser, one raw story per entry.

Conditional GET (ETag / Last-Modified) makes an unchanged feed cost a 304; entry ids already
published are remembered in connector state, so a restart republishes nothing.
"""

from __future__ import annotations

import calendar
import gzip
import ipaddress
import json
import logging
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from connectors.delivery import DeliveryReport, Item, deliver
from connectors.publisher import DeadLetter, Publisher
from connectors.state import ConnectorState
from schemas import RAW_SCHEMA_VERSION, rfc3339, story_id, validate_raw
from wirestream.errors import UserError

log = logging.getLogger(__name__)

USER_AGENT = "wirestream/0.1 (+news ingestion)"
_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


@dataclass(frozen=True)
class FeedSpec:
    url: str
    name: str

    @staticmethod
    def from_config(entry: dict[str, Any] | str) -> FeedSpec:
        if isinstance(entry, str):
            entry = {"url": entry}
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UserError(f"feed entry {entry!r} needs an http(s) 'url'")
        return FeedSpec(url=url, name=str(entry.get("name") or default_source(url)))


def default_source(url: str) -> str:
    """Host (without port) and path: stable when a local test server changes port."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path}".rstrip("/") or url


@dataclass
class FetchResult:
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None


def check_address(url: str, allow_private: bool) -> None:
    """Refuse loopback, private, link-local and metadata addresses unless explicitly allowed."""
    host = urlsplit(url).hostname
    if not host:
        raise ValueError(f"URL has no host: {url}")
    if allow_private:
        return
    for info in socket.getaddrinfo(host, None):
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
            raise ValueError(
                f"{host} resolves to {address}, a non-public address; pass --allow-private-networks to allow it"
            )


def fetch(url: str, validators: dict[str, Any], timeout_s: float, max_bytes: int) -> FetchResult:
    headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip",
        "Accept": "application/rss+xml, application/atom+xml, application/xml, text/xml;q=0.9, */*;q=0.5",
    }
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise ValueError(f"body larger than {max_bytes} bytes")
            if response.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
                if len(body) > max_bytes:
                    raise ValueError(f"decompressed body larger than {max_bytes} bytes")
            return FetchResult(
                status=response.status,
                body=body,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                content_type=response.headers.get("Content-Type"),
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return FetchResult(304, b"", validators.get("etag"), validators.get("last_modified"), None)
        raise


def _when(entry: Any, *keys: str) -> str | None:
    for key in keys:
        parsed = entry.get(key)
        if parsed:
            return rfc3339(datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC))
    return None


def story_from_entry(entry: Any, source: str, fetched_at: str) -> dict[str, Any]:
    guid = entry.get("id") or entry.get("link") or ""
    body, body_type = "", "text/plain"
    if entry.get("content"):
        body = entry["content"][0].get("value", "")
        body_type = entry["content"][0].get("type", "text/html")
    elif entry.get("summary"):
        body = entry["summary"]
        body_type = entry.get("summary_detail", {}).get("type", "text/html")
    body_format = "text/html" if body_type == "text/html" and _TAG.search(body) else "text/plain"
    message: dict[str, Any] = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": story_id(source, guid) if guid else "",
        "source": source,
        "uri": entry.get("id"),
        "url": entry.get("link"),
        "headline": (entry.get("title") or "").strip(),
        "body": body.strip(),
        "body_format": body_format,
        "summary": entry.get("summary") if entry.get("content") else None,
        "byline": entry.get("author"),
        "firstcreated": _when(entry, "published_parsed", "created_parsed", "updated_parsed"),
        "versioncreated": _when(entry, "updated_parsed", "published_parsed"),
        "fetched_at": fetched_at,
        "categories": [t.get("term") for t in entry.get("tags", []) if t.get("term")],
    }
    language = entry.get("language")
    if language:
        message["language"] = language.lower()
    return message


def items_from_feed(data: bytes, source: str, url: str, fetched_at: str) -> Iterator[Item]:
    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        reason = f"not a parseable feed: {parsed.get('bozo_exception')!r}"
        yield Item(f"feed-error:{url}:{hash(data)}", dead_letter=DeadLetter(source, url, reason, data))
        return
    feed_language = (parsed.feed.get("language") or "").split("-")[0].lower() or None
    for index, entry in enumerate(parsed.entries):
        origin = f"{url}#entry-{index}"
        payload = json.dumps(entry, default=str, ensure_ascii=False).encode("utf-8")
        try:
            message = story_from_entry(entry, source, fetched_at)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            yield Item(
                f"bad:{url}:{index}",
                dead_letter=DeadLetter(source, origin, f"unreadable entry: {exc}", payload),
            )
            continue
        if feed_language and "language" not in message:
            message["language"] = feed_language
        problems = validate_raw(message)
        if not message["id"]:
            problems.insert(0, "entry has no id and no link")
        key = message["id"] or "dl:" + story_id(source, payload.decode("utf-8", "replace"))
        if problems:
            yield Item(key, dead_letter=DeadLetter(source, origin, "; ".join(problems), payload))
        else:
            yield Item(key, story=message)


def poll_feeds(
    publisher: Publisher,
    state_dir: str | os.PathLike[str],
    feeds: list[FeedSpec],
    *,
    allow_private: bool,
    timeout_s: float,
    max_bytes: int,
) -> DeliveryReport:
    """One pass over every feed; a failing feed is logged and skipped, never stops the others."""
    state = ConnectorState(state_dir, "feeds")
    report = DeliveryReport()
    for feed in feeds:
        feed_state = state.section(feed.name)  # the stable identity: a local port may change between runs
        seen = feed_state.setdefault("seen", {})
        now = rfc3339(datetime.now(UTC))
        try:
            check_address(feed.url, allow_private)
            result = fetch(feed.url, feed_state, timeout_s, max_bytes)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.error("feed %s failed: %s", feed.url, exc)
            feed_state["last_error"] = f"{now} {exc}"
            report.failed += 1
            report.failures.append(feed.url)
            continue
        if result.status == 304:
            feed_state["last_success"] = now
            continue
        delivered = deliver(publisher, seen, items_from_feed(result.body, feed.name, feed.url, now), now)
        report.add(delivered)
        if not delivered.failed:
            # Validators only move forward once every new entry is acknowledged, so a failed publish
            # is retried on the next fetch instead of hiding behind a 304.
            feed_state["etag"] = result.etag
            feed_state["last_modified"] = result.last_modified
        feed_state["last_success"] = now
        state.save()
    state.save()
    return report
