"""The robustness corpus: every malformed or hostile file ends as its expected outcome, never a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from connectors.formats import parse_document
from schemas import validate_raw

CORPUS = Path(__file__).resolve().parent.parent / "cases" / "connectors" / "hostile"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text("utf-8"))
NOW = "2022-07-29T18:00:00.000000Z"


def test_every_corpus_file_has_an_expectation_and_the_other_way_round():
    files = {p.name for p in CORPUS.iterdir() if p.name != "expected.yaml"}
    assert files == set(EXPECTED), files ^ set(EXPECTED)
    assert len(files) >= 35


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_input_is_handled(name):
    expected = EXPECTED[name]
    path = CORPUS / name
    started = time.monotonic()
    parsed = parse_document(
        path.read_bytes(),
        source="hostile",
        origin=f"http://127.0.0.1/{name}",
        fetched_at=NOW,
        suffix=path.suffix,
        allow_text=expected.get("mode") == "file",
    )
    assert time.monotonic() - started < 10, "bounded work on every input"
    stories = [item.story for item in parsed.items if item.story is not None]
    letters = [item.dead_letter for item in parsed.items if item.dead_letter is not None]
    assert all(item.story is None or item.dead_letter is None for item in parsed.items)
    assert all(validate_raw(story) == [] for story in stories)
    assert all(letter.reason and letter.source == "hostile" for letter in letters)
    if "refused" in expected:
        assert parsed.error is not None and expected["refused"] in parsed.error
        assert len(letters) == 1 and not stories
        assert letters[0].payload == path.read_bytes(), "a refused document keeps its original bytes"
        return
    assert parsed.error is None
    assert len(stories) == expected.get("stories", 0)
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == len(expected.get("dead_letters", [])), reasons
    for wanted in expected.get("dead_letters", []):
        match = next((r for r in reasons if wanted in r), None)
        assert match is not None, (wanted, reasons)
        reasons.remove(match)
    assert len(parsed.warnings) == len(expected.get("warnings", []))
    for wanted, warning in zip(expected.get("warnings", []), parsed.warnings, strict=True):
        assert wanted in warning
    if "headline" in expected:
        assert stories[0]["headline"] == expected["headline"]
    if "encoding" in expected:
        assert stories[0]["encoding"] == expected["encoding"]


def test_a_body_that_names_a_local_file_is_never_opened():
    parsed = parse_document(b"/etc/hostname", source="s", origin="http://127.0.0.1/x", fetched_at=NOW)
    assert parsed.error and not any(item.story for item in parsed.items)


def test_billion_laughs_is_refused_before_any_expansion():
    bomb = (CORPUS / "billion-laughs.xml").read_bytes()
    started = time.process_time()
    parsed = parse_document(bomb, source="s", origin="o", fetched_at=NOW)
    assert time.process_time() - started < 0.5
    [letter] = [item.dead_letter for item in parsed.items]
    assert letter is not None and "entity" in letter.reason and len(letter.payload) == len(bomb)
