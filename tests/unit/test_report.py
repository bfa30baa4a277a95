"""`wirestream.report` over tables written here with pyiceberg (no Kafka): the numbers it gathers,
the commit lag from the snapshot that added each file, and a page for a table with no stories."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from pipeline.dataset import Dataset
from schemas import CLEAN_SCHEMA, DEAD_LETTER_SCHEMA
from wirestream.report import gather, reason_kind, write_report

T0 = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)


def story(n: int, source: str, language: str | None, **extra: object) -> dict:
    return {
        "id": f"{n:032x}",
        "source": source,
        "language": language,
        "topics": [],
        "firstcreated": T0 + timedelta(days=n % 2),
        "kafka_timestamp": T0 + timedelta(days=2, minutes=n),
        **extra,
    }


def append(dataset: Dataset, name: str, rows: list[dict], kind: str) -> None:
    schema = CLEAN_SCHEMA if name == "stories" else DEAD_LETTER_SCHEMA
    table = dataset.table(name, create=True)
    table.append(pa.Table.from_pylist(rows, schema=schema), snapshot_properties={"wirestream.kind": kind})


def test_reason_kind_masks_what_differs_between_records_of_one_fault():
    assert reason_kind("not JSON: Expecting value: line 1 column 12 (char 11)") == (
        "not JSON: Expecting value: line N column N (char N)"
    )
    assert reason_kind("body: lone surrogate U+D83D at character 24 (half of a pair); id: bad") == (
        "body: lone surrogate U+XXXX at character N (half of a pair)"
    )
    assert len(reason_kind("x" * 500)) == 90


def test_gather_counts_stories_duplicates_languages_sources_and_lag(tmp_path: Path):
    dataset = Dataset(tmp_path / "out")
    grain: dict[str, object] = {
        "topic": "grain_deal",
        "label": None,
        "iptc": None,
        "score": 2.0,
        "evidence": [],
    }
    rows = [
        story(0, "agency", "en", topics=[grain], cluster_id=f"{0:032x}"),
        story(1, "agency", "en", cluster_id=f"{1:032x}"),
        story(2, "mirror", "de", duplicate_of=f"{0:032x}", cluster_id=f"{0:032x}", topics=[grain]),
        story(3, "echo", None, duplicate_of=f"{0:032x}", cluster_id=f"{0:032x}"),
    ]
    append(dataset, "dead_letters", [{"stage": "parse", "reason": "empty record value"}] * 2, "ingest")
    append(dataset, "stories", rows, "ingest")
    committed = dataset.table("stories").current_snapshot().timestamp_ms / 1000

    data = gather(dataset)
    assert (data.stories, data.unique_stories, data.duplicates_flagged) == (4, 2, 2)
    assert data.duplicate_rate == 0.5
    assert dict(data.cluster_sizes) == {"1": 1, "2": 0, "3": 1, "4": 0, "5+": 0}
    assert data.duplicate_clusters == 1 and data.clusters == 2
    assert data.languages == [("en", 2), ("de", 1), ("unknown", 1)]
    assert data.days == [("2026-11-10", 2), ("2026-11-11", 2)]
    assert data.day_topics == {
        ("2026-11-10", "grain_deal"): 2,
        ("2026-11-11", "(untagged)"): 2,
    }
    assert data.dead_letters == 2 and data.dead_letter_reasons == [("empty record value", 2)]
    assert [s["source"] for s in data.sources] == ["agency", "echo", "mirror"]
    # agency's delays: 2 d (story 0), and 1 d 1 min (story 1, published a day later)
    assert data.sources[0]["delay_p50_s"] == (2 * 86400 + 86400 + 60) / 2
    oldest = (T0 + timedelta(days=2)).timestamp()
    assert data.lag_stories == 4
    assert abs(data.lag_max_s - (committed - oldest)) < 0.001


def test_rows_a_compaction_rewrote_are_left_out_of_the_lag(tmp_path: Path):
    dataset = Dataset(tmp_path / "out")
    append(dataset, "stories", [story(0, "agency", "en")], "compaction")
    append(dataset, "stories", [story(1, "agency", "en")], "ingest")
    data = gather(dataset)
    assert data.stories == 2 and data.lag_stories == 1
    assert sum(n for _, n in data.lag_buckets) == 1


def test_a_table_with_no_stories_still_gives_a_page(tmp_path: Path):
    dataset = Dataset(tmp_path / "out")
    dataset.table("stories", create=True)
    append(
        dataset, "dead_letters", [{"stage": "validate", "reason": "(message): story has neither"}], "ingest"
    )
    page = tmp_path / "report.html"
    written = write_report(dataset, page)
    assert (written.stories, written.dead_letters) == (0, 1)
    text = page.read_text("utf-8")
    assert re.search(r'data-metric="stories" data-value="0">0<', text)
    assert re.search(r'data-metric="dead-letters" data-value="1">1<', text)
    assert text.count("nothing to show") == 5  # every chart but the dead letters'
