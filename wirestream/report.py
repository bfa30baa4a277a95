"""`wirestream report`: one self-contained HTML page about what the table holds.

The page opens offline: its CSS is inline and its charts are SVG drawn here, so it needs no
script, font or network. Every chart has its numbers in a table beside it, and every number on
the page carries ``data-metric`` (what it counts), ``data-key`` (which bar or row) and
``data-value`` (the number unformatted), so a program reads the page as well as a person does.

What it shows, from the current snapshot of the stories and dead_letters tables:

- stories per day by main topic: the day is the story's publication day (``firstcreated``, else
  its Kafka time), in UTC; a story counts once, under its highest-scoring topic (tags are stored
  best first), or as untagged;
- duplicates: stories flagged as a syndicated copy (``duplicate_of`` set, kept in the table), the
  rate of them, clusters by size (a cluster is the stories sharing ``cluster_id``), and the
  deliveries of an already committed story id that ingest batches dropped (snapshot summaries);
- dead letters of the pipeline by stage and by reason (a reason's numbers masked, so the same
  fault at different offsets is one bar); the connectors' dead letters live in Kafka, and are
  charted too when the page is written with ``--connectors`` (which reads the dead-letter topic,
  so needs the broker; the rest of the page needs only the table);
- languages (as detected; ``unknown`` where none was);
- feed health: per source, its stories, when it was last seen (its newest Kafka time) measured
  back from the snapshot's commit, and its median delivery delay (Kafka time minus publication
  time);
- commit lag: for each story an ingest batch committed, the time from its Kafka timestamp to the
  commit of the snapshot that added it (Iceberg records which snapshot added each file). Rows that
  a backfill or compaction rewrote carry the rewrite's time, not their first commit's, and are
  left out. This is measured from the table alone, so the page needs no broker; the consumer lag
  of a running pipeline is what `run` serves as a metric.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.dataset import Dataset
from wirestream.config import Config
from wirestream.errors import UserError
from wirestream.tables import COMMIT_KIND, COMMITTED_AT, read_committed

__all__ = ["ReportData", "Written", "gather", "reason_kind", "render", "write_report"]

DAYS_SHOWN = 60
TOPICS_SHOWN = 8
ROWS_SHOWN = 20
STALE_AFTER_S = 24 * 3600
LAG_BUCKETS = (
    ("< 1 s", 1.0),
    ("1-10 s", 10.0),
    ("10 s-1 min", 60.0),
    ("1-10 min", 600.0),
    ("10 min-1 h", 3600.0),
    ("1 h-1 d", 86400.0),
    (">= 1 d", float("inf")),
)
PALETTE = (
    "#3266a8", "#e0893a", "#4c9a52", "#c2464b", "#7d5fa8",
    "#8c6d53", "#d27bb3", "#6f7780", "#b3a73a", "#3aa6b3",
)  # fmt: skip
UNTAGGED = "(untagged)"
OTHER_TOPICS = "(other topics)"


@dataclass
class ReportData:
    """The numbers the page shows."""

    output: str
    snapshot_id: int | None = None
    committed_at: datetime | None = None
    batches: int = 0
    stories: int = 0
    unique_stories: int = 0
    duplicates_flagged: int = 0
    duplicates_dropped: int = 0
    clusters: int = 0
    duplicate_clusters: int = 0
    cluster_sizes: list[tuple[str, int]] = field(default_factory=list)
    days: list[tuple[str, int]] = field(default_factory=list)  # (day, stories), oldest first
    days_total: int = 0
    day_topics: dict[tuple[str, str], int] = field(default_factory=dict)  # (day, main topic) -> stories
    topics: list[str] = field(default_factory=list)  # the series drawn, most stories first
    dead_letters: int = 0
    dead_letter_stages: list[tuple[str, int]] = field(default_factory=list)
    dead_letter_reasons: list[tuple[str, int]] = field(default_factory=list)
    connector_dead_letters: int | None = None  # None: the dead-letter topic was not read
    connector_reasons: list[tuple[str, int]] = field(default_factory=list)
    connector_topic: str | None = None
    languages: list[tuple[str, int]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # most stories first
    lag_stories: int = 0
    lag_p50_s: float | None = None
    lag_p95_s: float | None = None
    lag_max_s: float | None = None
    lag_buckets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates_flagged / self.stories if self.stories else 0.0


@dataclass(frozen=True)
class Written:
    path: Path
    stories: int
    dead_letters: int


def reason_kind(reason: str) -> str:
    """A dead letter's reason without what differs between two records of the same fault: its
    first problem, with code points and numbers masked, at most 90 characters."""
    first = reason.split("; ", 1)[0]
    first = re.sub(r"U\+[0-9A-Fa-f]{4,6}", "U+XXXX", first)
    first = re.sub(r"\d+", "N", first)
    return first if len(first) <= 90 else first[:89] + "…"


def gather(dataset: Dataset) -> ReportData:
    """The page's numbers from the current snapshot of ``dataset``'s tables."""
    if dataset.embedded and not dataset.root.is_dir():
        raise UserError(f"{dataset.root} is not a wirestream dataset folder (it does not exist)")
    if not dataset.exists():
        raise UserError(f"{dataset.root} holds no wirestream table: nothing committed yet")
    table = dataset.table("stories")  # one look: the commits and the rows are of its snapshot
    current = table.current_snapshot()
    commits = dataset.commits(current.snapshot_id) if current is not None else []
    latest = commits[-1] if commits else None
    data = ReportData(
        output=str(dataset.root.resolve()) if dataset.embedded else str(dataset.settings.uri),
        snapshot_id=latest["snapshot_id"] if latest else None,
        committed_at=datetime.fromtimestamp(latest["timestamp_ms"] / 1000, UTC) if latest else None,
        batches=len(commits),
        duplicates_dropped=sum(
            c["stats"]["duplicates_dropped"] for c in commits if c.get("kind") == "ingest"
        ),
    )
    columns = [
        "id",
        "source",
        "language",
        "duplicate_of",
        "cluster_id",
        "topics.topic",
        "firstcreated",
        "kafka_timestamp",
    ]
    stories = read_committed(dataset, "stories", columns, table=table)
    letters = read_committed(dataset, "dead_letters", ["stage", "reason"])
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("s", stories)
        con.register("d", letters)
        _stories(con, data)
        _dead_letters(con, data, letters.column("reason").to_pylist())
        _sources(con, data)
        _lag(con, data)
    return data


def _rows(con: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()  # type: ignore[no-any-return]


def _stories(con: Any, data: ReportData) -> None:
    [(data.stories, data.unique_stories)] = _rows(
        con, "SELECT count(*), count(*) FILTER (WHERE duplicate_of IS NULL) FROM s"
    )
    data.duplicates_flagged = data.stories - data.unique_stories
    sizes = _rows(
        con,
        "SELECT n, count(*) FROM (SELECT count(*) AS n FROM s GROUP BY coalesce(cluster_id, id)) GROUP BY n",
    )
    data.clusters = sum(count for _, count in sizes)
    data.duplicate_clusters = sum(count for n, count in sizes if n > 1)
    by_size = {label: 0 for label in ("1", "2", "3", "4", "5+")}
    for n, count in sizes:
        by_size["5+" if n >= 5 else str(n)] += count
    data.cluster_sizes = list(by_size.items())

    con.execute(
        "CREATE TEMP TABLE days AS SELECT strftime(coalesce(firstcreated, kafka_timestamp), '%Y-%m-%d') AS day, "
        f"coalesce(topics[1].topic, '{UNTAGGED}') AS topic FROM s"
    )
    every_day = _rows(con, "SELECT day, count(*) FROM days GROUP BY day ORDER BY day")
    data.days_total = len(every_day)
    data.days = [(str(day), int(n)) for day, n in every_day[-DAYS_SHOWN:]]
    shown = [day for day, _ in data.days]
    counts = _rows(
        con, "SELECT day, topic, count(*) FROM days WHERE list_contains(?, day) GROUP BY ALL", shown
    )
    totals: dict[str, int] = {}
    for _day, topic, n in counts:
        if topic != UNTAGGED:
            totals[topic] = totals.get(topic, 0) + n
    top = sorted(totals, key=lambda t: (-totals[t], t))[:TOPICS_SHOWN]
    for day, topic, n in counts:
        series = topic if topic in top or topic == UNTAGGED else OTHER_TOPICS
        data.day_topics[(day, series)] = data.day_topics.get((day, series), 0) + n
    present = {series for _, series in data.day_topics}
    data.topics = top + [s for s in (OTHER_TOPICS, UNTAGGED) if s in present]


def _dead_letters(con: Any, data: ReportData, reasons: list[str]) -> None:
    data.dead_letters = len(reasons)
    data.dead_letter_stages = [
        (str(stage), int(n))
        for stage, n in _rows(con, "SELECT stage, count(*) FROM d GROUP BY 1 ORDER BY 2 DESC, 1")
    ]
    kinds: dict[str, int] = {}
    for reason in reasons:
        kind = reason_kind(reason)
        kinds[kind] = kinds.get(kind, 0) + 1
    data.dead_letter_reasons = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))


def _sources(con: Any, data: ReportData) -> None:
    data.languages = [
        (str(language), int(n))
        for language, n in _rows(
            con, "SELECT coalesce(language, 'unknown'), count(*) FROM s GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    rows = _rows(
        con,
        """SELECT source, count(*), max(kafka_timestamp),
                  median(epoch(kafka_timestamp) - epoch(firstcreated))
                      FILTER (WHERE firstcreated IS NOT NULL AND firstcreated <= kafka_timestamp)
           FROM s GROUP BY source ORDER BY 2 DESC, 1""",
    )
    now = data.committed_at
    for source, n, last_seen, delay in rows:
        age = (now - last_seen).total_seconds() if now is not None and last_seen is not None else None
        data.sources.append(
            {
                "source": source,
                "stories": int(n),
                "last_seen": last_seen,
                "last_seen_age_s": max(0.0, age) if age is not None else None,
                "delay_p50_s": float(delay) if delay is not None else None,
            }
        )


def _lag(con: Any, data: ReportData) -> None:
    con.execute(
        "CREATE TEMP TABLE lag AS SELECT "
        f"greatest(epoch({COMMITTED_AT}) - epoch(kafka_timestamp), 0) AS seconds "
        f"FROM s WHERE {COMMIT_KIND} = 'ingest' AND {COMMITTED_AT} IS NOT NULL AND kafka_timestamp IS NOT NULL"
    )
    [(n, p50, p95, most)] = _rows(
        con,
        "SELECT count(*), quantile_cont(seconds, 0.5), quantile_cont(seconds, 0.95), max(seconds) FROM lag",
    )
    data.lag_stories = int(n)
    data.lag_p50_s, data.lag_p95_s, data.lag_max_s = p50, p95, most
    lower = 0.0
    for label, upper in LAG_BUCKETS:
        [(count,)] = _rows(con, "SELECT count(*) FROM lag WHERE seconds >= ? AND seconds < ?", lower, upper)
        data.lag_buckets.append((label, int(count)))
        lower = upper


# -- the page -----------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _count(value: int) -> str:
    return f"{value:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _num(
    metric: str, value: float | int | str | None, text: str, key: str | None = None, tag: str = "span"
) -> str:
    """A number as the page shows it, with its machine-readable marker."""
    attrs = f' data-metric="{_esc(metric)}"'
    if key is not None:
        attrs += f' data-key="{_esc(key)}"'
    attrs += f' data-value="{"" if value is None else _esc(value)}"'
    return f'<{tag} class="num"{attrs}>{_esc(text)}</{tag}>'


def _hbars(chart: str, metric: str, items: list[tuple[str, int]], colors: list[str] | None = None) -> str:
    """A horizontal bar chart: one labelled bar a key, its value at its end."""
    if not any(value for _, value in items):
        return f'<svg data-chart="{chart}" class="chart" width="480" height="40"><text x="8" y="24">nothing to show</text></svg>'
    row, label_w, bar_w = 22, 170, 250
    top = max(value for _, value in items) or 1
    height = row * len(items) + 8
    marks = []
    for i, (key, value) in enumerate(items):
        y = 4 + i * row
        width = bar_w * value / top
        color = (colors or [])[i] if colors else PALETTE[0]
        label = key if len(key) <= 26 else key[:25] + "…"
        marks.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">{_esc(label)}<title>{_esc(key)}</title></text>'
            f'<rect class="mark" data-metric="{_esc(metric)}" data-key="{_esc(key)}" data-value="{value}" '
            f'x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="{color}">'
            f"<title>{_esc(key)}: {value:,}</title></rect>"
            f'<text x="{label_w + width + 4:.1f}" y="{y + 15}" class="val">{value:,}</text>'
        )
    return (
        f'<svg data-chart="{chart}" class="chart" width="{label_w + bar_w + 60}" height="{height}" '
        f'role="img" aria-label="{_esc(chart)}">' + "".join(marks) + "</svg>"
    )


def _stacked_days(data: ReportData) -> str:
    """Stories per day, one column a day, stacked by main topic, with a legend."""
    if not data.days:
        return '<svg data-chart="stories-per-day" class="chart" width="480" height="40"><text x="8" y="24">nothing to show</text></svg>'
    plot_h, left, bottom = 200, 44, 40
    step = max(8.0, min(40.0, 640 / len(data.days)))
    width = left + step * len(data.days) + 10
    top = max(n for _, n in data.days) or 1
    color = {topic: PALETTE[i % len(PALETTE)] for i, topic in enumerate(data.topics)}
    parts = [
        f'<line x1="{left}" y1="{plot_h + 4}" x2="{width}" y2="{plot_h + 4}" stroke="#999"/>',
        f'<text x="{left - 4}" y="12" text-anchor="end" class="val">{top:,}</text>',
        f'<text x="{left - 4}" y="{plot_h + 4}" text-anchor="end" class="val">0</text>',
    ]
    for i, (day, _total) in enumerate(data.days):
        x = left + i * step + 1
        y = plot_h + 4.0
        for topic in data.topics:
            n = data.day_topics.get((day, topic), 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect class="mark" data-metric="day-topic" data-key="{_esc(day)}/{_esc(topic)}" data-value="{n}" '
                f'x="{x:.1f}" y="{y:.1f}" width="{step - 2:.1f}" height="{h:.1f}" fill="{color[topic]}">'
                f"<title>{_esc(day)} {_esc(topic)}: {n:,}</title></rect>"
            )
        if len(data.days) <= 16 or i % max(1, len(data.days) // 8) == 0:
            parts.append(
                f'<text class="lbl" transform="translate({x + step / 2:.1f},{plot_h + 14}) rotate(30)">{_esc(day[5:])}</text>'
            )
    legend_y = plot_h + bottom + 6
    for i, topic in enumerate(data.topics):
        x = left + (i % 4) * 160
        y = legend_y + (i // 4) * 18
        parts.append(
            f'<rect x="{x}" y="{y - 10}" width="10" height="10" fill="{color[topic]}"/>'
            f'<text x="{x + 14}" y="{y}" class="lbl">{_esc(topic)}</text>'
        )
    height = legend_y + ((len(data.topics) + 3) // 4) * 18 + 4
    return (
        f'<svg data-chart="stories-per-day" class="chart" width="{max(width, 660):.0f}" height="{height}" '
        f'role="img" aria-label="stories per day by topic">' + "".join(parts) + "</svg>"
    )


def _table(head: list[str], rows: list[list[str]], right: tuple[int, ...] = (1,)) -> str:
    """A table of numbers; the columns ``right`` (numbers) aligned right."""

    def cell(tag: str, index: int, content: str) -> str:
        return f'<{tag} class="r">{content}</{tag}>' if index in right else f"<{tag}>{content}</{tag}>"

    cells = "".join(cell("th", i, _esc(h)) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, note: str, chart: str, table: str) -> str:
    return (
        f'<section><h2>{_esc(title)}</h2><p class="note">{note}</p>'
        f'<div class="pair"><div class="fig">{chart}</div><div class="nums">{table}</div></div></section>'
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;background:#f6f7f9;margin:0}
header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}main{padding:8px 28px 28px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:10px 14px;min-width:120px}
.card .num{display:block;font-size:22px;font-weight:600}.card small{color:#5a6573}
section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 18px;margin:16px 0}
section h2{font-size:17px;margin:0 0 2px}.note{color:#5a6573;margin:0 0 10px}
.pair{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.fig{flex:0 0 auto}.nums{flex:1 1 260px;max-height:460px;overflow:auto}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eef0f3;text-align:left}
td:first-child,td.r{white-space:nowrap}
.r{text-align:right;font-variant-numeric:tabular-nums}
svg .lbl{font-size:11px;fill:#333}svg .val{font-size:11px;fill:#5a6573}.stale{color:#c2464b;font-weight:600}
"""


