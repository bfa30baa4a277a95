"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0, read by feedparser: one raw story per entry.

The document reaches feedparser already decoded (see ``connectors.encoding``), re-encoded as UTF-8
and screened for entity declarations (``connectors.safexml``). feedparser is given a stream, never
bytes: it treats a bytes argument that names a file or URL as something to open. HTML is passed
through unsanitised: the raw message keeps what the source sent, and the pipeline cleans it.

An entry's id comes from its guid (or Atom id), else its link, else its content: the hash of its
title, dates and text, so an entry with neither guid nor link keeps one id across polls instead of
becoming a dead letter. Two entries of one feed that share a guid but differ in content are both
kept: the second one's id adds its content hash. An exact repeat keeps the id and is published
once (the connector counts it as a duplicate id).

The body is the entry's content, else its description (summary), else its Media RSS description:
a photo caption beside a description stays out of the body.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import Any

import feedparser
from feedparser.namespaces import mediarss

from connectors.delivery import Item
from connectors.encoding import Decoded, xml_as_utf8
from connectors.formats import fastfeed
from connectors.formats.common import (
    FormatError,
    checked,
    entry_payload,
    identity,
    language,
    text,
    when_struct,
)
from connectors.safexml import screen
from schemas import RAW_SCHEMA_VERSION

_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")
_C1 = re.compile("[\x80-\x9f]")
_C1_REFERENCE = re.compile(r"&#(?:0*(1[2-5][0-9])|[xX]0*([89][0-9a-fA-F]));")


def _start_media_description(self: Any, attrs_d: dict[str, str]) -> None:
    kind = "text/html" if (attrs_d.get("type") or "").lower() == "html" else "text/plain"
    self._get_context().setdefault("media_description_detail", {"type": kind})
    self.push("media_description", 1)


def _end_media_description(self: Any) -> None:
    self.pop("media_description")  # stored by feedparser as the entry's ``media_description``


# feedparser reads <media:description> as a second <description>: an item with a description and
# a photo caption would get the caption as its content, so as its body. Recorded apart instead,
# a caption is the body only when the entry has no other text (Media RSS: the media's description).
mediarss.Namespace._start_media_description = _start_media_description
mediarss.Namespace._end_media_description = _end_media_description


def _body(entry: Any) -> tuple[str, str]:
    content = entry.get("content")
    if content:
        return text(content[0].get("value")) or "", content[0].get("type", "text/html")
    summary = text(entry.get("summary"))
    if summary:
        return summary, entry.get("summary_detail", {}).get("type", "text/html")
    caption = text(entry.get("media_description"))
    if caption:
        return caption, entry.get("media_description_detail", {}).get("type", "text/plain")
    return "", "text/plain"


def content_hash(message: dict[str, Any]) -> str:
    """Hash of what an entry says (headline, dates, body, summary): the same text, the same hash."""
    parts = [message.get(k) or "" for k in ("headline", "firstcreated", "versioncreated", "body", "summary")]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def story_from_entry(entry: Any, source: str, fetched_at: str) -> dict[str, Any]:
    """The raw message for one feedparser entry (not yet validated)."""
    guid = text(entry.get("id")) or text(entry.get("link")) or ""
    body, body_type = _body(entry)
    body_format = (
        "text/html"
        if body_type in ("text/html", "application/xhtml+xml") and _TAG.search(body)
        else "text/plain"
    )
    message: dict[str, Any] = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": identity(source, guid),
        "source": source,
        "uri": text(entry.get("id")),
        "url": text(entry.get("link")),
        "headline": (text(entry.get("title")) or "").strip(),
        "body": body.strip(),
        "body_format": body_format,
        "summary": text(entry.get("summary")) if entry.get("content") else None,
        "byline": text(entry.get("author")),
        "firstcreated": when_struct(entry.get("published_parsed") or entry.get("created_parsed"))
        or when_struct(entry.get("updated_parsed")),
        "versioncreated": when_struct(entry.get("updated_parsed") or entry.get("published_parsed")),
        "fetched_at": fetched_at,
        "categories": [
            t["term"] for t in entry.get("tags") or [] if isinstance(t.get("term"), str) and t["term"]
        ],
    }
    if not guid and (message["headline"] or message["body"]):
        message["id"] = identity(source, "content:" + content_hash(message))
    entry_language = language(entry.get("language"))
    if entry_language:
        message["language"] = entry_language
    return message


def _windows_1252(match: re.Match[str]) -> str:
    number = match.group(1) or match.group(2)
    code = int(number, 16) if match.group(2) else int(number)
    if not 0x80 <= code <= 0x9F:
        return match.group(0)
    try:
        return bytes([code]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d: no character in windows-1252 either
        return match.group(0)


def c1_as_windows_1252(text: str) -> str:
    """C1 control characters (raw or as ``&#133;``/``&#x85;``) as the windows-1252 characters meant.

    Old publishing systems write windows-1252 code points as if they were Unicode: ``&#146;`` for
    ``’``, ``&#133;`` for ``…``. HTML reads them so (the HTML standard's numeric reference table),
    and so does feedparser, but only after stripping the text, and U+0085 is whitespace to
    Python: a title ending in ``&#133;`` would lose its ellipsis. Mapping them before either parser
    sees the document keeps every character.
    """
    if "&#" not in text and not _C1.search(text):
        return text
    text = _C1_REFERENCE.sub(_windows_1252, text)
    return _C1.sub(lambda m: _windows_1252_char(m.group(0)), text)


def _windows_1252_char(char: str) -> str:
    try:
        return bytes([ord(char)]).decode("cp1252")
    except UnicodeDecodeError:
        return char


def parse(decoded: Decoded, source: str, origin: str, fetched_at: str, warnings: list[str]) -> Iterator[Item]:
    document = xml_as_utf8(c1_as_windows_1252(decoded.text))
    screen(document)
    fast = fastfeed.read(document, origin)
    if fast is not None:
        entries, fast_language = fast
        yield from _stories(entries, language(fast_language), decoded, source, origin, fetched_at)
        return
    parsed = feedparser.parse(
        io.BytesIO(document),
        response_headers={"content-type": "application/xml; charset=utf-8", "content-location": origin},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = parsed.get("bozo_exception")
    if not parsed.entries:
        if problem is not None:
            raise FormatError(f"not a parseable RSS/Atom feed: {problem}")
        if not parsed.get("version"):
            raise FormatError("not an RSS or Atom feed (no channel, feed or items)")
        return  # a well-formed feed that has no entries right now
    if problem is not None:
        warnings.append(f"feed is not well-formed XML, read leniently: {problem}")
    yield from _stories(
        parsed.entries, language(parsed.feed.get("language")), decoded, source, origin, fetched_at
    )


def _stories(
    entries: list[Any], feed_language: str | None, decoded: Decoded, source: str, origin: str, fetched_at: str
) -> Iterator[Item]:
    seen: dict[str, str] = {}  # story id -> content hash of the first entry with it
    for index, entry in enumerate(entries):
        message = story_from_entry(entry, source, fetched_at)
        if message["id"]:
            fingerprint = content_hash(message)
            first = seen.setdefault(message["id"], fingerprint)
            if first != fingerprint:  # a reused guid on a different story: a story of its own
                guid = text(entry.get("id")) or text(entry.get("link")) or ""
                message["id"] = identity(source, f"{guid}#content:{fingerprint}")
        if feed_language and "language" not in message:
            message["language"] = feed_language
        message["encoding"] = decoded.record()
        yield checked(message, f"{origin}#entry-{index}", entry_payload(entry))
