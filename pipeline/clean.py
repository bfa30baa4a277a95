"""Clean stories: scraped or HTML bodies become plain story text plus byline, dateline and credit.

Furniture is recognised by shape and vocabulary (short prompt-like lines, section labels, widgets),
never by the lines of one site, and a long sentence is never treated as furniture: losing a line of
the story is worse than keeping a stray widget label.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import apache_beam as beam

from schemas import CLEAN_SCHEMA_VERSION, parse_rfc3339

__all__ = [
    "CleanStories",
    "CleanText",
    "clean_text",
    "normalize_text",
    "content_hash",
    "detect_language",
    "clean_story",
]

_QUOTES = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "\u2013",
        "\u2015": "\u2014",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\ufeff": None,
        "\u00ad": None,
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t]+")
_BROKEN_BRACKET = re.compile(r"\[([^\[\]\n]{1,60})\[")
_SENTENCE_END = re.compile(r"[.!?…:;\"')»]$")
_ABBREVIATION = re.compile(r"^(?:[A-Za-zА-Яа-я]\.)+$|^(?:Jr|Sr|St|Mt|Ft)\.$")
_WORD = re.compile(r"\w+", re.UNICODE)

_FURNITURE = [
    r"(leave|add|post|write) a (review|comment|reply)",
    r"\d* ?comments?( \(\d+\))?",
    r"(follow|find|like|join) us( on .{0,40})?",
    r"(subscribe|sign up|register)( (to|for|now|today)( .{0,40})?)?",
    r"(get|receive) (our|the) newsletter.{0,40}",
    r"share( (this|the))?( (article|story|post|page))?( (on|via) .{0,30})?",
    r"(tweet|email|e-mail|print|copy link|whatsapp|telegram|facebook|twitter|x|linkedin)( this)?",
    r"(read|see) (more|also|next|full story)([:\s-].{0,60})?",
    r"(related|recommended|more)( (news|articles|stories|posts|content|on this( topic)?))?",
    r"(you (may|might) also like|most (read|popular|viewed)|top stories|editor'?s picks?)",
    r"(latest|breaking|all) news",
    r"news ?(line|feed|ticker)",
    r"(advertisement|sponsored( content)?|ad)",
    r"(back to top|skip to (main )?content|home|menu|search)",
    r"(all rights reserved.*|(©|copyright) .{0,60})",
    r"(accept|reject|manage) (all )?cookies",
    r"cookie (policy|settings|preferences)",
    r"(tags?|keywords?):.{0,80}",
    # Russian and Azerbaijani widgets on the agencies' own sites
    r"(оставить|написать|добавить) (отзыв|комментарий)",
    r"(подписывайтесь|следите за нами|мы в соцсетях).{0,40}",
    r"(поделиться|читайте также.{0,60}|лента новостей|все новости|реклама)",
    r"(rəy bildirin|rəy yazın|bizi sosial şəbəkələrdə izləyin|paylaş|xəbər lenti|bütün xəbərlər|həmçinin oxuyun.{0,60})",
]
_FURNITURE_RE = re.compile(r"^(?:" + "|".join(_FURNITURE) + r")[.!:]?$", re.IGNORECASE)
_COOKIE_BANNER = re.compile(
    r"\bcookies?\b.*\b(use|accept|consent|policy|agree)\b|\b(use|accept|consent|agree)\b.*\bcookies?\b",
    re.IGNORECASE,
)
_SECTIONS = {
    "politics",
    "economy",
    "economics",
    "business",
    "world",
    "society",
    "sport",
    "sports",
    "culture",
    "region",
    "regions",
    "opinion",
    "analytics",
    "analysis",
    "interview",
    "local",
    "science",
    "technology",
    "tech",
    "health",
    "entertainment",
    "lifestyle",
    "news",
    "top news",
    "world news",
    "europe",
    "asia",
    "caucasus",
    "middle east",
    "americas",
    "africa",
    "markets",
    "finance",
    "energy",
    "security",
    "defense",
    "diplomacy",
    "in-depth",
    "features",
    "editorial",
    "commentary",
    "политика",
    "экономика",
    "общество",
    "в мире",
    "регион",
    "культура",
    "спорт",
    "аналитика",
    "интервью",
    "siyasət",
    "iqtisadiyyat",
    "cəmiyyət",
    "dünya",
    "mədəniyyət",
    "idman",
    "analitika",
    "müsahibə",
}
_WIRE_DATELINE = re.compile(
    r"^(?P<place>[A-ZÀ-ÝА-ЯƏĞİÖŞÇÜ][A-ZÀ-ÝА-ЯƏĞİÖŞÇÜ.'\- ]{1,40}?)"
    r"(?:,\s*(?P<date>[A-Z][a-z]{2,8}\.? \d{1,2}))?"
    r"\s*\((?P<agency>[A-Za-z][A-Za-z&.\- ]{0,24})\)\s*[-\u2013\u2014]+\s*"
)
_CORRESPONDENT_CREDIT = re.compile(
    r"\b(?P<agency>[A-Z][A-Za-z]{1,20})'s (?:[A-Z][\w.]* ){0,3}(?:correspondent|bureau) reports\b"
)
_NAME_TOKEN = re.compile(r"^[A-ZÀ-ÝА-ЯƏĞİÖŞÇÜ][a-zà-ÿа-яəğıöşçü'\-]+\.?$|^[A-Z]\.$")
_BY = re.compile(r"^(by|от|müəllif:?)\s+(?P<name>.{2,80})$", re.IGNORECASE)


@dataclass
class CleanText:
    body: str
    byline: str | None = None
    dateline: str | None = None
    credit: str | None = None
    section: str | None = None
    removed: list[str] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """NFC, plain quotes, one kind of each dash, no control or zero-width characters, tidy spaces."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.translate(_QUOTES))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines)


