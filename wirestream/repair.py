"""`wirestream repair`: a table that cannot be read in full made readable again, with nothing lost
silently.

What can go wrong, and what repair does about it (`Dataset.plan_repair` finds it):

- the catalog's current metadata file is missing or unreadable: the newest metadata file under the
  table's ``metadata/`` folder that reads is registered as the current one again (embedded catalog);
- a snapshot's manifest list or a manifest is missing or unreadable, or a snapshot's position passes
  Kafka offsets that no kept snapshot read (a gap): the last snapshot before it becomes current
  again and the snapshots from it on leave the history, so the next ``run`` reads their offsets
  again from Kafka (the summary of that snapshot holds where to start); the dead letters of the
  batches rolled back go with them, so they are not doubled when those batches run again;
- a data file is missing, truncated or not the file the table recorded: it leaves the table in one
  snapshot, and the report names the backfill (``backfill --since DAY --until DAY+1``) that reads
  the stories of its ingestion day again.

Repair deletes no file: what leaves the table stays on disk until ``maintain`` removes files no
snapshot reaches, once they are older than the retention.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pipeline.dataset import (
    DEAD_LETTERS,
    STORIES,
    BatchStats,
    CorruptTable,
    Dataset,
    _commit_files,
    _summary_properties,
    commit_record,
    format_ranges,
)
from pipeline.storage import local_path
from wirestream.errors import UserError

__all__ = ["RepairReport", "repair", "explain"]

_BATCH = re.compile(r"batch-(\d+)-")
_VERSION = re.compile(r"^(\d+)-.*\.metadata\.json$")


@dataclass
class RepairReport:
    """What `repair` did, one line each."""

    lines: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.lines)


def repair(dataset: Dataset) -> RepairReport:
    """Make the stories table readable in full again (see the module's docstring), under the
    output folder's writer lock (refused while a run holds it)."""
    report = RepairReport()
    if not dataset.embedded:
        raise UserError(
            "wirestream repair rolls back tables of the embedded catalog; with a REST catalog, roll "
            "back with the catalog's own tools (Iceberg's rollback_to_snapshot) and run again"
        )
    if dataset.metadata_location(STORIES) is None:
        dataset.table()  # no table: says so
    with dataset.lock():  # a run writing to the table is refused, not waited for
        for name in (STORIES, DEAD_LETTERS):
            registered = _register_readable_metadata(dataset, name)
            if registered:
                report.lines.append(registered)
        _repair_dead_letters(dataset, report)
        plan = dataset.plan_repair()
        if not plan.needed:
            _trim_dead_letters(dataset, report)
            return report
        if plan.dropped and plan.rollback_to is None:
            raise dataset.corrupt(plan)
        for problem in plan.problems:
            report.lines.append(f"found: {problem}")
        stories = dataset.table(STORIES)
        if plan.dropped and plan.rollback_to == plan.current:
            _drop(stories, plan.rollback_to, plan.dropped)
            stories = dataset.table(STORIES)
            report.lines.append(
                f"took {len(plan.dropped)} snapshot(s) that cannot be read out of the history; the current "
                f"snapshot {plan.current} reads in full and stays"
            )
        elif plan.dropped:
            _drop(stories, plan.rollback_to, plan.dropped)
            stories = dataset.table(STORIES)
            kept = commit_record(stories.current_snapshot())
            report.lines.append(
                f"rolled back to snapshot {plan.rollback_to} (batch {kept.get('batch')}): "
                f"{len(plan.dropped)} snapshot(s) left the history; the next "
                f"`wirestream run --output {dataset.root}` reads {format_ranges(plan.reread)} again"
            )
        if plan.unreadable:
            current = commit_record(stories.current_snapshot())
            properties = _summary_properties(
                int(current.get("batch") or 0),
                "repair",
                [],
                dataset.position(stories),
                BatchStats(records=0, rows=0, dead_letters=0),
                {"unreadable": sorted(f.file_path for f in plan.unreadable)},
            )
            _commit_files(stories, properties, plan.unreadable, [])
            rows = sum(f.record_count for f in plan.unreadable)
            backfills = "; ".join(
                f"wirestream backfill --since {day} --until {date.fromisoformat(day) + timedelta(days=1)} "
                f"--output {dataset.root}"
                for day in plan.days
            )
            report.lines.append(
                f"took {len(plan.unreadable)} unreadable data file(s) ({rows} rows) out of the table"
                + (f"; read their stories again with: {backfills}" if backfills else "")
            )
        _trim_dead_letters(dataset, report)
    return report


def _repair_dead_letters(dataset: Dataset, report: RepairReport) -> None:
    """The dead-letter table read in full again: snapshots that do not read leave its history, and
    data files that do not read leave the table (the stories they were dead letters of are in Kafka
    still; a backfill of their day makes them again)."""
    letters = dataset._load(DEAD_LETTERS, create=False)
    plan = dataset.plan_repair(letters) if letters is not None else None
    if plan is None or not plan.needed:
        return
    if plan.dropped and plan.rollback_to is None:
        raise dataset.corrupt(plan)
    for problem in plan.problems:
        report.lines.append(f"found: {problem}")
    if plan.dropped:
        _drop(letters, plan.rollback_to, plan.dropped)
        report.lines.append(
            f"made snapshot {plan.rollback_to} of the dead-letter table current: {len(plan.dropped)} "
            "snapshot(s) left its history, with the dead letters they added"
        )
        letters = dataset.table(DEAD_LETTERS)
    if plan.unreadable:
        current = commit_record(letters.current_snapshot())
        properties = _summary_properties(
            int(current.get("batch") or 0),
            "repair",
            [],
            {},
            BatchStats(records=0, rows=0, dead_letters=0),
            {},
        )
        _commit_files(letters, properties, plan.unreadable, [])
        report.lines.append(f"took {len(plan.unreadable)} unreadable dead-letter file(s) out of their table")


def _trim_dead_letters(dataset: Dataset, report: RepairReport) -> None:
    """After the stories table went back to an earlier batch, the dead letters of the batches after
    it leave their table too: those batches run again and commit their dead letters again."""
    stories = dataset.table(STORIES)
    current = stories.current_snapshot()
    batch = int(commit_record(current).get("batch") or 0) if current is not None else 0
    letters = _drop_dead_letters(dataset, batch)
    if letters:
        report.lines.append(
            f"took {letters} dead-letter file(s) of batches after batch {batch} out of their table "
            "(those batches commit them again)"
        )


def explain(dataset: Dataset | None, exc: BaseException) -> str | None:
    """The one line naming what of ``dataset`` is corrupt, when a command failed with ``exc`` that
    the library underneath raised; None when the table reads in full (``exc`` is something else)."""
    if dataset is None or isinstance(exc, UserError):
        return None
    try:
        for name in (STORIES, DEAD_LETTERS):
            table = dataset._load(name, create=False)
            plan = dataset.plan_repair(table) if table is not None else None
            if plan is not None and plan.needed:
                return str(dataset.corrupt(plan))
    except CorruptTable as found:
        return str(found)
    except Exception:
        return None
    return None


def _register_readable_metadata(dataset: Dataset, name: str) -> str | None:
    """Register the newest metadata file of table ``name`` that reads as its current one, when the
    one the catalog names does not read; a line saying so, or None when nothing was wrong."""
    from pyiceberg.io import load_file_io
    from pyiceberg.serializers import FromInputFile

    location = dataset.metadata_location(name)
    if location is None:
        return None
    try:
        dataset.table(name)
        return None
    except CorruptTable:
        pass
    folder = local_path(location).parent
    versions = sorted(
        (int(m.group(1)), path)
        for path in folder.glob("*.metadata.json")
        if (m := _VERSION.match(path.name)) and str(path) != str(local_path(location))
    )
    io = load_file_io(properties=dict(dataset.settings.properties), location=location)
    for _version, path in reversed(versions):
        uri = f"file://{path}"
        try:
            FromInputFile.table_metadata(io.new_input(uri))
        except Exception:
            continue
        with contextlib.closing(sqlite3.connect(dataset.root / "catalog.db")) as con, con:
            con.execute(
                "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
                "WHERE table_namespace = ? AND table_name = ?",
                (uri, location, dataset.settings.namespace, name),
            )
        reached = ""
        if name == STORIES:
            position = dataset.position()
            reached = "; the next `wirestream run` reads on from " + (
                ", ".join(
                    f"offset {offset} of partition {partition} of {topic}"
                    for topic, parts in sorted(position.items())
                    for partition, offset in sorted(parts.items())
                )
                or "the start of the topic"
            )
        return (
            f"registered {path} as the current metadata of table {dataset.settings.namespace}.{name} "
            f"(the newest that reads; {location} does not){reached}"
        )
    raise CorruptTable(
        f"{location}: the current metadata of table {dataset.settings.namespace}.{name} does not read, "
        f"and no other metadata file in {folder} does: move {dataset.root} aside and run again, which "
        "reads the topic from its start"
    )


def _drop(table: Any, keep: int | None, dropped: list[int]) -> None:
    """One metadata commit: snapshot ``keep`` current again, the ``dropped`` ones out of the history
    (their files stay on disk for `maintain`)."""
    from pyiceberg.table.update import AssertRefSnapshotId, RemoveSnapshotsUpdate, SetSnapshotRefUpdate

    import pipeline.iceberg_compat  # noqa: F401  (snapshot removal for the embedded catalog)

    current = table.current_snapshot()
    table.catalog.commit_table(
        table,
        requirements=(
            AssertRefSnapshotId.model_validate(
                {"snapshot-id": current.snapshot_id if current else None, "ref": "main"}
            ),
        ),
        updates=(
            SetSnapshotRefUpdate.model_validate({"ref-name": "main", "type": "branch", "snapshot-id": keep}),
            RemoveSnapshotsUpdate.model_validate({"snapshot-ids": sorted(set(dropped))}),
        ),
    )


def _drop_dead_letters(dataset: Dataset, kept_batch: int) -> int:
    """Take the dead letters of batches after ``kept_batch`` out of their table (those batches run
    again); how many files."""
    letters = dataset._load(DEAD_LETTERS, create=False)
    if letters is None or letters.current_snapshot() is None:
        return 0
    later = [
        task.file
        for task in letters.scan().plan_files()
        if (m := _BATCH.search(task.file.file_path.rsplit("/", 1)[-1])) and int(m.group(1)) > kept_batch
    ]
    if later:
        properties = _summary_properties(
            kept_batch, "repair", [], {}, BatchStats(records=0, rows=0, dead_letters=0), {}
        )
        _commit_files(letters, properties, later, [])
    return len(later)
