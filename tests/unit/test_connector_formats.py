"""Every source format, the fast RSS/Atom reader against feedparser, encodings and the XML screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.connectors import write_feeds
from connectors.encoding import decode, xml_as_utf8
from connectors.formats import fastfeed, parse_document
from connectors.safexml import UnsafeXml, screen
from schemas import validate_raw
from tests.conftest import SAMPLES

CASES = Path(__file__).resolve().parent.parent / "cases" / "connectors" / "formats"
NOW = "2022-07-29T18:00:00.000000Z"
ORIGIN = "https://wire.example/feed.xml"

# file -> (format, [(headline, body_format, language, byline, categories)] per story)
GOLDEN = {
    "rss-2.0.rss": (
        "syndication",
        [
            ("Full story with content", "text/html", "ru", "Alex Raufoglu", ["Politics", "Diplomacy"]),
            ("Guid that is not a link", "text/html", "ru", "desk@wire.example (Wire Desk)", []),
            ("Only a link", "text/plain", "ru", None, []),
            ("Permalink guid, no link", "text/plain", "ru", None, []),
        ],
    ),
    "rss-0.91.rss": ("syndication", [("An old-style item", "text/plain", "en", None, [])]),
    "rss-1.0.rdf": ("syndication", [("An RSS 1.0 item", "text/plain", "en", None, ["Economy"])]),
    "atom-0.3.atom": ("syndication", [("An Atom 0.3 entry", "text/plain", None, None, [])]),
    "atom-1.0.atom": (
        "syndication",
        [
            ("Grain deal <em>extended</em>", "text/html", "az", "Desk Two", ["Economy"]),
            ("Plain text entry", "text/plain", "az", None, []),
            ("XHTML entry", "text/html", "az", None, []),
        ],
    ),
    "atom-1.0-html.atom": (
        "syndication",
        [
            ("Grain deal <em>extended</em>", "text/html", "az", "Desk Two", ["Economy"]),
            ("Plain text entry", "text/plain", "az", None, []),
        ],
    ),
    "jsonfeed-1.1.json": (
        "jsonfeed",
        [
            ("JSON Feed item", "text/html", "en", "Author A", ["Politics"]),
            ("", "text/plain", "ru", None, []),
        ],
    ),
    "ninjs-1.json": ("ninjs", [("ninjs 1.x story", "text/plain", "de", "APA Desk", ["Politik"])]),
    "ninjs-2.json": ("ninjs", [("ninjs 2.x story", "text/html", None, "APA Desk 2", ["Wirtschaft"])]),
    "newsml-g2.xml": (
        "newsml",
        [
            ("Antony Blinken and Sergey Lavrov", "text/html", "en", "Alex Raufoglu", ["politics"]),
            ("Зерновая сделка", "text/plain", "ru", None, []),
        ],
    ),
    "turan-cp1251.txt": ("text", [("Зерновая сделка", "text/plain", None, None, None)]),
}


def parse(path: Path, **kw):
    return parse_document(
        path.read_bytes(),
        source="wire",
        origin=ORIGIN,
        fetched_at=NOW,
        suffix=path.suffix,
        allow_text=path.suffix == ".txt",
        **kw,
    )


def test_every_format_case_has_a_golden_expectation():
    assert {p.name for p in CASES.iterdir()} == set(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_format_becomes_valid_raw_stories(name):
    kind, expected = GOLDEN[name]
    parsed = parse(CASES / name)
    assert parsed.error is None and parsed.format == kind
    stories = [item.story for item in parsed.items]
    assert all(story is not None and validate_raw(story) == [] for story in stories)
    got = [
        (s["headline"], s["body_format"], s.get("language"), s.get("byline"), s.get("categories"))
        for s in stories
    ]
    assert got == expected
    assert len({s["id"] for s in stories}) == len(stories)
    assert all(item.key == item.story["id"] for item in parsed.items if name != "turan-cp1251.txt")


def test_relative_links_and_permalink_guids_resolve_against_the_feed_url():
    stories = [item.story for item in parse(CASES / "rss-2.0.rss").items]
    assert stories[0]["url"] == "https://wire.example/news/1"
    assert stories[0]["uri"] == "https://wire.example/news/1"
    assert stories[1]["uri"] == "wire-2"  # isPermaLink="false": kept as given
    assert stories[3]["url"] == "https://wire.example/news/4"  # a permalink guid stands in for the link


def test_newsml_inline_xml_is_html_without_namespaces():
    story = parse(CASES / "newsml-g2.xml").items[0].story
    assert story["body"].startswith("<p>U.S. Secretary of State") and "ns0:" not in story["body"]
    assert story["uri"] == "urn:newsml:turan.az:20220729:1" and story["summary"] == "They spoke."


def test_turan_text_records_its_legacy_encoding():
    story = parse(CASES / "turan-cp1251.txt").items[0].story
    assert story["encoding"] == {"declared": None, "detected": "windows-1251"}
    assert story["body"].startswith("Баку/28.07.22/Туран")


def _documents(tmp_path: Path) -> list[Path]:
    bench = tmp_path / "bench"
    bench.mkdir()
    write_feeds(bench, 1, 5)
    xml = [p for p in CASES.iterdir() if p.suffix in (".rss", ".rdf", ".atom")]
    return xml + sorted((SAMPLES / "feeds").iterdir()) + sorted(bench.iterdir())


def test_fast_reader_and_feedparser_give_the_same_stories(tmp_path, monkeypatch):
    documents = _documents(tmp_path)
    fast = {p.name: parse(p).items for p in documents}
    used_fast = {p.name for p in documents if fastfeed.read(xml_as_utf8(decode(p.read_bytes()).text), ORIGIN)}
    assert {
        "rss-2.0.rss",
        "rss-0.91.rss",
        "atom-1.0-html.atom",
        "wire-desk.atom",
        "feed-0000.rss",
    } <= used_fast
    assert not {"rss-1.0.rdf", "atom-0.3.atom", "atom-1.0.atom"} & used_fast  # left to feedparser
    monkeypatch.setattr(fastfeed, "read", lambda document, base: None)
    for path in documents:
        slow = parse(path).items
        assert [(i.key, i.story) for i in fast[path.name]] == [(i.key, i.story) for i in slow], path.name


@pytest.mark.parametrize(
    ("data", "content_type", "declared", "detected"),
    [
        ("Привет, мир! Сделка продлена.".encode("cp1251"), None, None, "windows-1251"),
        ("Привет, мир! Сделка продлена.".encode("koi8_r"), None, None, "koi8-r"),
        (
            "Привет, мир! Сделка продлена.".encode("cp1251"),
            "text/xml; charset=koi8-r",
            "koi8-r",
            "windows-1251",
        ),
        (
            "Привет, мир! Сделка продлена.".encode("cp1251"),
            "text/xml; charset=utf-8",
            "utf-8",
            "windows-1251",
        ),
        (
            "Görüşmeler İstanbul'da sürecek.".encode("iso8859_9"),
            "text/xml; charset=iso-8859-9",
            "iso-8859-9",
            "iso-8859-9",
        ),
        ("Görüşmeler İstanbul'da sürecek.".encode("iso8859_9"), None, None, "iso-8859-9"),
        (b"plain ascii", "text/xml; charset=nonsense-42", "nonsense-42", "utf-8"),
        ("\ufeffBOM".encode(), None, "utf-8", "utf-8"),
    ],
)
def test_declared_and_detected_encodings(data, content_type, declared, detected):
    decoded = decode(data, content_type=content_type)
    assert (decoded.declared, decoded.detected) == (declared, detected)


@pytest.mark.parametrize(
    ("codec", "detected"),
    [
        ("utf-16-le", "utf-16le"),
        ("utf-16-be", "utf-16be"),
        ("utf-32-le", "utf-32le"),
        ("utf-32-be", "utf-32be"),
    ],
)
@pytest.mark.parametrize("start", ['<?xml version="1.0"?><rss>', '{"version": "', "  <rss>"])
def test_utf16_and_utf32_without_a_byte_order_mark(codec, detected, start):
    text = start + "Зерновая сделка продлена. Grain deal extended."
    decoded = decode(text.encode(codec))
    assert (decoded.text, decoded.detected) == (text, detected)


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        (
            "gb2312",
            "区域协调发展是中国式现代化的内在要求。我国幅员辽阔、人口众多，统筹区域发展从来都是一个重大问题。",
        ),
        (
            "shift_jis",
            "日本と北朝鮮の政府間協議が、あすに迫りました。日本側は、特別調査委員会について説明を受けます。",
        ),
        ("euc_kr", "때아닌 여름 더위는 한풀 꺾였는데 불청객 황사 때문에 눈과 코가 답답합니다."),
        ("cp1255", "ראשי הרשויות צפת, חצור וראש פינה מתחברים למאבק להצלת העסקים בצפון"),
    ],
)
def test_undeclared_legacy_encodings_are_detected_unless_the_feed_names_its_own(codec, text):
    data = f"<rss><item><description>{text}</description></item></rss>".encode(codec)
    assert text in decode(data).text
    # A feed configured with its own encodings gets only those (here: a wrong one, read as told).
    assert decode(data, fallbacks=("windows-1251",)).detected == "windows-1251"


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "windows-1251"])
def test_a_single_byte_charset_that_reads_as_mojibake_gives_way_to_the_detected_one(charset):
    text = "<rss><item><title>区域协调发展是中国式现代化的内在要求。我国幅员辽阔、人口众多。</title></item></rss>"
    decoded = decode(text.encode("gb2312"), content_type=f"text/xml; charset={charset}")
    assert decoded.text == text and decoded.declared == charset


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("line_breaks", [True, False])
def test_a_long_undeclared_document_is_detected_from_a_head_cut_on_a_whole_character(offset, line_breaks):
    sentence = "区域协调发展是中国式现代化的内在要求。我国幅员辽阔、人口众多"
    body = ("\n" if line_breaks else "").join([sentence] * 8000)  # over 256 KB in GB2312
    text = "<rss>" + "x" * offset + "<item><description>" + body + "</description></item></rss>"
    data = text.encode("gb2312")
    assert len(data) > 300_000
    assert decode(data).text == text


def test_xml_declaration_is_rewritten_to_the_encoding_actually_used():
    text = decode('<?xml version="1.0" encoding="windows-1251"?><a>Сделка</a>'.encode("cp1251")).text
    assert xml_as_utf8(text).startswith(b'<?xml version="1.0" encoding="utf-8"?>')


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>',
        b'<?xml version="1.0"?><!-- <x --><!DOCTYPE r [<!ENTITY a SYSTEM "file:///etc/passwd">]><r>&a;</r>',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><r/>',
    ],
)
def test_screen_refuses_entity_declarations(document):
    with pytest.raises(UnsafeXml):
        screen(document)


def test_screen_lets_plain_documents_and_external_dtd_references_through():
    screen(b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "http://127.0.0.1:9/x.dtd"><rss><channel/></rss>')
    screen(b"<rss><channel><title>CDATA may mention <![CDATA[<!ENTITY x>]]></title></channel></rss>")