class _TextOf(HTMLParser):
    _BLOCK = {
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "tr",
        "section",
        "article",
        "figcaption",
    }
    _SKIP = {"script", "style", "noscript", "template", "nav", "aside", "footer", "form", "button"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data.replace("\n", " "))


def html_to_text(markup: str) -> str:
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    return html.unescape("".join(parser.parts))


def _key(line: str) -> str:
    return " ".join(_WORD.findall(line.casefold()))


def _is_furniture(line: str) -> bool:
    words = len(line.split())
    if words <= 12 and _FURNITURE_RE.match(line.strip(" |•·>»-")):
        return True
    return words <= 40 and bool(_COOKIE_BANNER.search(line)) and "cookie" in line.casefold()


def _is_section_label(line: str) -> bool:
    return line.casefold().strip(" .:|") in _SECTIONS


def _ends_sentence(line: str) -> bool:
    if not _SENTENCE_END.search(line):
        return False
    # "Washington D.C." or "Jr." end in a full stop without ending a sentence.
    return not (line.endswith(".") and _ABBREVIATION.match(line.split()[-1]))


def _is_short_label(line: str) -> bool:
    return len(line) <= 60 and len(line.split()) <= 5 and not _ends_sentence(line) and not line[:1].isdigit()


def _looks_like_name(line: str) -> bool:
    tokens = line.split()
    return 2 <= len(tokens) <= 4 and all(_NAME_TOKEN.match(t) for t in tokens)


