"""What a dataset holds, read back from committed files only (DuckDB over the manifest's list)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.dataset import Dataset
from wirestream.errors import UserError


@dataclass
class Summary:
    output: str
    batches: int = 0
    records_read: int = 0
    rows: int = 0
    unique_stories: int = 0
    duplicates_flagged: int = 0
    duplicates_dropped: int = 0
    dead_letters: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"dataset              {self.output}",
            f"batches committed    {self.batches}",
            f"stories read         {self.records_read}",
            f"stories written      {self.rows}",
            f"  unique             {self.unique_stories}",
            f"  syndicated copies  {self.duplicates_flagged}  (kept, duplicate_of set)",
            f"duplicates dropped   {self.duplicates_dropped}  (same story id delivered again)",
            f"dead letters         {self.dead_letters}  (failed the contract in the pipeline; see dead_letters/)",
            "stories per topic",
        ]
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


def summarize(output: str) -> Summary:
    dataset = Dataset(output)
    if not Path(output).is_dir():
        raise UserError(f"{output} is not a wirestream dataset folder (it does not exist)")
    manifests = dataset.manifests()
    summary = Summary(output=str(Path(output).resolve()), batches=len(manifests))
    for manifest in manifests:
        if manifest.get("kind", "ingest") != "ingest":
            continue  # backfills re-read and compactions rewrite: counting them would double-count
        summary.records_read += manifest["stats"]["records"]
        summary.duplicates_dropped += manifest["stats"]["duplicates_dropped"]
    data = dataset.committed_files("data")
    letters = dataset.committed_files("dead_letters")
    with duckdb.connect() as con:
        if data:
            source = f"read_parquet({_sql_list(data)}, hive_partitioning = true)"
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
            source = f"read_parquet({_sql_list(letters)})"
            summary.dead_letters = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]  # type: ignore[index]
            summary.dead_letter_reasons = [
                r[0] for r in con.execute(f"SELECT reason FROM {source} ORDER BY 1 LIMIT 5").fetchall()
            ]
    return summary
