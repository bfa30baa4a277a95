"""A fast reader for the common case: well-formed, plain RSS 2.0 and Atom 1.0.

feedparser costs about half a millisecond per entry, most of it in per-element Python callbacks;
ElementTree (C) reads the same document in a tenth of that. This module gives the entry fields that
``story_from_entry`` reads, computed the way feedparser computes them (its URL join for links and
permalink guids, its date parser, its text repairs, its way of recording categories), and declines
(returns None) for anything it does not cover exactly: other versions, xml:base, XHTML or base64
content, non-HTML alternate links, Atom authors with an e-mail or without a name, a second link,
guid, id, description or summary in one entry, and any element of another namespace inside an
entry unless feedparser is known to leave it out of those fields (pictures and their credits are;
Media RSS titles, descriptions and categories and iTunes elements feed its title, body, author and
categories, so an entry that has them goes to feedparser). A declined or malformed document goes
to feedparser.
``tests/unit/test_connector_feed_parity.py`` runs both paths over a corpus of real-shaped feeds and
compares every story field by field.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from typing import Any

from connectors.safexml import parse as parse_xml

try:  # the same helpers feedparser uses, so ids, links, dates and text agree with it exactly
    from feedparser.datetimes import _parse_date
    from feedparser.html import _cp1252
    from feedparser.urls import _urljoin
except ImportError:  # pragma: no cover - a feedparser without them: always use feedparser
    _parse_date = _urljoin = _cp1252 = None

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
MEDIA = "{http://search.yahoo.com/mrss/}"
_RSS_VERSIONS = frozenset({"2.0", "0.91", "0.92"})
# Namespaces whose entry elements feedparser keeps apart from title, link, id, body, author,
# categories and dates (comment counts and links, the original link behind a redirect).
_INERT_NAMESPACES = frozenset(
    {
        "http://purl.org/rss/1.0/modules/slash/",
        "http://wellformedweb.org/CommentAPI/",
        "http://rssnamespace.org/feedburner/ext/1.0",
    }
)
# Media RSS elements feedparser keeps out of those fields: a picture and its credit, and the
# containers that hold only them (a media:title or media:description in them is another matter).
_MEDIA_LEAVES = frozenset({MEDIA + "thumbnail", MEDIA + "credit"})
_MEDIA_CONTAINERS = frozenset({MEDIA + "content", MEDIA + "group"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_ONCE_RSS = frozenset({"link", "guid", "description"})
_ONCE_ATOM = frozenset({ATOM + "id", ATOM + "summary", ATOM + "content"})


class _Decline(Exception):
    pass


def _inert_media(node: ET.Element) -> bool:
    if node.tag in _MEDIA_LEAVES:
        return not len(node)
    if node.tag in _MEDIA_CONTAINERS:
        return not (node.text or "").strip() and all(_inert_media(child) for child in node)
    return False


def _foreign(node: ET.Element) -> None:
    """Decline an entry element of another namespace unless feedparser ignores it for our fields."""
    tag = node.tag
    if not isinstance(tag, str):
        return  # a comment or processing instruction
    if _inert_media(node):
        return
    if tag[:1] == "{" and tag[1:].split("}", 1)[0] in _INERT_NAMESPACES:
        return
    raise _Decline


def _as_feedparser(value: str) -> str:
    """Element text as feedparser hands it out (the end of its ``pop``) for a UTF-8 document.

    Text that is UTF-8 read as latin-1 is read again as UTF-8, and C1 control characters become
    the windows-1252 characters old publishing systems meant: ``&#146;`` is ``’``, ``&#133;`` is
    ``…``. Without this a ``don&#146;t`` would reach the pipeline as a control character, and
    cleaning would make it ``dont``.
    """
    if value.isascii():
        return value  # nothing to repair, and the common case
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_cp1252)


def _raw_text(node: ET.Element | None) -> str | None:
    if node is None:
        return None
    if len(node):
        raise _Decline  # markup inside a text element: feedparser's rules for it are its own
    return (node.text or "").strip()


def _text(node: ET.Element | None) -> str | None:
    raw = _raw_text(node)
    return None if raw is None else _as_feedparser(raw)


def _category(tags: list[dict[str, str | None]], node: ET.Element, value: str | None) -> None:
    """A category the way feedparser records it (``_start_category``, ``_end_category``, ``_add_tag``).

    The element's attributes make a tag (kept once); its text then fills that tag's missing term,
    or makes a tag of its own (kept once). A tag made from attributes is compared before its term
    is filled in, so two equal categories with a domain are both kept, as feedparser keeps them.
    """
    term, scheme, label = node.get("term"), node.get("scheme", node.get("domain")), node.get("label")
    if term or scheme or label:
        tag = {"term": term, "scheme": scheme, "label": label}
        if tag not in tags:
            tags.append(tag)
    if not value:
        return
    if tags and not tags[-1]["term"]:
        tags[-1]["term"] = value
        return
    tag = {"term": value, "scheme": None, "label": None}
    if tag not in tags:
        tags.append(tag)


def _date(value: str | None) -> Any:
    return _parse_date(value) if value else None


def _rss_item(item: ET.Element, base: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    tags: list[dict[str, str | None]] = []
    seen: set[str] = set()
    for child in item:
        tag = child.tag
        if tag in _ONCE_RSS:
            if tag in seen:
                raise _Decline  # feedparser's choice between two links, guids or descriptions is its own
            seen.add(tag)
        if tag == "title":
            entry["title"] = _text(child)
        elif tag == "link":
            value = _text(child)
            if value:
                entry.setdefault("link", _urljoin(base, value))
        elif tag == "guid":
            value = _text(child) or ""
            permalink = (child.get("isPermaLink") or "true").lower() != "false"
            entry["id"] = _urljoin(base, value) if permalink and value else value
            if permalink and value:
                entry["_guidislink"] = True
        elif tag == "description":
            if "content" in entry:
                raise _Decline  # feedparser's summary/content bookkeeping depends on the order
            entry["summary"] = _text_or_markup(child)
        elif tag == CONTENT_ENCODED:
            entry["content"] = [{"value": _text_or_markup(child), "type": "text/html"}]
        elif tag == DC + "language":
            entry["language"] = _text(child)
        elif tag in ("author", DC + "creator"):
            entry["author"] = _text(child)
        elif tag in ("category", DC + "subject"):
            _category(tags, child, _text(child))
        elif tag == "pubDate":
            entry["published_parsed"] = _date(_text(child))
        elif tag == DC + "date":
            entry["updated_parsed"] = _date(_text(child))
        elif not isinstance(tag, str) or tag[:1] != "{":
            if tag in ("source", "enclosure", "comments") or not isinstance(tag, str):
                continue
            raise _Decline  # an RSS element this reader does not map
        else:
            _foreign(child)
    if entry.pop("_guidislink", False) and "link" not in entry:
        entry["link"] = entry["id"]
    if "content" in entry and "summary" not in entry:
        entry["summary"] = entry["content"][0]["value"]  # feedparser copies content to a missing summary
    if "summary" in entry:
        entry["summary_detail"] = {"type": "text/html"}
    if tags:
        entry["tags"] = tags
    return entry


def _text_or_markup(node: ET.Element) -> str:
    if len(node):
        raise _Decline  # unescaped markup inside description: feedparser re-serialises it
    return _as_feedparser((node.text or "").strip())


def _atom_text(node: ET.Element) -> tuple[str, str]:
    kind = (node.get("type") or "text").lower()
    if kind not in ("text", "html") or node.get("src") or node.get("mode") or len(node):
        raise _Decline  # xhtml, out-of-line or base64 content
    return _as_feedparser((node.text or "").strip()), "text/html" if kind == "html" else "text/plain"


def _atom_entry(node: ET.Element, base: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    tags: list[dict[str, str | None]] = []
    seen: set[str] = set()
    for child in node:
        tag = child.tag
        if tag in _ONCE_ATOM:
            if tag in seen:
                raise _Decline  # a second summary is content to feedparser; a second id its own choice
            seen.add(tag)
        if tag == ATOM + "id":
            # feedparser reads an Atom id as a permalink guid: resolved against the feed's URL, and
            # the entry's link when it has no alternate link
            value = _text(child) or ""
            entry["id"] = _urljoin(base, value) if value else value
            if value:
                entry["_guidislink"] = True
        elif tag == ATOM + "title":
            entry["title"], _kind = _atom_text(child)
        elif tag == ATOM + "link":
            rel = child.get("rel") or "alternate"
            if rel == "alternate":
                if (child.get("type") or "text/html") not in _HTML_TYPES:
                    raise _Decline
                href = (child.get("href") or "").strip()
                if href:
                    entry.setdefault("link", _urljoin(base, href))
        elif tag == ATOM + "summary":
            if "content" in entry:
                raise _Decline
            entry["summary"], kind = _atom_text(child)
            entry["summary_detail"] = {"type": kind}
        elif tag == ATOM + "content":
            value, kind = _atom_text(child)
            entry["content"] = [{"value": value, "type": kind}]
        elif tag == ATOM + "author":
            if any(c.tag == ATOM + "email" for c in child) or not any(c.tag == ATOM + "name" for c in child):
                raise _Decline  # feedparser writes "name (email)", or an empty name, by its own rules
            # feedparser keeps an Atom name as written (its text is not "expected text" to it)
            name = _raw_text(next((c for c in child if c.tag == ATOM + "name"), None))
            if name:
                entry["author"] = name  # feedparser keeps the last author's name
        elif tag == ATOM + "category":
            _category(tags, child, _text(child))
        elif tag == ATOM + "published":
            entry["published_parsed"] = _date(_text(child))
        elif tag == ATOM + "updated":
            entry["updated_parsed"] = _date(_text(child))
        elif tag == DC + "language":
            entry["language"] = _text(child)
        elif tag in (ATOM + "rights", ATOM + "contributor", ATOM + "source"):
            continue
        elif isinstance(tag, str) and tag.startswith(ATOM):
            raise _Decline
        else:
            _foreign(child)
    if entry.pop("_guidislink", False) and "link" not in entry:
        entry["link"] = entry["id"]
    if "content" in entry and "summary" not in entry:
        entry["summary"] = entry["content"][0]["value"]
        entry["summary_detail"] = {"type": entry["content"][0]["type"]}
    if tags:
        entry["tags"] = tags
    return entry


def read(document: bytes, base: str) -> tuple[list[dict[str, Any]], str | None] | None:
    """(entries, feed language) of a plain RSS 2.0 / Atom 1.0 document, or None for feedparser."""
    if _urljoin is None or _parse_date is None or _cp1252 is None:
        return None
    try:
        root = parse_xml(document)
    except ET.ParseError:
        return None  # feedparser reads it leniently and says what is wrong
    try:
        if any(XML_BASE in element.attrib for element in root.iter()):
            return None
        if root.tag == "rss" and root.get("version") in _RSS_VERSIONS:
            channel = root.find("channel")
            if channel is None:
                return None
            language = _text(channel.find("language")) or _text(channel.find(DC + "language"))
            return [_rss_item(item, base) for item in channel.iter("item")], language
        if root.tag == ATOM + "feed":
            language = root.get("{http://www.w3.org/XML/1998/namespace}lang")
            return [_atom_entry(entry, base) for entry in root.iter(ATOM + "entry")], language
    except _Decline:
        return None
    return None
