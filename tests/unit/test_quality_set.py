"""The labelled quality set keeps meeting its targets (a regression guard, not the measurement:
`python -m benchmarks.quality` prints the figures), and the real-copy set holds what its figures
rely on."""

from collections import Counter, defaultdict
from datetime import date
from urllib.parse import urlparse

import pytest

from benchmarks.quality import SEEDED, evaluate


@pytest.fixture(scope="module", params=[False, True], ids=["development", "held-out"])
def results(request):
    return evaluate(held_out=request.param)


def test_seeded_topics_meet_their_targets(results):
    for topic in SEEDED:
        scores = results.topics[topic]
        assert scores.precision >= 0.95 and scores.recall >= 0.90, (topic, results.tagging_errors)


def test_near_duplicate_pairs_meet_their_target(results):
    assert results.dedup.f1 >= 0.95, results.dedup_errors


def test_cleaning_loses_no_content_line(results):
    assert results.content_lost == []
    assert results.furniture_removed >= 0.85 * results.furniture_total, results.furniture_kept


# The real-copy set (benchmarks/quality/real/): published texts as scraped, checked for what the
# figures rely on. Its figures are printed by `python -m benchmarks.quality`, not asserted here.

REAL_LANGUAGES = {"en", "ru", "uk", "de", "fr", "tr", "az", "no"}


@pytest.fixture(scope="module")
def real_texts():
    from benchmarks.quality.real_copy import load_real

    return load_real()


def test_every_real_text_names_its_source_date_and_language(real_texts):
    from benchmarks.quality.real_copy import published_date

    ids = [t["id"] for t in real_texts]
    assert len(ids) == len(set(ids))
    for text in real_texts:
        assert urlparse(text["url"]).scheme in ("http", "https") and urlparse(text["url"]).netloc, text["id"]
        assert date(2023, 1, 1) <= published_date(text) <= date.today(), text["id"]
        assert text["date_from"] in ("page", "event"), text["id"]
        assert text["language"] in REAL_LANGUAGES, text["id"]
        assert set(text["topics"]) <= set(SEEDED), text["id"]
        assert set(text.get("near_miss") or []) <= set(SEEDED) - set(text["topics"]), text["id"]
        assert text["body"].strip(), text["id"]


def test_real_labels_are_lines_and_names_of_the_text(real_texts):
    for text in real_texts:
        lines = [line.strip() for line in text["body"].split("\n")]
        for furniture in text["furniture"]:
            assert furniture in lines, (text["id"], furniture)
        for name in ("byline", "dateline"):
            if text[name]:
                assert text[name] in text["body"], (text["id"], name)


def test_every_real_group_is_one_story_on_several_sites(real_texts):
    sites = defaultdict(set)
    for text in real_texts:
        if text["group"]:
            sites[text["group"]].add(urlparse(text["url"]).netloc.removeprefix("www."))
    assert len(sites) >= 25  # the target
    for group, netlocs in sites.items():
        assert len(netlocs) >= 2, group


def test_real_set_covers_every_language_and_seeded_topic(real_texts):
    languages = Counter(t["language"] for t in real_texts)
    assert set(languages) == REAL_LANGUAGES
    assert min(languages.values()) >= 5, languages
    assert len(real_texts) >= 150  # the target
    for topic in SEEDED:
        assert sum(topic in t["topics"] for t in real_texts) >= 5, topic
    for topic in ("grain_deal", "annexation", "detainees"):
        assert any(topic in (t.get("near_miss") or []) for t in real_texts), topic


def test_real_figures_count_every_pair_line_and_text(real_texts):
    from benchmarks.quality.real_copy import evaluate_real

    results = evaluate_real()
    groups = Counter(t["group"] for t in real_texts if t["group"])
    pairs = results.pairs
    assert pairs.tp + pairs.fn == sum(n * (n - 1) // 2 for n in groups.values())
    assert len(results.pair_errors) == pairs.fp + pairs.fn
    assert results.furniture_total == sum(len(t["furniture"]) for t in real_texts)
    assert results.language["True"] + results.language["False"] == len(real_texts)


def test_containment_is_over_the_shorter_copy():
    from benchmarks.quality.containment import containment_pairs, scores

    lead = "Russia on Monday halted a wartime deal that allowed grain to flow from Ukraine."
    story = (
        lead
        + " Kremlin spokesman Dmitry Peskov said the initiative would be suspended until demands are met."
    )
    other = "Swiss voters approved a thirteenth monthly pension payment in a referendum on Sunday."
    pairs = containment_pairs([lead, story, other], 4)
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]
    assert pairs[0][2] == 1.0
    assert scores(pairs, {(0, 1)}, 0.9) == (1.0, 1.0)
    assert scores(pairs, {(0, 2)}, 0.9) == (0.0, 0.0)


def test_a_shared_passage_links_windows_of_one_story_and_not_reports_quoting_one_statement(real_texts):
    """Real copies under the threshold by the ratio alone: two windows of one agency story (a
    site's own intro and the lead against the lead and more; two cuts of one write-through) share
    a passage and are linked; independent reports quoting the same presidential post or UN
    statement are not, exactly (`benchmarks.quality.containment`) and from the signatures."""
    from benchmarks.quality.containment import passage_rule, shared_pairs
    from pipeline import minhash
    from pipeline.clean import clean_text
    from pipeline.dedup import DEFAULT_THRESHOLD

    by_id = {t["id"]: t for t in real_texts}

    def body(story):
        return clean_text(by_id[story].get("headline") or "", by_id[story]["body"]).body

    windows = [
        ("en-ap-sochi-grain-menafn", "en-ap-sochi-grain-pressherald"),
        ("en-reuters-pow-307-indiatoday", "en-reuters-pow-307-wenews"),
    ]
    independent = [
        ("uk-unn-pow-2025-08", "uk-delo-pow-2025-08"),
        ("uk-censor-pow-2025-08", "uk-delo-pow-2025-08"),
        ("en-cnn-guterres-grain", "en-app-guterres-grain"),
    ]
    for (a, b), copies in [(pair, True) for pair in windows] + [(pair, False) for pair in independent]:
        assert (by_id[a]["group"] is not None and by_id[a]["group"] == by_id[b]["group"]) == copies
        sa, sb = minhash.signatures([body(a), body(b)])
        assert minhash.containment(sa, sb) < DEFAULT_THRESHOLD, (a, b)
        assert minhash.near_duplicate(sa, sb, DEFAULT_THRESHOLD) == copies, (a, b)
        [(_a, _b, contained, shared)] = shared_pairs(
            [minhash.unquoted(body(story).lower()) for story in (a, b)], minhash.SHINGLE
        )
        assert contained < DEFAULT_THRESHOLD
        called = passage_rule(
            [(0, 1, contained, shared)], DEFAULT_THRESHOLD, minhash.PASSAGE_SHINGLES, minhash.PASSAGE_FLOOR
        )
        assert called == [(0, 1, float(copies))], (a, b, shared)
