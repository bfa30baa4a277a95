"""JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1): one raw story per item."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.delivery import Item
from connectors.encoding import Decoded
from connectors.formats.common import (
    FormatError,
    identity,
    json_items,
    language,
    text,
    when,
)
from schemas import RAW_SCHEMA_VERSION

VERSION_PREFIX = "https://jsonfeed.org/version/"


def is_json_feed(document: Any) -> bool:
    return isinstance(document, dict) and str(document.get("version", "")).startswith(VERSION_PREFIX)


def _wrong_types(item: dict[str, Any]) -> list[str]:
    expected = {
        "url": str,
        "external_url": str,
        "title": str,
        "content_html": str,
        "content_text": str,
        "summary": str,
        "date_published": str,
        "date_modified": str,
        "language": str,
        "tags": list,
        "authors": list,
        "author": dict,
    }
    return [
        f"{name}: expected {kind.__name__}, got {type(item[name]).__name__}"
        for name, kind in expected.items()
        if item.get(name) is not None and not isinstance(item[name], kind)
    ]


def _byline(item: dict[str, Any]) -> str | None:
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
    names = [a["name"] for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str)]
    return ", ".join(names) or None


def story_from_item(
    item: dict[str, Any], source: str, fetched_at: str, feed_language: str | None
) -> dict[str, Any]:
    raw_id = item.get("id")
    guid = (
        str(raw_id)
        if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id)
        else None
    )
    if text(item.get("content_html")):
        body, body_format = item["content_html"], "text/html"
    else:
        body, body_format = text(item.get("content_text")) or "", "text/plain"
    message: dict[str, Any] = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": identity(source, guid or text(item.get("url"))),
        "source": source,
        "uri": guid,
        "url": text(item.get("url")) or text(item.get("external_url")),
        "headline": (text(item.get("title")) or "").strip(),
        "body": body.strip(),
        "body_format": body_format,
        "summary": text(item.get("summary")),
        "byline": _byline(item),
        "firstcreated": when(item.get("date_published")) or when(item.get("date_modified")),
        "versioncreated": when(item.get("date_modified")) or when(item.get("date_published")),
        "fetched_at": fetched_at,
        "categories": [t for t in item.get("tags") or [] if isinstance(t, str) and t],
    }
    item_language = language(item.get("language")) or feed_language
    if item_language:
        message["language"] = item_language
    return message


def parse(document: Any, decoded: Decoded, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    items = document.get("items")
    if not isinstance(items, list):
        raise FormatError("JSON Feed without an 'items' list")
    feed_language = language(document.get("language"))
    yield from json_items(
        items,
        lambda index: f"{origin}#items[{index}]",
        source,
        decoded,
        _wrong_types,
        lambda item: story_from_item(item, source, fetched_at, feed_language),
    )
