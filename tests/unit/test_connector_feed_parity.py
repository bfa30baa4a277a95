"""Feeds on real bytes: both RSS/Atom paths give the same stories, ids hold without guid or link,
repeated guids lose nothing silently, and text reads right whatever the encoding.

The corpus is ``tests/cases/connectors/feeds/``: real-shaped feeds (Media RSS, iTunes, Dublin
Core, Atom with several authors, entities and typography, undeclared legacy encodings with real
headlines, UTF-16/32 without a byte-order mark).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.connectors import write_feeds
from connectors.encoding import decode, xml_as_utf8
from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
from connectors.fetch import Limits
from connectors.formats import fastfeed, parse_document
from schemas import validate_raw
from tests.conftest import SAMPLES
from wirestream.localhttp import serve_folder

CASES = Path(__file__).resolve().parent.parent / "cases" / "connectors"
FEEDS = CASES / "feeds"
ORIGIN = "https://wire.example/feed.xml"
NOW = "2024-05-06T12:00:00.000000Z"
ENCODED = json.loads((FEEDS / "encodings.json").read_text(encoding="utf-8"))


def parse(data: bytes, suffix: str = ".rss", fetched_at: str = NOW):
    return parse_document(data, source="wire", origin=ORIGIN, fetched_at=fetched_at, suffix=suffix)


def outcome(path: Path) -> list[tuple]:
    """Every item of a document, field by field: key, story and dead-letter reason."""
    parsed = parse(path.read_bytes(), path.suffix)
    assert parsed.error is None, (path.name, parsed.error)
    return [(i.key, i.story, i.dead_letter.reason if i.dead_letter else None) for i in parsed.items]


def corpus(tmp_path: Path) -> list[Path]:
    bench = tmp_path / "bench"
    bench.mkdir()
    write_feeds(bench, 2, 5)
    xml = (".rss", ".rdf", ".atom", ".xml")
    return [
        *sorted(p for p in FEEDS.iterdir() if p.suffix in xml),
        *sorted(p for p in (CASES / "formats").iterdir() if p.suffix in xml and p.name != "newsml-g2.xml"),
        *sorted(p for p in (CASES / "hostile").iterdir() if p.suffix == ".rss"),  # read, if leniently
        *sorted((SAMPLES / "feeds").iterdir()),
        *sorted(bench.iterdir()),
    ]


def test_fast_path_and_feedparser_give_the_same_stories_on_every_feed(tmp_path, monkeypatch):
    documents = corpus(tmp_path)
    fast = {p: outcome(p) for p in documents}
    read_fast = {p.name for p in documents if fastfeed.read(xml_as_utf8(decode(p.read_bytes()).text), ORIGIN)}
    # Plain feeds and pictures with credits stay on the fast path; Media RSS text, iTunes elements
    # and Atom e-mails go to feedparser.
    assert {
        "dublin-core.rss",
        "typography.rss",
        "no-identifier.rss",
        "repeated-categories.rss",
        "repeated-categories.atom",
        "rss-edge-cases.rss",
        "media-credits.rss",
        "media-credits.atom",
        "atom-edge-cases.atom",
        "windows-1252-references.rss",
        "windows-1252-references.atom",
        "undeclared-gb2312.rss",
    } <= read_fast
    assert not {"media-description.rss", "podcast-itunes.rss", "atom-authors.atom"} & read_fast
    monkeypatch.setattr(fastfeed, "read", lambda document, base: None)
    for path in documents:
        slow = outcome(path)
        assert len(fast[path]) == len(slow), path.name
        for one, other in zip(fast[path], slow, strict=True):
            assert one == other, path.name


def stories(name: str) -> list[dict]:
    parsed = parse((FEEDS / name).read_bytes())
    assert parsed.error is None
    assert all(i.story is not None and validate_raw(i.story) == [] for i in parsed.items)
    return [i.story for i in parsed.items]


def test_media_description_is_the_body_when_there_is_no_other_text():
    clips = stories("media-description.rss")
    assert clips[0]["body"].startswith("The transport minister proposes")
    assert clips[0]["categories"] == ["Politics"]
    assert clips[1]["body"].startswith("The head of the weather agency")
    assert clips[1]["byline"] == "Weather desk"
    assert clips[2]["body"] == "The description is the body." and clips[2]["summary"] is None
    photo = parse((FEEDS / "atom-authors.atom").read_bytes(), ".atom").items[1].story
    assert photo["body"] == "Fishermen bring in the morning catch at the harbour."


def test_a_photo_caption_never_replaces_the_description():
    story, photo = stories("photo-captions.rss")
    assert story["body"] == "Three ships carrying corn left port on Saturday, the first convoy in weeks."
    assert story["byline"] == "Marc Santos and Olena Koval" and story["categories"] == ["Ukraine"]
    assert (photo["body"], photo["body_format"]) == ("<p>Fishing boats return at dawn.</p>", "text/html")


def test_picture_credits_are_not_bylines():
    grain, heat = stories("media-credits.rss")
    assert (grain["byline"], heat["byline"]) == ("Dan Sabbagh in Kyiv", "Staff and agencies")
    assert grain["categories"] == ["Ukraine", "Commodities"]
    pictures = [i.story for i in parse((FEEDS / "media-credits.atom").read_bytes(), ".atom").items]
    assert [p["byline"] for p in pictures] == ["Picture desk", "Night desk"]


def test_itunes_author_summary_and_keywords_are_kept():
    episode, second = stories("podcast-itunes.rss")
    assert episode["byline"] == "Maria Lopez"
    assert episode["body"].startswith("Ships leave Odesa again")
    assert episode["categories"] == ["grain", "shipping", "prices"]
    assert second["categories"] == ["Politics", "Referendums"]


def test_an_atom_id_is_a_permalink_when_the_entry_has_no_link():
    entries = [i.story for i in parse((FEEDS / "atom-edge-cases.atom").read_bytes(), ".atom").items]
    assert (entries[1]["uri"], entries[1]["url"]) == ("https://wire.example/news/2",) * 2
    assert (entries[2]["uri"], entries[2]["url"]) == ("urn:metro:3",) * 2
    assert entries[3]["url"] == "https://wire.example/stories/4"  # an alternate link wins


@pytest.mark.parametrize("name", ["repeated-categories.rss", "repeated-categories.atom"])
def test_a_repeated_category_is_kept_once_as_feedparser_keeps_it(name):
    (story,) = [i.story for i in parse((FEEDS / name).read_bytes(), Path(name).suffix).items]
    if name.endswith(".rss"):  # a category with a domain is a tag of its own, kept each time
        assert story["categories"] == ["Markets", "Markets", "Markets", "Commodities", "Grain"]
    else:  # Atom terms are taken as written; scheme and label tell tags apart
        assert story["categories"] == ["Markets", "Markets", "Markets", " Commodities "]


def test_entries_without_guid_or_link_get_a_stable_id_from_their_content():
    first = stories("no-identifier.rss")
    again = [
        item.story
        for item in parse((FEEDS / "no-identifier.rss").read_bytes(), fetched_at=NOW[:-8] + "9Z").items
    ]
    assert len(first) == 3 and all(s["id"] and s["uri"] is None and s["url"] is None for s in first)
    # The same notice on another day is another story; a later fetch gives the same ids.
    assert len({s["id"] for s in first}) == 3
    assert [s["id"] for s in again] == [s["id"] for s in first]
    changed = (FEEDS / "no-identifier.rss").read_bytes().replace(b"9:00 to 13:00", b"9:00 to 14:00", 1)
    assert parse(changed).items[0].story["id"] != first[0]["id"]


def test_a_reused_guid_with_other_content_is_a_story_of_its_own():
    items = parse((FEEDS / "duplicate-guid.rss").read_bytes()).items
    bridge, school, repeat = (i.story for i in items)
    assert bridge["id"] != school["id"] and school["headline"] == "School year starts a week late"
    assert repeat == bridge and items[2].key == items[0].key  # the exact repeat keeps the id


@dataclass
class _Topics:
    raw_topic: str = "raw"
    dlq_topic: str = "dlq"
    bootstrap_servers: str = "127.0.0.1:1"


class _Sent:
    ok = True


class _Kafka:
    """Acknowledges everything and remembers what it was sent."""

    def __init__(self) -> None:
        self.config = _Topics()
        self.stories: list[dict] = []

    def publish(self, story: dict) -> _Sent:
        self.stories.append(story)
        return _Sent()

    def dead_letter(self, letter: object) -> _Sent:
        return _Sent()

    def wait(self, future: _Sent, timeout_s: float) -> None:
        return None

    def reachable(self, timeout_s: float = 5.0) -> bool:
        return True


def test_an_exact_repeat_is_published_once_and_counted_as_a_duplicate_id(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "region.rss").write_bytes((FEEDS / "duplicate-guid.rss").read_bytes())
    kafka = _Kafka()
    settings = FeedSettings(limits=Limits(allow_private=True, deadline_s=5), jitter=0)
    with (
        serve_folder(folder) as base,
        FeedConnector(
            kafka,  # type: ignore[arg-type]
            tmp_path / "state",
            [FeedSpec(url=f"{base}/region.rss", name="region")],
            settings,
        ) as connector,
    ):
        report = connector.poll(connector.feeds[0])
        record = connector.store.get("region")
    assert report.status == "ok" and report.report.published == 2
    assert [s["headline"] for s in kafka.stories] == [
        "Bridge closed after inspection",
        "School year starts a week late",
    ]
    assert record.errors == {"duplicate_id": 1}


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_undeclared_and_wide_encodings_read_right(name):
    expected = ENCODED[name]
    parsed = parse((FEEDS / name).read_bytes())
    assert parsed.error is None
    (story,) = [i.story for i in parsed.items]
    assert (story["headline"], story["body"]) == (expected["headline"], expected["body"])


def test_typographic_characters_and_entities_are_preserved():
    plain, numeric, cdata = stories("typography.rss")
    assert plain["headline"] == "We don’t know yet… and that’s fine"
    assert plain["body"] == "“Wait and see” – the minister’s words, 5 °C colder."
    assert numeric["headline"] == "Numeric references: don’t … “quoted”"
    assert numeric["body"] == "<p>It&rsquo;s &ldquo;escaped HTML&rdquo; &hellip;</p>"  # HTML, as sent
    assert "didn’t" in cdata["body"] and "&hellip;" in cdata["body"]
    (legacy,) = stories("html-entities.rss")
    assert legacy["headline"] == "Council won’t delay the vote…"
    assert legacy["body"] == "“We’re ready,” the mayor said – café owners agree."


@pytest.mark.parametrize("name", ["windows-1252-references.rss", "windows-1252-references.atom"])
def test_windows_1252_code_points_written_as_references_are_the_characters_meant(name):
    story = parse((FEEDS / name).read_bytes(), Path(name).suffix).items[0].story
    assert story["headline"] == "Mayor: “We don’t need a referendum” …"  # the closing … too
    assert story["body"] == "<p>It’s the council’s call, he said.</p>"
    assert story["byline"] == "J–P Martin" and story["categories"] == ["City–Hall"]
    assert not any("\x80" <= c <= "\x9f" for c in json.dumps(story, ensure_ascii=False))


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252"])
def test_utf8_bytes_under_a_single_byte_charset_are_read_as_utf8(charset):
    data = (FEEDS / "typography.rss").read_bytes()
    parsed = parse_document(
        data, source="wire", origin=ORIGIN, fetched_at=NOW, content_type=f"text/xml; charset={charset}"
    )
    assert parsed.items[0].story["headline"] == "We don’t know yet… and that’s fine"
    assert parsed.encoding == {"declared": charset, "detected": "utf-8"}
