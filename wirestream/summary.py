"""What a dataset holds, read back from a snapshot of its tables (DuckDB over the files it lists)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import Dataset
from pipeline.storage import is_local, local_path, open_source
from wirestream.errors import UserError


@dataclass
class Summary:
    output: str
    snapshot_id: int | None = None
    committed_at: str | None = None
    batches: int = 0
    records_read: int = 0
    rows: int = 0
    unique_stories: int = 0
    duplicates_flagged: int = 0
    duplicates_dropped: int = 0
    dead_letters: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: list[str] = field(default_factory=list)
    # What the connectors refused before Kafka (the demo knows it; a dataset alone does not).
    connector_dead_letters: int | None = None
    dlq_topic: str | None = None

    def lines(self) -> list[str]:
        out = [
            f"dataset              {self.output}",
            f"snapshot             {self.snapshot_id} ({self.committed_at})",
            f"batches committed    {self.batches}",
            f"stories read         {self.records_read}",
            f"stories written      {self.rows}",
            f"  unique             {self.unique_stories}",
            f"  syndicated copies  {self.duplicates_flagged}  (kept, duplicate_of set)",
            f"duplicates dropped   {self.duplicates_dropped}  (same story id delivered again)",
        ]
        if self.connector_dead_letters is None:
            out.append(
                f"dead letters         {self.dead_letters}  (failed the contract in the pipeline; table dead_letters)"
            )
        else:
            out += [
                f"dead letters         {self.dead_letters + self.connector_dead_letters}",
                f"  by the connectors  {self.connector_dead_letters}  (refused this run; topic {self.dlq_topic})",
                f"  by the pipeline    {self.dead_letters}  (failed the contract; table dead_letters)",
            ]
        out.append("stories per topic")
        out += [
            f"  {topic:<20} {count}"
            for topic, count in sorted(self.topics.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        if not self.topics:
            out.append("  (none)")
        for reason in self.dead_letter_reasons[:5]:
            out.append(f"dead letter: {reason}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _relation(con: Any, name: str, uris: list[str], columns: list[str], properties: dict[str, str]) -> str:
    """SQL naming the rows of ``uris``: DuckDB reads local files itself; files on object storage
    are read through the table's FileIO and handed to DuckDB as Arrow."""
    if all(is_local(uri) for uri in uris):
        return f"read_parquet({_sql_list([local_path(uri) for uri in uris])})"
    table = pa.concat_tables(pq.read_table(open_source(uri, properties), columns=columns) for uri in uris)
    con.register(name, table)
    return name


def summarize(dataset: Dataset, as_of: str | None = None) -> Summary:
    """The dataset as its current snapshot holds it, or as it was at ``as_of`` (a snapshot id, or
    an RFC 3339 time: the last snapshot committed at or before it)."""
    if dataset.embedded and not dataset.root.is_dir():
        raise UserError(f"{dataset.root} is not a wirestream dataset folder (it does not exist)")
    if not dataset.exists():
        raise UserError(f"{dataset.root} holds no wirestream table: nothing committed yet")
    commits = dataset.commits()
    snapshot = _resolve(commits, as_of)
    commits = dataset.commits(snapshot["snapshot_id"]) if snapshot else []
    summary = Summary(
        output=str(dataset.root.resolve()) if dataset.embedded else str(dataset.settings.uri),
        snapshot_id=snapshot["snapshot_id"] if snapshot else None,
        committed_at=snapshot["committed_at"] if snapshot else None,
        batches=len(commits),
    )
    for commit in commits:
        if commit.get("kind") != "ingest":
            continue  # backfills re-read and compactions rewrite: counting them would double-count
        summary.records_read += commit["stats"]["records"]
        summary.duplicates_dropped += commit["stats"]["duplicates_dropped"]
    snapshot_id = snapshot["snapshot_id"] if snapshot else None
    data = dataset.file_uris("stories", snapshot_id)
    letters = dataset.file_uris("dead_letters", at=snapshot)
    with duckdb.connect() as con:
        if data:
            source = _relation(con, "stories", data, ["duplicate_of", "topics"], dataset.settings.properties)
            summary.rows, summary.unique_stories = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE duplicate_of IS NULL) FROM {source}"
            ).fetchone()  # type: ignore[misc]
            summary.duplicates_flagged = summary.rows - summary.unique_stories
            summary.topics = dict(
                con.execute(
                    f"SELECT t.topic, count(*) FROM {source}, unnest(topics) AS u(t) GROUP BY 1"
                ).fetchall()
            )
        if letters:
            source = _relation(con, "dead_letters", letters, ["reason"], dataset.settings.properties)
            summary.dead_letters = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]  # type: ignore[index]
            summary.dead_letter_reasons = [
                r[0] for r in con.execute(f"SELECT reason FROM {source} ORDER BY 1 LIMIT 5").fetchall()
            ]
    return summary


def _resolve(commits: list[dict[str, Any]], as_of: str | None) -> dict[str, Any] | None:
    """The commit ``as_of`` names: a snapshot id, or the last committed at or before a time."""
    if as_of is None:
        return commits[-1] if commits else None
    if as_of.isdigit():
        for commit in commits:
            if commit["snapshot_id"] == int(as_of):
                return commit
        raise UserError(f"no snapshot {as_of} in the table's history (expired, or another table's)")
    try:
        moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--as-of {as_of!r} is neither a snapshot id nor an RFC 3339 time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    before = [c for c in commits if datetime.fromisoformat(c["committed_at"]) <= moment]
    if not before:
        raise UserError(f"the table has no snapshot at or before {moment.isoformat()}")
    return before[-1]
