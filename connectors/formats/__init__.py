"""Every source format behind one call: bytes in, raw stories and dead letters out.

``parse_document`` decodes the bytes (recording declared and detected encodings), recognises the
format from the content (a file's suffix only breaks ties), and hands it to the format's module:
RSS/Atom (feedparser), JSON Feed, IPTC ninjs, NewsML-G2, TURAN-style text, raw messages. It never
raises for bad input: a document that cannot be read at all becomes one dead letter with the
reason, a bad item becomes a dead letter of its own, and the good items still come out.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from connectors.delivery import Item
from connectors.encoding import FALLBACK_ENCODINGS, Decoded, EncodingError, decode
from connectors.formats import agency, jsonfeed, newsml, ninjs, syndication
from connectors.formats.common import FormatError, dead, digest
from connectors.safexml import UnsafeXml
from schemas.raw import without_deep_members

__all__ = ["ParsedDocument", "parse_document", "FORMATS"]

log = logging.getLogger(__name__)

FORMATS = ("auto", "syndication", "jsonfeed", "ninjs", "newsml", "text", "raw", "ndjson")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_HTML = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)
_PROLOG = re.compile(r"<\?.*?\?>|<!--.*?-->|<![^>]*>", re.DOTALL)
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)[\s>/]")


@dataclass
class ParsedDocument:
    items: list[Item] = field(default_factory=list)
    format: str = "unknown"
    error: str | None = None
    """Why the whole document was refused (``items`` then holds its one dead letter)."""
    warnings: list[str] = field(default_factory=list)
    """Problems that lost nothing (for example XML read leniently); logged and counted."""
    encoding: dict[str, str | None] | None = None


def _root_name(text: str) -> str:
    match = _ROOT.search(_PROLOG.sub("", text[:8192]))
    return match.group(1).rsplit(":", 1)[-1] if match else ""


def _sniff(text: str, suffix: str) -> str:
    stripped = text.lstrip("\ufeff \t\r\n")
    if suffix in NDJSON_SUFFIXES:
        return "ndjson"
    if stripped[:1] in ("{", "["):
        return "json"
    if stripped[:1] == "<":
        if _HTML.match(stripped):
            return "html"
        return "newsml" if _root_name(stripped) in newsml.ROOTS else "syndication"
    return "text"


def _parse(
    data: bytes,
    decoded: Decoded,
    kind: str,
    *,
    source: str,
    origin: str,
    fetched_at: str,
    allow_text: bool,
    result: ParsedDocument,
) -> list[Item]:
    if kind == "ndjson":
        return list(agency.parse_ndjson(data, source, origin, fetched_at))
    if kind == "html":
        raise FormatError("an HTML page, not a feed or news document")
    if kind == "newsml":
        return list(newsml.parse(decoded, source, origin, fetched_at))
    if kind == "syndication":
        return list(syndication.parse(decoded, source, origin, fetched_at, result.warnings))
    if kind == "text":
        if not allow_text:
            raise FormatError("neither XML nor JSON: not a feed")
        return list(agency.parse_text(data, decoded, source, origin, fetched_at))
    try:
        document: Any = json.loads(decoded.text)
    except ValueError as exc:
        raise FormatError(f"invalid JSON: {exc}") from None
    except RecursionError:  # an unknown member nested too deeply is left out, not fatal
        document, note = without_deep_members(decoded.text)
        if document is None:
            raise FormatError(f"invalid JSON: {note}") from None
        if note:
            result.warnings.append(note)
    if jsonfeed.is_json_feed(document):
        result.format = "jsonfeed"
        return list(jsonfeed.parse(document, decoded, source, origin, fetched_at))
    if ninjs.is_ninjs(document):
        result.format = "ninjs"
        return list(ninjs.parse(document, decoded, source, origin, fetched_at))
    if not allow_text:
        raise FormatError("JSON, but neither a JSON Feed nor IPTC ninjs")
    result.format = "raw"
    return list(agency.parse_raw_messages(document, source, origin, fetched_at))


def parse_document(
    data: bytes,
    *,
    source: str,
    origin: str,
    fetched_at: str,
    content_type: str | None = None,
    suffix: str = "",
    allow_text: bool = False,
    fallback_encodings: tuple[str, ...] | None = None,
) -> ParsedDocument:
    """Stories and dead letters from one document.

    ``allow_text`` admits the agency formats (TURAN text, raw messages), which only files carry;
    a feed URL that answers with plain text is an error, not a story.
    """
    result = ParsedDocument()
    document_key = "doc:" + digest(data)[:32]
    suffix = suffix.lower()
    try:
        if not data.strip():
            raise FormatError("empty document")
        if suffix in NDJSON_SUFFIXES:
            decoded = Decoded("", None, "utf-8")  # decoded line by line
        else:
            try:
                decoded = decode(
                    data, content_type=content_type, fallbacks=fallback_encodings or FALLBACK_ENCODINGS
                )
            except EncodingError as exc:
                raise FormatError(f"undecodable text: {exc}") from None
            result.encoding = decoded.record()
        kind = _sniff(decoded.text, suffix) if suffix not in NDJSON_SUFFIXES else "ndjson"
        if suffix == ".txt" and allow_text:
            kind = "text"
        elif suffix == ".json" and kind != "json":
            raise FormatError("a .json file that is not JSON")
        result.format = kind
        result.items = _parse(
            data,
            decoded,
            kind,
            source=source,
            origin=origin,
            fetched_at=fetched_at,
            allow_text=allow_text,
            result=result,
        )
    except (FormatError, UnsafeXml) as exc:
        result.error = str(exc)
    except RecursionError:
        result.error = "document nested too deeply"
    except Exception as exc:  # a parser library failing on hostile input must not stop the connector
        log.exception("parser failed on %s", origin)
        result.error = f"parser failed: {exc.__class__.__name__}: {exc}"
    if result.error is not None:
        result.items = [dead(document_key, source, origin, result.error, data)]
    return result
