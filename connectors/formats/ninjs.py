"""IPTC ninjs 1.x and 2.x JSON (news in JSON): one raw story per item.

ninjs 1.x carries ``headline``, ``body_text`` / ``body_html``, ``byline`` and ``subject``;
2.x carries ``headlines``, ``bodies``, ``by`` and ``subjects`` as lists with roles. Both are read;
the ``main`` role wins where there is a choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.delivery import Item
from connectors.encoding import Decoded
from connectors.formats.common import identity, json_items, language, text, when
from schemas import RAW_SCHEMA_VERSION

# Keys only ninjs uses (a hand-written raw message has body/headline instead).
_NINJS_KEYS = frozenset({"body_text", "body_html", "bodies", "headlines", "subjects", "pubstatus", "ednote"})


def is_ninjs(document: Any) -> bool:
    items = document if isinstance(document, list) else [document]
    for item in items[:1]:
        if isinstance(item, dict):
            schema = str(item.get("$schema") or item.get("profile") or "")
            if "ninjs" in schema or (_NINJS_KEYS & item.keys() and "body" not in item):
                return True
    return False


def _main(entries: Any, key: str = "value") -> dict[str, Any] | None:
    """The entry whose role is main (or has no role), else the first."""
    if not isinstance(entries, list):
        return None
    candidates = [e for e in entries if isinstance(e, dict) and isinstance(e.get(key), str)]
    for entry in candidates:
        if entry.get("role") in (None, "main", "body"):
            return entry
    return candidates[0] if candidates else None


def _body(item: dict[str, Any]) -> tuple[str, str]:
    if isinstance(item.get("body_html"), str) and item["body_html"].strip():
        return item["body_html"], "text/html"
    if isinstance(item.get("body_text"), str) and item["body_text"].strip():
        return item["body_text"], "text/plain"
    main = _main(item.get("bodies"))
    if main is not None:
        kind = str(main.get("contenttype") or main.get("content_type") or "text/plain").lower()
        return main["value"], "text/html" if "html" in kind else "text/plain"
    return "", "text/plain"


def _byline(item: dict[str, Any]) -> str | None:
    if isinstance(item.get("byline"), str):
        return item["byline"]
    if isinstance(item.get("by"), str):
        return item["by"]
    people = item.get("people")
    if not isinstance(people, list):
        people = []
    names = [
        p["name"]
        for p in people
        if isinstance(p, dict) and p.get("rel") == "author" and isinstance(p.get("name"), str)
    ]
    return ", ".join(names) or None


def _categories(item: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("subject", "subjects"):
        for subject in item.get(key) or []:
            if isinstance(subject, dict) and isinstance(subject.get("name"), str) and subject["name"]:
                found.append(subject["name"])
    return found


def _wrong_types(item: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(item.get("uri"), str) or not item["uri"].strip():
        problems.append("ninjs item has no 'uri' (required)")
    for key in ("headline", "body_text", "body_html", "byline", "language", "versioncreated", "firstcreated"):
        if item.get(key) is not None and not isinstance(item[key], str):
            problems.append(f"{key}: expected string, got {type(item[key]).__name__}")
    for key in ("headlines", "bodies", "subject", "subjects", "people"):
        if item.get(key) is not None and not isinstance(item[key], list):
            problems.append(f"{key}: expected array, got {type(item[key]).__name__}")
    return problems


def story_from_item(item: dict[str, Any], source: str, fetched_at: str) -> dict[str, Any]:
    uri = item["uri"].strip()
    headline = text(item.get("headline")) or (_main(item.get("headlines")) or {}).get("value") or ""
    body, body_format = _body(item)
    summary = (_main(item.get("descriptions")) or {}).get("value") or text(item.get("description_text"))
    message: dict[str, Any] = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": identity(source, uri),
        "source": source,
        "uri": uri,
        "url": next(
            (
                link["href"]
                for link in item.get("links") or []
                if isinstance(link, dict) and isinstance(link.get("href"), str)
            ),
            None,
        ),
        "headline": headline.strip(),
        "body": body.strip(),
        "body_format": body_format,
        "summary": summary,
        "byline": _byline(item),
        "firstcreated": when(item.get("firstcreated")) or when(item.get("versioncreated")),
        "versioncreated": when(item.get("versioncreated")) or when(item.get("firstcreated")),
        "fetched_at": fetched_at,
        "categories": _categories(item),
    }
    item_language = language(item.get("language"))
    if item_language:
        message["language"] = item_language
    return message


def parse(document: Any, decoded: Decoded, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    items = document if isinstance(document, list) else [document]
    yield from json_items(
        items,
        lambda index: f"{origin}[{index}]" if isinstance(document, list) else origin,
        source,
        decoded,
        _wrong_types,
        lambda item: story_from_item(item, source, fetched_at),
    )