def clean_text(headline: str, body: str, body_format: str = "text/plain") -> CleanText:
    """Story text without site furniture, with the agency's signature split into byline and dateline."""
    if body_format == "text/html":
        body = html_to_text(body)
    body = _BROKEN_BRACKET.sub(r"[\1]", normalize_text(body))
    head_key = _key(normalize_text(headline))
    result = CleanText(body="")
    kept: list[str] = []
    for line in body.split("\n"):
        if not line:
            continue
        if head_key and _key(line) == head_key or _is_furniture(line):
            result.removed.append(line)
        else:
            kept.append(line)

    # The tail after the last paragraph holds the signature and section labels.
    signature: list[str] = []
    while kept and _is_short_label(kept[-1]) and len(signature) < 3:
        line = kept.pop()
        if _is_section_label(line):
            result.section = result.section or line
            result.removed.append(line)
        else:
            signature.insert(0, line)
    if signature and len(signature) <= 2 and kept:
        if _looks_like_name(signature[0]):
            result.byline = signature[0]
            result.dateline = signature[1] if len(signature) == 2 else None
        elif len(signature) == 1:
            result.dateline = signature[0]
        else:
            kept.extend(signature)
    else:
        kept.extend(signature)

    if kept:
        by = _BY.match(kept[0])
        if by and _looks_like_name(by.group("name")):
            result.byline = result.byline or by.group("name")
            kept.pop(0)
    if kept:
        wire = _WIRE_DATELINE.match(kept[0])
        if (
            wire
            and any(c.isalpha() for c in wire.group("place"))
            and wire.group("place").upper() == wire.group("place")
        ):
            place = wire.group("place").strip()
            result.dateline = result.dateline or (
                f"{place}, {wire.group('date')}" if wire.group("date") else place
            )
            result.credit = wire.group("agency").strip()
            kept[0] = kept[0][wire.end() :]
    if result.credit is None:
        for line in kept[:3]:
            credit = _CORRESPONDENT_CREDIT.search(line)
            if credit:
                result.credit = credit.group("agency")
                break
    result.body = "\n\n".join(kept)
    return result


def content_hash(text: str) -> str:
    """Identity of the words, blind to case, punctuation and spacing."""
    return hashlib.sha256(_key(text).encode("utf-8")).hexdigest()[:32]


_AZ_LETTERS = set("əğıöşçüƏĞIÖŞÇÜ")


def detect_language(text: str) -> str | None:
    letters = [c for c in text[:4000] if c.isalpha()]
    if not letters:
        return None
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    if cyrillic / len(letters) > 0.4:
        return "ru"
    if sum(1 for c in letters if c in "əƏ") / len(letters) > 0.005:
        return "az"
    return "en"


def _ts(value: str | None) -> datetime | None:
    return parse_rfc3339(value)


def clean_story(story: dict[str, Any], pipeline_version: str) -> dict[str, Any]:
    """A parsed raw story (with Kafka provenance) as a clean row without dedup or topics."""
    headline = normalize_text(story.get("headline") or "").replace("\n", " ").strip()
    cleaned = clean_text(headline, story.get("body") or "", story.get("body_format", "text/plain"))
    categories = list(story.get("categories") or [])
    if cleaned.section and cleaned.section not in categories:
        categories.append(cleaned.section)
    kafka_ts = story.get("kafka_timestamp_ms")
    return {
        "id": story["id"],
        "source": story["source"],
        "uri": story.get("uri"),
        "url": story.get("url"),
        "headline": headline,
        "body": cleaned.body,
        "byline": story.get("byline") or cleaned.byline,
        "dateline": cleaned.dateline,
        "credit": cleaned.credit,
        "language": story.get("language") or detect_language(headline + "\n" + cleaned.body),
        "categories": categories,
        "word_count": len(cleaned.body.split()),
        "content_hash": content_hash(cleaned.body),
        "duplicate_of": None,
        "cluster_id": None,
        "topics": [],
        "firstcreated": _ts(story.get("firstcreated")),
        "versioncreated": _ts(story.get("versioncreated")),
        "fetched_at": _ts(story.get("fetched_at")),
        "kafka_topic": story.get("kafka_topic"),
        "kafka_partition": story.get("kafka_partition"),
        "kafka_offset": story.get("kafka_offset"),
        "kafka_timestamp": datetime.fromtimestamp(kafka_ts / 1000, tz=UTC) if kafka_ts is not None else None,
        "pipeline_version": pipeline_version,
        "schema_version": CLEAN_SCHEMA_VERSION,
    }


class CleanStories(beam.PTransform):
    """Parsed raw stories in, clean rows out (bounded or unbounded; one row per input, no loss)."""

    def __init__(self, pipeline_version: str) -> None:
        super().__init__()
        self._version = pipeline_version

    def expand(self, stories: beam.PCollection) -> beam.PCollection:
        return stories | "CleanText" >> beam.Map(clean_story, self._version)
