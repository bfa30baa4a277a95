"""`wirestream report` over a table a real run committed, rendered by headless Chromium: the page
is drawn (a screenshot of many colours), each chart's SVG has its marks, and every number on it
equals a DuckDB count of the same table."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kafka import KafkaProducer

from pipeline.dataset import Dataset
from tests.conftest import _duckdb_extensions, env_for, publish_raw, raw_story, wirestream

CHARTS = (
    "stories-per-day",
    "cluster-sizes",
    "dead-letter-reasons",
    "connector-dead-letter-reasons",
    "languages",
    "feed-health",
    "commit-lag",
)
LEAD_COPY = Path("/tmp/wirestream-report.png")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is not installed (deploy/bootstrap.sh installs it)"
    return found


class _Page(HTMLParser):
    """The numbers (every element with data-metric) and the charts (svg[data-chart] and their marks)."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[dict[str, str]] = []
        self.marks: dict[str, list[dict[str, str]]] = {}
        self._chart: str | None = None
        self._open: list[dict[str, str]] = []
        self._text: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "svg" and "data-chart" in found:
            self._chart = found["data-chart"]
            self.marks[self._chart] = []
        elif tag == "rect" and "mark" in found.get("class", "").split() and self._chart:
            self.marks[self._chart].append(found)
        elif "data-metric" in found and tag != "rect":
            self._open.append(found)
            self._text.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None
        elif tag in ("span", "td") and self._open:
            entry = self._open.pop()
            entry["text"] = "".join(self._text.pop()).strip()
            self.numbers.append(entry)

    def handle_data(self, data: str) -> None:
        if self._text:
            self._text[-1].append(data)

    def values(self, metric: str) -> dict[str, int]:
        """key -> value of every count shown for ``metric``; the text shown must say the same."""
        found: dict[str, int] = {}
        for entry in self.numbers:
            if entry["data-metric"] != metric:
                continue
            value = int(entry["data-value"])
            assert entry["text"].replace(",", "") == str(value), entry
            key = entry.get("data-key", "")
            assert found.setdefault(key, value) == value, f"{metric} {key} shown as two numbers"
        return found

    def raw(self, metric: str) -> dict[str, str]:
        """key -> data-value of every number shown for ``metric`` (times, rates, durations)."""
        return {e.get("data-key", ""): e["data-value"] for e in self.numbers if e["data-metric"] == metric}