def render(data: ReportData) -> str:
    """The whole page."""
    when = data.committed_at.strftime("%Y-%m-%d %H:%M:%S UTC") if data.committed_at else "never"
    cards = [
        ("stories", data.stories, _count(data.stories), "stories in the table"),
        ("unique-stories", data.unique_stories, _count(data.unique_stories), "unique (no duplicate_of)"),
        (
            "duplicates-flagged",
            data.duplicates_flagged,
            _count(data.duplicates_flagged),
            "syndicated copies kept",
        ),
        (
            "duplicate-rate",
            round(data.duplicate_rate, 6),
            f"{data.duplicate_rate:.1%}",
            "of stories are copies",
        ),
        (
            "duplicate-clusters",
            data.duplicate_clusters,
            _count(data.duplicate_clusters),
            "clusters of 2+ stories",
        ),
        (
            "duplicates-dropped",
            data.duplicates_dropped,
            _count(data.duplicates_dropped),
            "same id delivered again",
        ),
        ("dead-letters", data.dead_letters, _count(data.dead_letters), "dead letters (pipeline)"),
        ("sources", len(data.sources), _count(len(data.sources)), "sources"),
        ("batches", data.batches, _count(data.batches), "snapshots committed"),
    ]
    card_html = "".join(
        f'<div class="card">{_num(metric, value, text)}<small>{_esc(label)}</small></div>'
        for metric, value, text, label in cards
    )

    day_rows = []
    for day, total in reversed(data.days):
        split = ", ".join(
            f"{_esc(topic)} {_num('day-topic', n, _count(n), f'{day}/{topic}')}"
            for topic in data.topics
            if (n := data.day_topics.get((day, topic), 0))
        )
        day_rows.append([_esc(day), _num("day-stories", total, _count(total), day), split])
    shown = (
        f"the last {len(data.days)} of {data.days_total} days"
        if data.days_total > len(data.days)
        else "every day"
    )
    days = _section(
        "Stories per day by topic",
        f"Publication day (UTC; Kafka time where a story has none), {shown}; each story under its "
        "highest-scoring topic.",
        _stacked_days(data),
        _table(["day", "stories", "by main topic"], day_rows),
    )

    duplicates = _section(
        "Duplicate clusters and rate",
        f"{_num('clusters', data.clusters, _count(data.clusters))} clusters; "
        f"{_num('duplicate-rate', round(data.duplicate_rate, 6), f'{data.duplicate_rate:.1%}')} of stories "
        "are a copy of an earlier one (kept, with duplicate_of set). Clusters by how many stories they hold:",
        _hbars("cluster-sizes", "cluster-size", data.cluster_sizes),
        _table(
            ["stories in cluster", "clusters"],
            [[_esc(size), _num("cluster-size", n, _count(n), size)] for size, n in data.cluster_sizes],
        ),
    )

    reasons = data.dead_letter_reasons[:ROWS_SHOWN]
    letters = _section(
        "Dead letters by reason",
        f"{_num('dead-letters', data.dead_letters, _count(data.dead_letters))} records of the raw topic failed "
        "in the pipeline (table dead_letters); numbers in reasons are masked (N). By stage: "
        + ", ".join(
            f"{_esc(stage)} {_num('dead-letter-stage', n, _count(n), stage)}"
            for stage, n in data.dead_letter_stages
        )
        + "."
        + (
            " The connectors' dead letters are in Kafka: <code>wirestream dead-letters</code>, or "
            "<code>wirestream report --connectors</code> to chart them here."
            if data.connector_dead_letters is None
            else ""
        ),
        _hbars("dead-letter-reasons", "dead-letter-reason", reasons, [PALETTE[3]] * len(reasons)),
        _table(
            ["reason", "records"],
            [[_esc(kind), _num("dead-letter-reason", n, _count(n), kind)] for kind, n in reasons],
        ),
    )
    if data.connector_dead_letters is not None:
        found = data.connector_reasons[:ROWS_SHOWN]
        letters += _section(
            "Connector dead letters by reason",
            f"{_num('connector-dead-letters', data.connector_dead_letters, _count(data.connector_dead_letters))} "
            "feed items and files the connectors could not turn into a raw story (Kafka topic "
            f"<code>{_esc(data.connector_topic)}</code>, read when the page was written); numbers in "
            "reasons are masked (N).",
            _hbars(
                "connector-dead-letter-reasons",
                "connector-dead-letter-reason",
                found,
                [PALETTE[5]] * len(found),
            ),
            _table(
                ["reason", "dead letters"],
                [[_esc(kind), _num("connector-dead-letter-reason", n, _count(n), kind)] for kind, n in found],
            ),
        )

    languages = data.languages[:ROWS_SHOWN]
    lang = _section(
        "Languages",
        "As detected from each story's text; <em>unknown</em> where none was.",
        _hbars("languages", "language", languages, [PALETTE[2]] * len(languages)),
        _table(["language", "stories"], [[_esc(k), _num("language", n, _count(n), k)] for k, n in languages]),
    )

    sources = data.sources[:ROWS_SHOWN]
    source_rows = []
    for entry in sources:
        age = entry["last_seen_age_s"]
        stale = age is not None and age > STALE_AFTER_S
        seen = entry["last_seen"].strftime("%Y-%m-%d %H:%M") if entry["last_seen"] else "–"
        source_rows.append(
            [
                f'<span class="{"stale" if stale else ""}">{_esc(entry["source"])}</span>',
                _num("source-stories", entry["stories"], _count(entry["stories"]), entry["source"]),
                _num(
                    "source-last-seen",
                    entry["last_seen"].isoformat() if entry["last_seen"] else None,
                    seen,
                    entry["source"],
                ),
                _num(
                    "source-last-seen-age",
                    None if age is None else round(age, 3),
                    _duration(age),
                    entry["source"],
                ),
                _num(
                    "source-delay-p50",
                    None if entry["delay_p50_s"] is None else round(entry["delay_p50_s"], 3),
                    _duration(entry["delay_p50_s"]),
                    entry["source"],
                ),
            ]
        )
    more = len(data.sources) - len(sources)
    health = _section(
        "Feed health",
        "Stories per source; last seen is its newest story's Kafka time, and its age is measured back "
        f"from the snapshot's commit ({_esc(when)}); a source silent for over a day is in red. Delay: "
        "the median time from publication to Kafka."
        + (f" The {more} smaller sources are left out." if more > 0 else ""),
        _hbars(
            "feed-health",
            "source-stories",
            [(e["source"], e["stories"]) for e in sources],
            [
                PALETTE[3]
                if e["last_seen_age_s"] is not None and e["last_seen_age_s"] > STALE_AFTER_S
                else PALETTE[0]
                for e in sources
            ],
        ),
        _table(["source", "stories", "last seen (UTC)", "silent for", "delay p50"], source_rows, (1, 3, 4)),
    )

    lag = _section(
        "Commit lag",
        f"Time from a story's Kafka timestamp to the commit of the batch that added it, over the "
        f"{_num('lag-stories', data.lag_stories, _count(data.lag_stories))} stories ingest batches committed "
        f"(rewritten rows left out): median {_num('lag-p50', _round(data.lag_p50_s), _duration(data.lag_p50_s))}, "
        f"95th percentile {_num('lag-p95', _round(data.lag_p95_s), _duration(data.lag_p95_s))}, "
        f"most {_num('lag-max', _round(data.lag_max_s), _duration(data.lag_max_s))}.",
        _hbars("commit-lag", "lag-bucket", data.lag_buckets, [PALETTE[4]] * len(data.lag_buckets)),
        _table(
            ["lag", "stories"], [[_esc(k), _num("lag-bucket", n, _count(n), k)] for k, n in data.lag_buckets]
        ),
    )

    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>wirestream report: {_esc(data.output)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>wirestream report</h1><p>{_esc(data.output)} · snapshot "
        f'<span data-metric="snapshot-id" data-value="{_esc(data.snapshot_id or "")}">{_esc(data.snapshot_id)}</span>'
        f" committed {_esc(when)}</p></header>"
        f'<main><div class="cards">{card_html}</div>{days}{duplicates}{letters}{lang}{health}{lag}</main>'
        "</body></html>\n"
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write_report(dataset: Dataset, path: str | os.PathLike[str], kafka: Config | None = None) -> Written:
    """Write the page for ``dataset`` to ``path`` (replaced whole, never half-written); with
    ``kafka``, the connectors' dead letters in its dead-letter topic are charted too."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--html {target} is a folder; name the page's file (e.g. {target}/report.html)")
    if not target.parent.is_dir():
        raise UserError(f"--html {target}: the folder {target.parent} does not exist")
    data = gather(dataset)
    if kafka is not None:
        from wirestream.deadletters import connector_letters

        kinds = Counter(reason_kind(letter.reason) for letter in connector_letters(kafka))
        data.connector_dead_letters = sum(kinds.values())
        data.connector_reasons = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        data.connector_topic = kafka.dlq_topic
    page = render(data)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Written(target, data.stories, data.dead_letters)
