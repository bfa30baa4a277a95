import json

import feedparser
import pytest

from connectors.feeds import check_address, default_source, items_from_feed
from connectors.files import items_from_file
from schemas import validate_raw
from tests.conftest import SAMPLES

NOW = "2022-07-29T18:00:00.000000Z"


def test_seed_file_becomes_one_raw_story_with_furniture_kept(seed_path):
    [item] = list(items_from_file(seed_path, "turan", NOW))
    assert item.dead_letter is None
    story = item.story
    assert validate_raw(story) == []
    assert story["headline"] == "Antony Blinken and Sergey Lavrov"
    assert story["body"].startswith("Antony Blinken and Sergey Lavrov")  # the repeated title stays raw
    assert story["body"].rstrip().endswith("News Line")


def test_same_file_gives_the_same_id(seed_path, tmp_path):
    copy = tmp_path / "copy.txt"
    copy.write_bytes(seed_path.read_bytes())
    [a] = items_from_file(seed_path, "turan", NOW)
    [b] = items_from_file(copy, "turan", NOW)
    assert a.story["id"] == b.story["id"] and a.key == b.key


def test_ndjson_bad_lines_become_dead_letters_and_the_rest_goes_on(tmp_path):
    good = {"source": "apa", "uri": "apa-1", "headline": "H", "body": "B"}
    path = tmp_path / "drop.ndjson"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                json.dumps({"source": "apa", "uri": "x", "headline": "", "body": ""}),
                json.dumps({**good, "uri": "apa-2"}),
            ]
        )
    )
    items = list(items_from_file(path, "apa", NOW))
    assert [i.story is not None for i in items] == [True, False, False, True]
    assert "invalid JSON" in items[1].dead_letter.reason
    assert "neither headline nor body" in items[2].dead_letter.reason
    assert items[1].dead_letter.payload == b"{not json"


def test_json_file_with_a_list_of_messages(tmp_path):
    path = tmp_path / "drop.json"
    path.write_text(
        json.dumps(
            [
                {"source": "apa", "guid": "g1", "headline": "H1", "body": "B"},
                {"source": "apa", "headline": "H2"},
            ]
        )
    )
    items = list(items_from_file(path, "apa", NOW))
    assert items[0].story["uri"] == "g1"
    assert "id" in items[1].dead_letter.reason


def test_legacy_encodings_are_decoded(tmp_path):
    path = tmp_path / "ru.txt"
    path.write_bytes("Зерновая сделка\n\nСделку продлили.".encode("cp1251"))
    [item] = items_from_file(path, "interfax", NOW)
    assert item.story["headline"] == "Зерновая сделка"


def test_sample_feeds_parse_into_stories_and_one_dead_letter():
    stories, letters = [], []
    for path in sorted((SAMPLES / "feeds").iterdir()):
        assert not feedparser.parse(path.read_bytes()).bozo, path
        for item in items_from_feed(
            path.read_bytes(), f"demo/{path.stem}", f"http://127.0.0.1/{path.name}", NOW
        ):
            (stories if item.story else letters).append(item)
    assert len(stories) >= 15
    assert len(letters) == 1 and "neither headline nor body" in letters[0].dead_letter.reason
    assert all(validate_raw(i.story) == [] for i in stories)
    assert len({i.story["id"] for i in stories}) == len(stories)


def test_broken_feed_is_one_dead_letter_with_the_bytes():
    [item] = list(items_from_feed(b"<html><body>Not a feed</body>", "x", "http://example.com/feed", NOW))
    assert item.dead_letter is not None and item.dead_letter.payload.startswith(b"<html>")


def test_default_source_ignores_the_port():
    assert default_source("http://127.0.0.1:8123/feeds/turan.rss") == "127.0.0.1/feeds/turan.rss"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://localhost:8080/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/f",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url):
    with pytest.raises(ValueError, match="allow-private-networks"):
        check_address(url, allow_private=False)
    check_address(url, allow_private=True)


def test_agency_files_in_every_format(tmp_path):
    cases = SAMPLES.parent.parent / "tests" / "cases" / "connectors" / "formats"
    for name, count in (
        ("ninjs-2.json", 1),
        ("newsml-g2.xml", 2),
        ("jsonfeed-1.1.json", 2),
        ("rss-2.0.rss", 4),
    ):
        items = list(items_from_file(cases / name, "agency", NOW))
        assert len(items) == count and all(i.story and validate_raw(i.story) == [] for i in items), name


def test_an_oversized_file_is_one_dead_letter_with_its_head(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_bytes(b"Headline\n" + b"x" * 200_000)
    [item] = list(items_from_file(path, "turan", NOW, max_bytes=100_000))
    assert "over the 100000-byte limit" in item.dead_letter.reason
    assert item.dead_letter.payload == path.read_bytes()[: 64 * 1024]