def png_colours(path: Path) -> int:
    """Distinct colours in an 8-bit RGB(A) PNG, decoded with zlib and the PNG row filters."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        colours.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp * 2))
        previous = line
    return len(colours)


def duckdb_counts(output: str) -> dict[str, Any]:
    """The report's numbers counted again by DuckDB's own Iceberg reader over the same snapshot."""
    dataset = Dataset(output)
    stories = dataset.table("stories").metadata_location
    letters = dataset.table("dead_letters").metadata_location
    committed_ms = dataset.table("stories").current_snapshot().timestamp_ms
    with duckdb.connect() as con:
        con.execute(f"SET extension_directory = '{_duckdb_extensions()}'")
        con.execute("LOAD iceberg")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW s AS SELECT * FROM iceberg_scan('{stories}')")
        con.execute(f"CREATE VIEW d AS SELECT * FROM iceberg_scan('{letters}')")

        def pairs(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in con.execute(sql).fetchall()}

        day = "strftime(coalesce(firstcreated, kafka_timestamp), '%Y-%m-%d')"
        return {
            "stories": con.execute("SELECT count(*) FROM s").fetchone()[0],  # type: ignore[index]
            "unique-stories": con.execute("SELECT count(*) FROM s WHERE duplicate_of IS NULL").fetchone()[0],  # type: ignore[index]
            "dead-letters": con.execute("SELECT count(*) FROM d").fetchone()[0],  # type: ignore[index]
            "sources": pairs("SELECT source, count(*) FROM s GROUP BY 1"),
            "languages": pairs("SELECT coalesce(language, 'unknown'), count(*) FROM s GROUP BY 1"),
            "days": pairs(f"SELECT {day}, count(*) FROM s GROUP BY 1"),
            "day-topics": pairs(
                f"SELECT {day} || '/' || coalesce(topics[1].topic, '(untagged)'), count(*) FROM s GROUP BY 1"
            ),
            "clusters": pairs(
                "SELECT n, count(*) FROM (SELECT count(*) AS n FROM s GROUP BY coalesce(cluster_id, id)) GROUP BY 1"
            ),
            "stages": pairs("SELECT stage, count(*) FROM d GROUP BY 1"),
            "reasons": pairs(
                "SELECT regexp_replace(split_part(reason, '; ', 1), '[0-9]+', 'N', 'g'), count(*) FROM d GROUP BY 1"
            ),
            "last-seen": {
                source: seen.isoformat()
                for source, seen in con.execute(
                    "SELECT source, max(kafka_timestamp) FROM s GROUP BY 1"
                ).fetchall()
            },
            # One ingest batch committed every row: its lag is the snapshot's time minus the Kafka time.
            "lag": con.execute(
                "SELECT quantile_cont(l, 0.5), quantile_cont(l, 0.95), max(l) FROM "
                f"(SELECT {committed_ms} / 1000 - epoch(kafka_timestamp) AS l FROM s)"
            ).fetchone(),
        }


def dead_letter_topic_size(config: Any) -> int:
    """Records in the dead-letter topic, from Kafka's own offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=config.bootstrap_servers)
    try:
        partitions = [
            TopicPartition(config.dlq_topic, p) for p in consumer.partitions_for_topic(config.dlq_topic)
        ]
        ends, starts = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        consumer.close()


def copy_of(story: dict[str, Any], source: str) -> dict[str, Any]:
    """The same text, syndicated by another source (a near-duplicate under another id)."""
    from schemas import story_id

    return {
        **story,
        "source": source,
        "id": story_id(source, story["uri"]),
        "uri": f"{source}-{story['uri']}",
    }


