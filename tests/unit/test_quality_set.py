"""The labelled quality set keeps meeting its targets (a regression guard, not the measurement:
`python -m benchmarks.quality` prints the figures)."""

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
