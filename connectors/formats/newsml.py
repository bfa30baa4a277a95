"""IPTC NewsML-G2 XML: a ``newsItem``, or a ``newsMessage`` holding several, one raw story each.

Read with ElementTree behind defusedxml (entities refused, nothing external fetched). The text of
``inlineXML`` (NITF or XHTML) goes to the pipeline as HTML; ``inlineData`` as plain text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from connectors.delivery import Item
from connectors.encoding import Decoded, xml_as_utf8
from connectors.formats.common import FormatError, checked, dead, digest, identity, language, when
from connectors.safexml import parse as parse_xml
from schemas import RAW_SCHEMA_VERSION

NAMESPACE = "http://iptc.org/std/nar/2006-10-01/"
ROOTS = frozenset({"newsItem", "newsMessage"})
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _find(parent: ET.Element | None, *path: str) -> ET.Element | None:
    node = parent
    for name in path:
        if node is None:
            return None
        node = next((child for child in node if _local(child.tag) == name), None)
    return node


def _text(node: ET.Element | None) -> str | None:
    if node is None:
        return None
    value = "".join(node.itertext()).strip()
    return value or None


def _inner_html(node: ET.Element) -> str:
    """Children of ``node`` serialised as HTML without namespace prefixes."""
    copy = ET.fromstring(ET.tostring(node))
    for element in copy.iter():
        element.tag = _local(element.tag)
        element.attrib = {_local(k): v for k, v in element.attrib.items()}
    body = _find(copy, "nitf", "body", "body.content") or _find(copy, "html", "body") or copy
    parts = [body.text or ""] + [ET.tostring(child, encoding="unicode", method="html") for child in body]
    return "".join(parts).strip()


def _body(item: ET.Element) -> tuple[str, str]:
    content_set = _find(item, "contentSet")
    if content_set is None:
        return "", "text/plain"
    for node in content_set:
        kind = (node.get("contenttype") or "").lower()
        if _local(node.tag) == "inlineXML":
            return _inner_html(node), "text/html"
        if _local(node.tag) == "inlineData":
            return (node.text or "").strip(), "text/html" if "html" in kind else "text/plain"
    return "", "text/plain"


def story_from_item(item: ET.Element, source: str, fetched_at: str) -> dict[str, Any]:
    guid = (item.get("guid") or "").strip()
    item_meta = _find(item, "itemMeta")
    content_meta = _find(item, "contentMeta")
    body, body_format = _body(item)
    subjects = [
        name
        for subject in (content_meta if content_meta is not None else [])
        if _local(subject.tag) == "subject"
        for name in [_text(_find(subject, "name"))]
        if name
    ]
    language_node = _find(content_meta, "language")
    item_language = language(language_node.get("tag") if language_node is not None else item.get(_XML_LANG))
    summary = next(
        (
            _text(node)
            for node in (content_meta if content_meta is not None else [])
            if _local(node.tag) == "description"
        ),
        None,
    )
    message: dict[str, Any] = {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": identity(source, guid),
        "source": source,
        "uri": guid or None,
        "url": None,
        "headline": _text(_find(content_meta, "headline")) or "",
        "body": body,
        "body_format": body_format,
        "summary": summary,
        "byline": _text(_find(content_meta, "by")),
        "firstcreated": when(_text(_find(item_meta, "firstCreated")))
        or when(_text(_find(content_meta, "contentCreated"))),
        "versioncreated": when(_text(_find(item_meta, "versionCreated"))),
        "fetched_at": fetched_at,
        "categories": subjects,
    }
    if item_language:
        message["language"] = item_language
    return message


def parse(decoded: Decoded, source: str, origin: str, fetched_at: str) -> Iterator[Item]:
    document = xml_as_utf8(decoded.text)
    try:
        root = parse_xml(document)
    except ET.ParseError as exc:
        raise FormatError(f"not well-formed NewsML-G2 XML: {exc}") from None
    if _local(root.tag) == "newsItem":
        items = [root]
    elif _local(root.tag) == "newsMessage":
        items = [node for node in root.iter() if _local(node.tag) == "newsItem"]
    else:
        raise FormatError(f"not NewsML-G2: the root element is {_local(root.tag)!r}")
    if not items:
        raise FormatError("NewsML-G2 newsMessage without any newsItem")
    for index, item in enumerate(items):
        where = f"{origin}#newsItem[{index}]"

        def payload(item: ET.Element = item) -> bytes:
            return ET.tostring(item, encoding="utf-8")

        try:
            message = story_from_item(item, source, fetched_at)
        except RecursionError:
            reason = "NewsML-G2 item nested too deeply"
            yield dead("dl:" + digest(document)[:32], source, where, reason, document)
            continue
        message["encoding"] = decoded.record()
        if not message["uri"]:
            body = payload()
            yield dead("dl:" + digest(body)[:32], source, where, "newsItem has no guid (required)", body)
            continue
        yield checked(message, where, payload)