def test_report_renders_in_chromium_with_the_tables_numbers(kafka_config, seed_path, tmp_path, capsys):
    env = env_for(kafka_config)
    stories = [raw_story(i, source="agency", when=f"2026-11-{10 + i % 3:02d}T08:00:00Z") for i in range(9)]
    stories += [raw_story(100 + i, source="feedhub", when="2026-11-12T09:30:00Z") for i in range(4)]
    stories += [copy_of(stories[0], "mirror"), copy_of(stories[1], "mirror"), copy_of(stories[0], "echo")]
    publish_raw(kafka_config, stories)
    wirestream("connect", "files", str(seed_path), "--source", "turan", env=env)
    drop = tmp_path / "drop.jsonl"
    drop.write_text(json.dumps({"uri": "empty", "headline": "", "body": ""}) + "\n")
    assert "dead-lettered 1" in wirestream("connect", "files", str(drop), "--source", "drop", env=env).stdout
    producer = KafkaProducer(bootstrap_servers=kafka_config.bootstrap_servers, acks="all")
    for value in (b"{not json", b"{not json either", b"", json.dumps({"id": "x"}).encode()):
        producer.send(kafka_config.raw_topic, value=value, partition=0).get(30)
    producer.close()
    out = str(tmp_path / "dataset")
    wirestream("run", "--output", out, env=env)

    page = tmp_path / "report.html"
    made = wirestream("report", "--output", out, "--html", str(page), "--connectors", env=env)
    assert f"wrote {page}:" in made.stdout
    text = page.read_text("utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page must not load anything"

    screenshot = tmp_path / "report.png"
    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    profile = ["--user-data-dir=" + str(tmp_path / "chromium-profile")]
    subprocess.run(
        [*browser, *profile, f"--screenshot={screenshot}", "--window-size=1280,2600", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=180,
    )
    dom = subprocess.run(
        [*browser, *profile, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=180,
        text=True,
    ).stdout
    shutil.copyfile(screenshot, LEAD_COPY)
    with capsys.disabled():
        print(f"\nreport screenshot: {screenshot} (copy at {LEAD_COPY})")
    assert png_colours(screenshot) > 50, "the screenshot is blank or nearly so"

    parsed = _Page()
    parsed.feed(dom)
    for chart in CHARTS:
        marks = parsed.marks.get(chart)
        assert marks, f"chart {chart} drew no marks"
        assert all(float(m["width"]) >= 0 and float(m["height"]) > 0 for m in marks), chart

    want = duckdb_counts(out)
    assert want["stories"] == len(stories) + 1 and want["dead-letters"] == 4
    assert parsed.values("stories") == {"": want["stories"]}
    assert parsed.values("unique-stories") == {"": want["unique-stories"]}
    assert parsed.values("duplicates-flagged") == {"": want["stories"] - want["unique-stories"]}
    assert want["stories"] - want["unique-stories"] >= 2, "the syndicated copies were not flagged"
    assert parsed.values("dead-letters") == {"": want["dead-letters"]}
    assert parsed.values("connector-dead-letters") == {"": dead_letter_topic_size(kafka_config)} == {"": 1}
    assert parsed.values("connector-dead-letter-reason") == {
        "(message): story has neither headline nor body": 1
    }
    assert parsed.values("source-stories") == want["sources"]
    assert parsed.values("language") == want["languages"]
    assert parsed.values("day-stories") == want["days"]
    assert parsed.values("day-topic") == want["day-topics"]
    assert parsed.values("dead-letter-stage") == want["stages"]
    assert parsed.values("dead-letter-reason") == want["reasons"]
    sizes = Counter({("5+" if n >= 5 else str(n)): 0 for n in range(1, 6)})
    for size, count in want["clusters"].items():
        sizes["5+" if int(size) >= 5 else size] += count
    assert parsed.values("cluster-size") == dict(sizes)
    assert parsed.values("duplicate-clusters") == {"": sum(c for s, c in sizes.items() if s != "1")}
    assert parsed.values("lag-stories") == {"": want["stories"]}  # one ingest batch committed them all
    assert sum(parsed.values("lag-bucket").values()) == want["stories"]
    assert float(parsed.raw("duplicate-rate")[""]) == round(1 - want["unique-stories"] / want["stories"], 6)
    assert parsed.raw("source-last-seen") == want["last-seen"]
    shown_lag = [float(parsed.raw(metric)[""]) for metric in ("lag-p50", "lag-p95", "lag-max")]
    assert shown_lag == pytest.approx(list(want["lag"]), abs=0.002)

    # The bars say the same as the numbers beside them.
    assert {m["data-key"]: int(m["data-value"]) for m in parsed.marks["languages"]} == want["languages"]
    assert {m["data-key"]: int(m["data-value"]) for m in parsed.marks["stories-per-day"]} == want[
        "day-topics"
    ]
    heights = {m["data-key"]: float(m["width"]) for m in parsed.marks["feed-health"]}
    biggest = max(want["sources"], key=lambda s: want["sources"][s])
    assert heights[biggest] == max(heights.values()) and heights["turan"] < heights[biggest]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: [str(tmp / "missing"), str(tmp / "r.html")], "does not exist"),
        (lambda tmp: [str(tmp), str(tmp / "r.html")], "holds no wirestream table"),
        (lambda tmp: [str(tmp), str(tmp / "no-folder" / "r.html")], "does not exist"),
        (lambda tmp: [str(tmp), str(tmp)], "is a folder"),
    ],
    ids=["missing-dataset", "empty-folder", "missing-html-folder", "html-is-a-folder"],
)
def test_report_mistakes_end_in_one_line_and_write_nothing(tmp_path, make, message):
    output, html = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = wirestream("report", "--output", output, "--html", html, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert sorted(tmp_path.rglob("*")) == before
