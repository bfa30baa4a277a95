"""The committed dataset: an Apache Iceberg table of clean stories, and one of dead letters.

Layout under the output folder, with the embedded default catalog (pyiceberg's SQL catalog on
SQLite, beside the data)::

    catalog.db                                                     the catalog
    stories/metadata/...                                           table metadata, manifests, snapshots
    stories/data/ingest_day=2026-12-07/batch-000007-0000-000.parquet   clean rows
    dead_letters/data/batch-000007-0000-parse.parquet              records that failed, with reasons
    _staging/batch-000007/...                                      a run in progress (never read)
    _staging/batch-000007.commit                                   the files a commit in progress placed

With a REST catalog (``catalog_uri``) the tables live where its warehouse says; the output folder
keeps only staging and the lock.

A batch commits as **one snapshot** of the stories table: its data files are placed under the
table's location, then the snapshot that adds them (and, for a backfill or a compaction, removes
what they replace) is committed; its summary carries the Kafka offset ranges the batch read, the
position reached on every partition, the batch number, the row counts and the pipeline version. The
next batch starts from the current snapshot's position, so a restart resumes from the table itself.
A batch's dead letters are committed to the dead-letter table just before, replacing any of the same
batch number (a retry after a crash between the two commits), so they are never lost nor doubled.

A crash before the snapshot leaves files no snapshot references. The commit marker names them, so
the next run removes exactly those; any other unreferenced file is left to `maintain`, which removes
files no snapshot reaches only once they are older than the retention. Nothing is removed when what
the snapshots reach cannot be read in full.

A table file that cannot be read (the current metadata, a manifest list, a manifest, a data file),
and a position no kept snapshot's offsets account for (a gap), end a command in `CorruptTable`: one
line naming the file or the offsets, what is wrong, and `wirestream repair` (`wirestream.repair`),
never a smaller count.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import local_path, open_source, refused
from schemas import CLEAN_SCHEMA_VERSION, DEAD_LETTER_SCHEMA, PARTITION_COLUMN, PARTITION_SOURCE
from schemas.clean import ADDED_FIELDS, FIRST_CLEAN_SCHEMA
from wirestream.errors import UserError

__all__ = [
    "Dataset",
    "BatchStats",
    "CatalogSettings",
    "CorruptTable",
    "RepairPlan",
    "MaintainReport",
    "catalog_settings",
    "commit_record",
    "local_path",
]

log = logging.getLogger(__name__)

STORIES = "stories"
DEAD_LETTERS = "dead_letters"
PREFIX = "wirestream."  # snapshot summary keys and table properties of the project's own
_SCHEMA_VERSION_PROPERTY = PREFIX + "schema-version"


@dataclass
class BatchStats:
    records: int
    rows: int
    dead_letters: int

    @property
    def duplicates_dropped(self) -> int:
        return self.records - self.rows - self.dead_letters


@dataclass(frozen=True)
class CatalogSettings:
    """Where the tables are: the embedded SQL catalog by default, or a REST catalog."""

    uri: str | None = None  # REST catalog endpoint; None: SQLite catalog.db in the output folder
    warehouse: str | None = None  # the REST catalog's warehouse (e.g. s3://bucket/wirestream)
    namespace: str = "wirestream"
    properties: dict[str, str] = field(default_factory=dict)  # FileIO settings (s3.endpoint, ...)


def catalog_settings(config: Any) -> CatalogSettings:
    """The catalog a `wirestream.config.Config` names; S3 credentials come only from the
    environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), read by the S3 client itself."""
    properties = {}
    if config.s3_endpoint:
        properties["s3.endpoint"] = config.s3_endpoint
        properties.setdefault("s3.region", os.environ.get("AWS_REGION", "us-east-1"))
    return CatalogSettings(
        uri=config.catalog_uri,
        warehouse=config.catalog_warehouse,
        namespace=config.catalog_namespace,
        properties=properties,
    )


class CorruptTable(UserError):
    """A table file that cannot be read, or offsets no snapshot accounts for: the message names
    it, what is wrong and the repair."""


def _what_is_wrong(exc: BaseException) -> str:
    """How a file failed to read, in a few words. Object storage refusing the keys is no fault of
    the file: that ends the command with the credentials' own one line."""
    refusal = refused(exc)
    if refusal:
        raise UserError(
            f"object storage refused the credentials reading the table ({refusal}); check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: nothing was written"
        ) from None
    text = " ".join(str(exc).split())
    if isinstance(exc, FileNotFoundError) or "does not exist" in text or "No such file" in text:
        return "is missing"
    return f"cannot be read ({type(exc).__name__}: {text[:160] or 'empty'})"


@dataclass
class RepairPlan:
    """What is wrong with the stories table and what `wirestream repair` does about it.

    ``problems`` name each unreadable file or unaccounted offset range; ``rollback_to`` is the last
    snapshot whose metadata reads in full and whose position its offsets account for (the current
    one becomes it, ``dropped`` snapshots go from the history); ``unreadable`` are data files of that
    snapshot to remove from the table; ``reread`` the Kafka offset ranges whose stories the repair
    takes out of the table, which the next ``run`` reads again (a rollback) or a ``backfill`` of
    ``days`` does (an unreadable data file, whose offsets lie behind the position)."""

    problems: list[str] = field(default_factory=list)
    current: int | None = None
    rollback_to: int | None = None
    dropped: list[int] = field(default_factory=list)
    unreadable: list[Any] = field(default_factory=list)
    reread: list[dict[str, Any]] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    table: str = STORIES

    @property
    def needed(self) -> bool:
        return bool(self.problems)


@dataclass
class MaintainReport:
    snapshots_expired: int = 0
    files_removed: int = 0
    orphans_removed: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _partition_dir(data_file: Any) -> str:
    """``data/ingest_day=YYYY-MM-DD`` (or ``=null``) of a stories data file, from its partition
    value (days since the epoch), wherever the file itself lies."""
    days = data_file.partition[0] if len(data_file.partition) else None
    day = (date(1970, 1, 1) + timedelta(days=days)).isoformat() if days is not None else "null"
    return f"data/{PARTITION_COLUMN}={day}"


def _file_uri(path: Path) -> str:
    """``file://`` and the absolute path as it is (Iceberg and pyarrow take it unquoted)."""
    return f"file://{path.resolve()}"


def _summary(snapshot: Any) -> dict[str, str]:
    return dict(snapshot.summary.additional_properties) if snapshot.summary else {}


def commit_record(snapshot: Any) -> dict[str, Any]:
    """A snapshot as the commit it records: batch, kind, offsets, stats, runner and the rest."""
    summary = _summary(snapshot)
    own = {key[len(PREFIX) :]: value for key, value in summary.items() if key.startswith(PREFIX)}
    record: dict[str, Any] = {
        "snapshot_id": snapshot.snapshot_id,
        "parent_id": snapshot.parent_snapshot_id,
        "operation": str(snapshot.summary.operation.value) if snapshot.summary else None,
        "committed_at": datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC).isoformat(),
        "timestamp_ms": snapshot.timestamp_ms,
    }
    for key, value in own.items():
        try:
            record[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            record[key.replace("-", "_")] = value
    record.setdefault("kind", "external")
    record.setdefault("offsets", [])
    record["stats"] = {
        "records": record.pop("records", 0),
        "rows": record.pop("rows", 0),
        "dead_letters": record.pop("dead_letters", 0),
        "duplicates_dropped": record.pop("duplicates_dropped", 0),
    }
    return record


class Dataset:
    """The stories table and the dead-letter table, with the commit protocol over them."""

    def __init__(self, root: str | os.PathLike[str], catalog: CatalogSettings | None = None) -> None:
        if any(c in str(root) for c in "#?"):
            raise UserError(f"{root}: a dataset folder's path cannot hold '#' or '?' (they end a file URI)")
        self.root = Path(root)
        self.staging_root = self.root / "_staging"
        self.settings = catalog or CatalogSettings()
        self._catalog: Any = None

    # -- the catalog and its tables ------------------------------------------------------------

    @property
    def embedded(self) -> bool:
        return self.settings.uri is None

    def exists(self) -> bool:
        """Whether the stories table exists (a read needs it; a write creates it)."""
        if self.embedded and not (self.root / "catalog.db").is_file():
            return False
        return bool(self._load(STORIES, create=False))

    def catalog(self) -> Any:
        if self._catalog is None:
            from pyiceberg.catalog.rest import RestCatalog
            from pyiceberg.exceptions import ServerError

            try:
                if self.embedded:
                    if self.root.exists() and not self.root.is_dir():
                        raise UserError(f"{self.root} is a file, not a dataset folder")
                    self.root.mkdir(parents=True, exist_ok=True)
                    self._catalog = self._sql_catalog()
                else:
                    props = dict(self.settings.properties)
                    if self.settings.warehouse:
                        props["warehouse"] = self.settings.warehouse
                    self._catalog = RestCatalog("wirestream", uri=str(self.settings.uri), **props)
            except UserError:
                raise
            except (OSError, ServerError) as exc:
                raise UserError(f"cannot reach the catalog at {self.where()}: {exc}") from None
            except Exception as exc:  # the REST client raises its own kinds for refusals
                raise UserError(f"the catalog at {self.where()} refused the connection: {exc}") from None
        return self._catalog

    def where(self) -> str:
        """The catalog, as messages name it: the SQLite file, or the REST endpoint without any
        user or token in it."""
        if self.embedded:
            return str(self.root / "catalog.db")
        parsed = urlparse(str(self.settings.uri))
        return (
            parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl()
            if parsed.hostname
            else str(self.settings.uri)
        )

    def _sql_catalog(self) -> Any:
        """The embedded catalog. Opening it creates its own tables in ``catalog.db`` when missing;
        two processes opening a new one at once (a run and a reader) race to create them, and the
        loser finds them made: it opens again."""
        from pyiceberg.catalog.sql import SqlCatalog
        from sqlalchemy.exc import OperationalError

        for attempt in range(5):
            try:
                return SqlCatalog(
                    "wirestream",
                    uri=f"sqlite:///{(self.root / 'catalog.db').resolve()}",
                    warehouse=_file_uri(self.root),
                    **self.settings.properties,
                )
            except OperationalError as exc:
                if "already exists" not in str(exc) and "locked" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _identifier(self, name: str) -> str:
        return f"{self.settings.namespace}.{name}"

    def _load(self, name: str, create: bool) -> Any:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        if not create and self.embedded and not (self.root / "catalog.db").is_file():
            return None  # a read creates nothing
        catalog = self.catalog()
        try:
            table = catalog.load_table(self._identifier(name))
        except (NoSuchTableError, NoSuchNamespaceError):
            if not create:
                return None
            table = self._create(name)
        except Exception as exc:
            location = self.metadata_location(name) if self.embedded else None
            if location is None:
                raise
            raise CorruptTable(
                f"{location}: the current metadata of table {self._identifier(name)} "
                f"{_what_is_wrong(exc)}: run `{self.repair_command()}` (it registers the newest "
                "readable metadata file again)"
            ) from None
        found = table.properties.get(_SCHEMA_VERSION_PROPERTY)
        if found is not None and found != str(CLEAN_SCHEMA_VERSION):
            raise UserError(
                f"table {self._identifier(name)} holds schema version {found}; this wirestream writes "
                f"version {CLEAN_SCHEMA_VERSION}: use another table or upgrade wirestream"
            )
        if name == STORIES and create:
            table = self._add_fields(table)
        return table

    def _add_fields(self, table: Any) -> Any:
        """The stories table with the columns added since the first release (`ADDED_FIELDS`), each
        taking the field id the files carry: an Iceberg schema update, once per table."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.table.name_mapping import create_mapping_from_schema

        names = set(table.schema().column_names)
        missing = [f for f in ADDED_FIELDS if f.name not in names]
        if not missing:
            return table
        added = pyarrow_to_schema(pa.schema(missing))
        try:
            with table.transaction() as transaction, transaction.update_schema() as update:
                for field in added.fields:
                    update.add_column(field.name, field.field_type, doc=None)
            table = table.refresh()
            with table.transaction() as transaction:
                mapping = create_mapping_from_schema(table.schema()).model_dump_json()
                transaction.set_properties({"schema.name-mapping.default": mapping})
        except CommitFailedException:  # another writer added them first
            table = table.refresh()
        ids = {f.name: f.field_id for f in table.schema().fields}
        for field in missing:
            expected = int(field.metadata[b"PARQUET:field_id"])
            if ids.get(field.name) != expected:
                raise UserError(
                    f"table {self._identifier(STORIES)} gave column {field.name} field id {ids.get(field.name)}, "
                    f"where wirestream's files carry {expected}: the table was changed by another tool"
                )
        return table

    def _create(self, name: str) -> Any:
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.table.name_mapping import create_mapping_from_schema
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import DayTransform, IdentityTransform
        from sqlalchemy.exc import IntegrityError

        catalog = self.catalog()
        # Two writers creating the namespace at once: the SQL catalog's loser meets the other's row.
        with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
            catalog.create_namespace(self.settings.namespace)
        # A new table starts as the first release's and gains later columns as an old one does, so
        # every column has the field id the files carry (`_add_fields`).
        arrow = FIRST_CLEAN_SCHEMA if name == STORIES else DEAD_LETTER_SCHEMA
        schema = pyarrow_to_schema(arrow)
        spec = PartitionSpec()
        order = SortOrder()
        if name == STORIES:
            source = schema.find_field(PARTITION_SOURCE).field_id
            spec = PartitionSpec(
                PartitionField(
                    source_id=source, field_id=1000, transform=DayTransform(), name=PARTITION_COLUMN
                )
            )
            order = SortOrder(
                *(
                    SortField(source_id=schema.find_field(column).field_id, transform=IdentityTransform())
                    for column in ("kafka_partition", "kafka_offset", "id")
                )
            )
        location = _file_uri(self.root / name) if self.embedded else None
        try:
            return catalog.create_table(
                self._identifier(name),
                schema,
                location=location,
                partition_spec=spec,
                sort_order=order,
                properties={
                    _SCHEMA_VERSION_PROPERTY: str(CLEAN_SCHEMA_VERSION),
                    "write.parquet.compression-codec": "zstd",
                    "write.metadata.previous-versions-max": "20",
                    "commit.manifest-merge.enabled": "true",
                    "commit.manifest.min-count-to-merge": "50",
                    # Files written without field ids (a migrated dataset's) are read by name.
                    "schema.name-mapping.default": create_mapping_from_schema(schema).model_dump_json(),
                },
            )
        except TableAlreadyExistsError:  # another writer created it first
            return catalog.load_table(self._identifier(name))

    def metadata_location(self, name: str = STORIES) -> str | None:
        """The metadata file the embedded catalog names as table ``name``'s current one (None when
        it names none), read from ``catalog.db`` itself, whatever that file holds."""
        import sqlite3

        db = self.root / "catalog.db"
        if not db.is_file():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            row = con.execute(
                "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?",
                (self.settings.namespace, name),
            ).fetchone()
        return str(row[0]) if row and row[0] else None

    def repair_command(self) -> str:
        return f"wirestream repair --output {self.root}"

    def table(self, name: str = STORIES, create: bool = False) -> Any:
        table = self._load(name, create)
        if table is None:
            where = self.root if self.embedded else self.settings.uri
            raise UserError(
                f"{where} has no wirestream table {self._identifier(name)}: nothing committed yet"
            )
        return table

    # -- reading what is committed -------------------------------------------------------------

    def commits(self, as_of: int | None = None) -> list[dict[str, Any]]:
        """The stories table's snapshots leading to the current one (or ``as_of``), oldest first.
        Raises `CorruptTable` when their positions pass offsets none of them read (`offset_gaps`)."""
        table = self._load(STORIES, create=False)
        if table is None:
            return []
        commits = [commit_record(s) for s in reversed(list(self._ancestry(table, as_of)))]
        self._check_gaps(table, commits)
        return commits

    def _check_gaps(self, table: Any, commits: list[dict[str, Any]]) -> None:
        if offset_gaps(commits):
            raise self.corrupt(self.plan_repair(table, data=False))

    # -- what cannot be read ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, table: Any) -> Iterator[None]:
        """Reading ``table``'s manifests: a failure that a file of the table explains ends in
        `CorruptTable` naming that file; any other is raised as it is."""
        try:
            yield
        except UserError:
            raise
        except Exception as exc:
            try:
                plan = self.plan_repair(table, data=False)
            except UserError:
                raise
            except Exception:
                raise exc from None
            if not plan.needed:
                raise
            raise self.corrupt(plan) from None

    def _snapshot_problem(self, table: Any, snapshot: Any, seen: dict[str, str | None]) -> str | None:
        """What is wrong with the metadata ``snapshot`` needs (its manifest list, its manifests), as
        "PATH: what", or None when all of it reads."""
        from pyiceberg.manifest import _manifests

        try:
            _manifests.cache_clear()  # what is on disk now, not what this process read before
            manifests = snapshot.manifests(table.io)
        except Exception as exc:
            return f"{snapshot.manifest_list}: the manifest list of snapshot {snapshot.snapshot_id} {_what_is_wrong(exc)}"
        for manifest in manifests:
            path = manifest.manifest_path
            if path not in seen:
                try:
                    manifest.fetch_manifest_entry(table.io, discard_deleted=False)
                    seen[path] = None
                except Exception as exc:
                    seen[path] = (
                        f"{path}: a manifest of snapshot {snapshot.snapshot_id} {_what_is_wrong(exc)}"
                    )
            if seen[path]:
                return seen[path]
        return None

    def _data_file_problem(self, table: Any, data_file: Any) -> str | None:
        """What is wrong with a committed data file (its footer, its row count, its size), as
        "URI: what", or None when it agrees with what the table records of it."""
        uri = data_file.file_path
        try:
            size = len(table.io.new_input(uri))
            rows = pq.read_metadata(open_source(uri, self.settings.properties)).num_rows
        except Exception as exc:
            return f"{uri}: data file {_what_is_wrong(exc)}"
        if size != data_file.file_size_in_bytes or rows != data_file.record_count:
            return (
                f"{uri}: data file holds {rows} rows in {size} bytes where the table records "
                f"{data_file.record_count} rows in {data_file.file_size_in_bytes} bytes"
            )
        return None

    def plan_repair(self, table: Any = None, data: bool = True) -> RepairPlan:
        """What is wrong with the stories table, or ``table`` (its snapshots' manifest lists and
        manifests, the offsets the stories table's positions pass, with ``data`` the current files'
        footers) and what repair does about it (`RepairPlan`)."""
        table = table if table is not None else self._load(STORIES, create=False)
        plan = RepairPlan()
        if table is None or table.current_snapshot() is None:
            return plan
        plan.table = str(table.name()[-1])
        history = list(reversed(list(self._ancestry(table))))
        plan.current = history[-1].snapshot_id
        commits = [commit_record(s) for s in history]
        # Dead letters are committed only by batches that have some: their offsets have holes.
        gaps = offset_gaps(commits) if plan.table == STORIES else []
        first_gap = min(
            (commits.index(c) for c in commits if c["snapshot_id"] in {g["snapshot_id"] for g in gaps}),
            default=None,
        )
        seen: dict[str, str | None] = {}
        found = [self._snapshot_problem(table, snapshot, seen) for snapshot in history]
        limit = len(history) if first_gap is None else first_gap
        # The newest snapshot before any gap whose metadata reads in full becomes current; the
        # snapshots after it, and older ones that do not read, leave the history.
        target = max((at for at in range(limit) if found[at] is None), default=None)
        for at, snapshot in enumerate(history):
            problem = found[at]
            if problem is None and at == first_gap:
                gap = next(g for g in gaps if g["snapshot_id"] == snapshot.snapshot_id)
                problem = (
                    f"snapshot {snapshot.snapshot_id} (batch {commits[at].get('batch')}) passes offsets "
                    f"{gap['start']}-{gap['stop'] - 1} of partition {gap['partition']} of {gap['topic']}, "
                    "which no kept snapshot read"
                )
            if target is None or at > target or problem is not None:
                plan.dropped.append(snapshot.snapshot_id)
                if problem is not None and problem not in plan.problems:  # a manifest many share
                    plan.problems.append(problem)
        if target is not None and target < len(history) - 1:
            # What the first dropped snapshot after the target says is wrong comes first.
            after = [found[at] for at in range(target + 1, len(history)) if found[at]]
            if after and after[0] in plan.problems:
                plan.problems.remove(after[0])
                plan.problems.insert(0, after[0])
        ancestry = {s.snapshot_id for s in history}
        for snapshot in table.snapshots():  # off the current history (a rolled-back branch)
            problem = (
                None if snapshot.snapshot_id in ancestry else self._snapshot_problem(table, snapshot, seen)
            )
            if problem:
                if problem not in plan.problems:
                    plan.problems.append(problem)
                plan.dropped.append(snapshot.snapshot_id)
        if plan.problems:
            if target is None:
                return plan
            plan.rollback_to = commits[target]["snapshot_id"]
            plan.reread = _ranges_between(commits[target].get("position"), commits[-1].get("position"))
        if data:
            target = plan.rollback_to or plan.current
            for task in table.scan(snapshot_id=target).plan_files():
                problem = self._data_file_problem(table, task.file)
                if problem:
                    plan.problems.append(problem)
                    plan.unreadable.append(task.file)
                    day = _partition_dir(task.file).rsplit("=", 1)[-1] if plan.table == STORIES else "null"
                    if day != "null" and day not in plan.days:
                        plan.days.append(day)
        return plan

    def corrupt(self, plan: RepairPlan) -> CorruptTable:
        """The one-line error of a table ``plan`` found something wrong with."""
        more = f" (and {len(plan.problems) - 1} more)" if len(plan.problems) > 1 else ""
        if plan.dropped and plan.rollback_to is None:
            return CorruptTable(
                f"{plan.problems[0]}{more}; no earlier snapshot reads in full: move {self.root} aside "
                "and run again, which reads the topic from its start"
            )
        does = []
        if plan.rollback_to is not None and plan.rollback_to == plan.current:
            does.append(f"it takes {len(plan.dropped)} snapshot(s) that cannot be read out of the history")
        elif plan.rollback_to is not None and plan.table != STORIES:
            does.append(
                f"it makes snapshot {plan.rollback_to} of table {self._identifier(plan.table)} current "
                "again; the dead letters committed after it leave that table"
            )
        elif plan.rollback_to is not None:
            does.append(
                f"it makes snapshot {plan.rollback_to} current again, and the next run reads "
                f"{format_ranges(plan.reread)} again"
            )
        if plan.unreadable:
            backfills = "; ".join(
                f"`wirestream backfill --since {day} --until {date.fromisoformat(day) + timedelta(days=1)} --output {self.root}`"
                for day in plan.days
            )
            does.append(
                f"it takes {len(plan.unreadable)} unreadable data file(s) out of the table"
                + (f", whose stories {backfills} reads again" if backfills else "")
            )
        return CorruptTable(f"{plan.problems[0]}{more}: run `{self.repair_command()}` ({'; '.join(does)})")

    @staticmethod
    def _ancestry(table: Any, start: int | None = None) -> Iterator[Any]:
        by_id = {s.snapshot_id: s for s in table.snapshots()}
        snapshot = by_id.get(start) if start is not None else table.current_snapshot()
        while snapshot is not None:
            yield snapshot
            if snapshot.parent_snapshot_id is None:
                return
            snapshot = by_id.get(snapshot.parent_snapshot_id)

    def _latest(self, table: Any, key: str) -> str | None:
        for snapshot in self._ancestry(table):
            value = _summary(snapshot).get(PREFIX + key)
            if value is not None:
                return value
        return None

    def next_batch(self) -> int:
        table = self._load(STORIES, create=False)
        latest = self._latest(table, "batch") if table is not None else None
        return int(latest) + 1 if latest is not None else 1

    def position(self, table: Any = None) -> dict[str, dict[int, int]]:
        """Next offset to read per topic and partition, as the current snapshot records it."""
        table = table if table is not None else self._load(STORIES, create=False)
        latest = self._latest(table, "position") if table is not None else None
        if latest is None and table is not None and table.current_snapshot() is not None:
            raise UserError(
                f"no snapshot of {self._identifier(STORIES)} records where ingestion reached (written by "
                "another tool, or its history expired): wirestream cannot continue it exactly once"
            )
        if latest is None:
            return {}
        return {
            topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in json.loads(latest).items()
        }

    def committed_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition of ``topic``: where ingest batches have reached.

        Backfills re-read old offsets and compactions read none; both carry the position over.
        """
        return dict(self.position().get(topic, {}))

    def _files(self, name: str, snapshot_id: int | None = None) -> list[Any]:
        table = self._load(name, create=False)
        if table is None:
            return []
        if snapshot_id is None and table.current_snapshot() is None:
            return []
        with self._reading(table):
            return [task.file for task in table.scan(snapshot_id=snapshot_id).plan_files()]

    def file_uris(
        self, name: str, snapshot_id: int | None = None, at: dict[str, Any] | None = None
    ) -> list[str]:
        """The data files of table ``name`` in its current snapshot, in snapshot ``snapshot_id``,
        or in the last one committed no later than the commit ``at`` (another table's)."""
        table = self._load(name, create=False)
        if table is None:
            return []
        if at is not None:
            earlier = [s for s in table.snapshots() if s.timestamp_ms <= at["timestamp_ms"]]
            if not earlier:
                return []
            snapshot_id = max(earlier, key=lambda s: (s.timestamp_ms, s.sequence_number or 0)).snapshot_id
        return sorted(f.file_path for f in self._files(name, snapshot_id))

    def key_of(self, name: str, uri: str, table: Any = None) -> str:
        """A file's name in `live`: its path under its table's location, dead letters prefixed."""
        table = table if table is not None else self.table(name)
        location = table.location().rstrip("/") + "/"
        relative = uri[len(location) :] if uri.startswith(location) else uri
        return relative if name == STORIES else f"{DEAD_LETTERS}/{relative.removeprefix('data/')}"

    def uri_of(self, key: str) -> str:
        """The URI of the file `live` names ``key``."""
        if key.startswith(DEAD_LETTERS + "/"):
            location = self.table(DEAD_LETTERS).location().rstrip("/")
            return f"{location}/data/{key[len(DEAD_LETTERS) + 1 :]}"
        return f"{self.table(STORIES).location().rstrip('/')}/{key}"

    def live(self) -> dict[str, dict[str, Any]]:
        """Key -> file entry for every file the current snapshots hold (stories and dead letters)."""
        files: dict[str, dict[str, Any]] = {}
        for name, kind in ((STORIES, "data"), (DEAD_LETTERS, "dead_letters")):
            table = self._load(name, create=False)
            if table is None or table.current_snapshot() is None:
                continue
            with self._reading(table):
                tasks = list(table.scan().plan_files())
            for task in tasks:
                data_file = task.file
                key = self.key_of(name, data_file.file_path, table)
                files[key] = {
                    "kind": kind,
                    "path": key,
                    "partition_dir": _partition_dir(data_file) if name == STORIES else None,
                    "uri": data_file.file_path,
                    "rows": data_file.record_count,
                    "bytes": data_file.file_size_in_bytes,
                    "data_file": data_file,
                }
        return files

    def committed_uris(self, kind: str = "data") -> list[str]:
        """The current snapshot's files of the stories (``data``) or dead-letter table, sorted."""
        return self.file_uris(STORIES if kind == "data" else DEAD_LETTERS)

    def state(self) -> tuple[int | None, dict[str, dict[int, int]], int]:
        """(current snapshot id, `position`, `next_batch`) from one look at the stories table: what
        a batch is planned on."""
        table = self._load(STORIES, create=False)
        if table is None:
            return None, {}, 1
        current = table.current_snapshot()
        self._check_gaps(table, [_offsets_record(s) for s in reversed(list(self._ancestry(table)))])
        latest = self._latest(table, "batch")
        return (
            current.snapshot_id if current is not None else None,
            self.position(table),
            int(latest) + 1 if latest is not None else 1,
        )

    def committed_files(self, kind: str = "data") -> list[Path]:
        """`committed_uris` as local paths (the embedded catalog's tables)."""
        return [local_path(entry["uri"]) for _, entry in sorted(self.live().items()) if entry["kind"] == kind]

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: bool = False) -> Iterator[None]:
        """One writer at a time per output folder: a second one waits, or fails fast unless ``wait``.

        Writers on other machines are kept apart by the catalog instead: a commit whose table moved
        on since it was planned fails (`commit`)."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root} is a file, not a dataset folder")
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "_lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise UserError(
                    f"another wirestream run is writing to {self.root}; wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def staging_path(self, batch: int) -> Path:
        return self.staging_root / f"batch-{batch:06d}"

    def staging_dir(self, batch: int) -> Path:
        path = self.staging_path(batch)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def _marker(self, batch: int) -> Path:
        return self.staging_root / f"batch-{batch:06d}.commit"

    def recover(self) -> list[Path]:
        """Discard what crashed runs left: staging folders, and the placed files of a commit that
        never became a snapshot (its marker names them). Nothing else is removed."""
        removed: list[Path] = []
        if not self.staging_root.exists():
            return removed
        markers = sorted(self.staging_root.glob("batch-*.commit"))
        tables = [
            t
            for t in (self._load(n, create=False) for n in (STORIES, DEAD_LETTERS))
            if markers and t is not None
        ]
        referenced: set[str] = set().union(*(self._reachable(t) for t in tables))
        for marker in markers:
            try:
                intent = json.loads(marker.read_text("utf-8"))
                placed = list(intent["files"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s is not a readable commit marker; the files it named stay in place", marker)
                marker.unlink()
                continue
            for uri in placed:
                if uri in referenced:
                    continue
                path = local_path(uri) if self.embedded else None
                if path is not None and path.exists():
                    path.unlink()
                    removed.append(path)
                elif path is None and tables:
                    _delete(tables[0].io, uri)
            marker.unlink()
        for child in self.staging_root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        return removed

    def _place(self, staged: Path, uri: str, io: Any) -> None:
        """Move (local; a copy across filesystems) or upload (object storage) one staged file to
        its place in the table."""
        if urlparse(uri).scheme in ("", "file"):
            target = local_path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staged, target)
        else:
            output = io.new_output(uri)
            with staged.open("rb") as source, output.create(overwrite=True) as sink:
                shutil.copyfileobj(source, sink, 8 << 20)

    def _data_file(self, table: Any, uri: str, staged_size: int, metadata: Any) -> Any:
        from pyiceberg.io.pyarrow import (
            compute_statistics_plan,
            data_file_statistics_from_parquet_metadata,
            parquet_path_to_id_mapping,
        )
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

        schema = table.schema()
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=metadata,
            stats_columns=compute_statistics_plan(schema, table.properties),
            parquet_column_mapping=parquet_path_to_id_mapping(schema),
        )
        return DataFile(
            content=DataFileContent.DATA,
            file_path=uri,
            file_format=FileFormat.PARQUET,
            partition=statistics.partition(table.spec(), schema),
            file_size_in_bytes=staged_size,
            sort_order_id=None,
            spec_id=table.metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **statistics.to_serialized_dict(),
        )

    def commit(
        self,
        batch: int,
        staging: Path,
        offsets: list[dict[str, Any]],
        extra: dict[str, Any],
        *,
        kind: str = "ingest",
        removes: list[str] | None = None,
        carried: set[str] | None = None,
        planned_from: int | None | str = "any",
    ) -> dict[str, Any]:
        """Place the staged files, then commit the batch's snapshot: the single commit point.

        ``planned_from`` is the snapshot the batch was planned on (`current_snapshot_id`): if the
        table has moved on since, the commit goes ahead only when it still can be exactly once (an
        ingest whose offsets nobody committed meanwhile, over whatever compaction did), and is
        abandoned otherwise. ("any": no check, for callers holding the only writer's lock.)

        ``removes`` names files (`live` keys) the snapshot retires; ``carried`` names staged files
        that only carry rows over from those (a backfill keeping the rest of a partition, a
        compaction), which do not count as newly written rows.
        """
        from pyiceberg.exceptions import CommitFailedException

        stories = self.table(STORIES, create=True)
        letters = self.table(DEAD_LETTERS, create=True)
        if planned_from != "any":
            self._check_unchanged(stories, planned_from, batch, kind, offsets, bool(removes))
        staged: list[tuple[str, Path, str, int, Any]] = []  # (kind, staged path, uri, rows, metadata)
        # Each attempt places its files under names of its own: a retry, or another writer of the
        # same batch number, never overwrites a file some snapshot may already list.
        attempt = uuid.uuid4().hex[:8]
        for folder, table in (("data", stories), ("dead_letters", letters)):
            root = staging / folder
            for path in sorted(root.rglob("*.parquet")) if root.exists() else []:
                relative = path.relative_to(root).as_posix()
                location = table.location().rstrip("/")
                uri = f"{location}/data/{relative.removesuffix('.parquet')}-{attempt}.parquet"
                metadata = pq.read_metadata(path)
                staged.append((folder, path, uri, metadata.num_rows, metadata))
        records = sum(r["stop"] - r["start"] for r in offsets)
        carried_uris = {
            f"{stories.location().rstrip('/')}/{key.removesuffix('.parquet')}-{attempt}.parquet"
            for key in carried or ()
        }
        rows = sum(n for folder, _, uri, n, _ in staged if folder == "data" and uri not in carried_uris)
        dead = sum(n for folder, _, _, n, _ in staged if folder == "dead_letters")
        stats = BatchStats(records=records, rows=rows, dead_letters=dead)

        self.staging_root.mkdir(parents=True, exist_ok=True)
        marker = self._marker(batch)
        data_files: dict[str, list[Any]] = {"data": [], "dead_letters": []}
        # What the commit writes: its files where placing copies them, and new metadata about the
        # size of the current (manifests, manifest list and metadata file of each table).
        needed = sum(_metadata_bytes(t) for t in (stories, letters)) + sum(
            path.stat().st_size for _, path, uri, _, _ in staged if not _same_device(path, uri)
        )
        try:
            _write_atomically(marker, {"batch": batch, "files": [uri for _, _, uri, _, _ in staged]})
            for folder, path, uri, _n, metadata in staged:
                size = path.stat().st_size
                self._place(path, uri, (stories if folder == "data" else letters).io)
                data_files[folder].append(
                    self._data_file(stories if folder == "data" else letters, uri, size, metadata)
                )
            if self.embedded:
                for placed in {local_path(uri).parent for _, _, uri, _, _ in staged}:
                    _fsync_dir(placed)
        except OSError as exc:
            raise self._abandon_if_full(exc, batch, needed) from None

        position = self.position(stories)
        if kind == "ingest":
            # Offsets between the position and where a range starts were deleted by Kafka before
            # anything read them (retention; the run warned): the summary says so, so that they are
            # not taken for a gap (`offset_gaps`).
            skipped = [
                {**rng, "start": reached, "stop": rng["start"]}
                for rng in offsets
                if (reached := position.get(rng["topic"], {}).get(rng["partition"])) is not None
                and rng["start"] > reached
            ]
            if skipped:
                extra = {**extra, "skipped": skipped}
            for rng in offsets:
                parts = position.setdefault(rng["topic"], {})
                parts[rng["partition"]] = max(parts.get(rng["partition"], 0), rng["stop"])
        properties = _summary_properties(batch, kind, offsets, position, stats, extra)
        removed = self._removed_files(removes or [])
        try:
            self._commit_dead_letters(letters, batch, data_files["dead_letters"], properties)
            _commit_files(stories, properties, removed, data_files["data"])
        except OSError as exc:
            raise self._abandon_if_full(exc, batch, needed) from None
        except CommitFailedException as exc:
            self.recover()  # the placed files are this batch's alone: the marker names them
            raise UserError(
                f"another writer committed to {self._identifier(STORIES)} while batch {batch} ran "
                f"({exc}); the batch was abandoned, nothing of it is visible: run again"
            ) from None
        marker.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        snapshot = stories.current_snapshot()
        record = commit_record(snapshot)
        record["files"] = [
            {
                "kind": folder,
                "path": self.key_of(
                    STORIES if folder == "data" else DEAD_LETTERS,
                    uri,
                    stories if folder == "data" else letters,
                ),
                "uri": uri,
                "rows": n,
            }
            for folder, _, uri, n, _ in staged
        ]
        record["removes"] = sorted(removes or [])
        return record

    def register(
        self,
        batch: int,
        data: list[str],
        dead_letters: list[str],
        position: dict[str, dict[int, int]],
        stats: BatchStats,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """Commit files that are already in place (``migrate``): one snapshot of each table that adds
        them as they are, with ``position`` as where ingestion has reached."""
        stories = self.table(STORIES, create=True)
        letters = self.table(DEAD_LETTERS, create=True)
        properties = _summary_properties(batch, "migration", [], position, stats, extra)
        for table, uris in ((letters, dead_letters), (stories, data)):
            files = []
            for uri in uris:
                metadata = pq.read_metadata(open_source(uri, self.settings.properties))
                size = len(table.io.new_input(uri))
                files.append(self._data_file(table, uri, size, metadata))
            if table is letters and (not files or self._latest(letters, "kind") == "migration"):
                continue  # none, or registered by an interrupted migration already
            _commit_files(table, properties, [], files)
        return commit_record(self.table(STORIES).current_snapshot())

    def current_snapshot_id(self) -> int | None:
        table = self._load(STORIES, create=False)
        current = table.current_snapshot() if table is not None else None
        return current.snapshot_id if current is not None else None

    def _check_unchanged(
        self,
        stories: Any,
        planned_from: int | None | str,
        batch: int,
        kind: str,
        offsets: list[dict[str, Any]],
        replaces: bool,
    ) -> None:
        current = stories.current_snapshot()
        if (current.snapshot_id if current is not None else None) == planned_from:
            return
        position = self.position(stories)
        overlap = [r for r in offsets if r["start"] < position.get(r["topic"], {}).get(r["partition"], 0)]
        if kind == "ingest" and not replaces and not overlap:
            return
        raise UserError(
            f"another writer committed to {self._identifier(STORIES)} while batch {batch} ran"
            + (
                f" (offsets from {overlap[0]['start']} of partition {overlap[0]['partition']})"
                if overlap
                else ""
            )
            + "; the batch was abandoned, nothing of it is visible: run again"
        )

    def _abandon_if_full(self, exc: OSError, batch: int, needed: int = 0) -> BaseException:
        """The error to raise for ``exc`` during a commit: a full disk, or object storage refusing
        the keys, abandons the batch (its placed files go) with one clear message; anything else is
        raised as it is. ``needed``: the bytes the commit writes (its files, its metadata)."""
        refusal = refused(exc)
        if refusal:
            with contextlib.suppress(OSError, UserError):
                self.recover()
            return UserError(
                f"object storage refused the credentials while committing batch {batch} ({refusal}); "
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: nothing of the batch is visible"
            )
        if exc.errno != errno.ENOSPC and "No space left on device" not in str(exc):
            return exc
        with contextlib.suppress(OSError, UserError):
            self.recover()  # the placed files are this batch's alone: the marker names them
        return self.disk_full(batch, needed=needed)

    def disk_full(self, batch: int, needed: int | None = None, records: int = 0) -> UserError:
        """The one line for batch ``batch`` stopped by a full disk: the output's path, the space the
        batch needs and the space free. ``needed``: bytes, when known; else estimated for
        ``records`` records from the stories table's bytes per record (its current snapshot's
        totals) and the size of its metadata."""
        free = shutil.disk_usage(self.root).free if self.root.exists() else 0
        if needed is None:
            needed = self._estimate(records)
        need = (
            f"it needs about {-(-needed // 1024)} KiB and {free // 1024} KiB is free"
            if needed
            else f"it needs more than the {free // 1024} KiB free"
        )
        return UserError(
            f"no space left on the device of {self.root} for batch {batch}: {need}; it was not "
            "committed and nothing of it is visible; earlier batches stay committed. Free space and run again"
        )

    def _estimate(self, records: int) -> int:
        """Bytes a batch of ``records`` records writes, by the stories table's own figures (0 when
        it has none yet)."""
        with contextlib.suppress(Exception):
            table = self._load(STORIES, create=False)
            current = table.current_snapshot() if table is not None else None
            if current is not None and records:
                summary = _summary(current)
                size, rows = int(summary.get("total-files-size", 0)), int(summary.get("total-records", 0))
                if rows:
                    return records * size // rows + 2 * _metadata_bytes(table)
        return 0

    def _removed_files(self, keys: list[str]) -> list[Any]:
        if not keys:
            return []
        live = self.live()
        missing = [key for key in keys if key not in live]
        if missing:
            raise UserError(f"cannot retire {missing[:3]}: not in the current snapshot (another writer?)")
        return [live[key]["data_file"] for key in keys]

    def _commit_dead_letters(
        self, table: Any, batch: int, files: list[Any], properties: dict[str, str]
    ) -> None:
        """One snapshot of the dead-letter table: this batch's files, replacing any that an
        interrupted commit of the same batch number left."""
        prefix = f"batch-{batch:06d}-"
        stale = []
        if self._latest(table, "batch") == str(batch):  # an interrupted commit of this batch
            current = [task.file for task in table.scan().plan_files()]
            stale = [f for f in current if f.file_path.rsplit("/", 1)[-1].startswith(prefix)]
        if not files and not stale:
            return
        _commit_files(table, properties, stale, files)  # an attempt's names are its own: no overlap

    # -- maintenance ---------------------------------------------------------------------------

    def maintain(
        self,
        retention: timedelta,
        keep: int | None = None,
        now: datetime | None = None,
        orphans: bool = True,
    ) -> MaintainReport:
        """Expire snapshots older than ``retention``, and all but the newest ``keep`` (the current
        one always stays), and delete the files only they reached; with ``orphans``, also remove
        files under a table's location that no snapshot or metadata reaches and that are older than
        ``retention`` (younger ones may belong to a commit in progress elsewhere).

        Every commit rewrites the table's metadata, which lists every kept snapshot, so its cost
        grows with their number (pyiceberg copies the metadata whole): a table committed every few
        seconds needs ``keep``."""
        from pyiceberg.table.update import AssertRefSnapshotId, RemoveSnapshotsUpdate

        import pipeline.iceberg_compat  # noqa: F401  (snapshot expiry for catalogs that apply updates here)

        now = now or datetime.now(UTC)
        cutoff_ms = int((now - retention).timestamp() * 1000)
        report = MaintainReport()
        for name in (STORIES, DEAD_LETTERS):
            table = self._load(name, create=False)
            if table is None:
                continue
            current = table.current_snapshot()
            before = self._reachable(table)
            newest = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
            kept = {s.snapshot_id for s in newest[-keep:]} if keep else {s.snapshot_id for s in newest}
            old = [
                s.snapshot_id
                for s in newest
                if (s.timestamp_ms < cutoff_ms or s.snapshot_id not in kept)
                and (current is None or s.snapshot_id != current.snapshot_id)
            ]
            if old:
                table.catalog.commit_table(
                    table,
                    requirements=(
                        AssertRefSnapshotId.model_validate(
                            {"snapshot-id": current.snapshot_id if current else None, "ref": "main"}
                        ),
                    ),
                    updates=(RemoveSnapshotsUpdate.model_validate({"snapshot-ids": old}),),
                )
                table = self.table(name)
                report.snapshots_expired += len(old)
                after = self._reachable(table)
                for uri in sorted(before - after):
                    _delete(table.io, uri)
                    report.files_removed += 1
            if orphans and self.embedded:
                report.orphans_removed += self._remove_orphans(table, now - retention)
        return report

    def _reachable(self, table: Any) -> set[str]:
        """Every data file, manifest and manifest list some snapshot of ``table`` reaches."""
        io = table.io
        found: set[str] = set()
        manifests: dict[str, Any] = {}
        with self._reading(table):
            for snapshot in table.snapshots():
                found.add(snapshot.manifest_list)
                for manifest in snapshot.manifests(io):
                    manifests[manifest.manifest_path] = manifest
            for path, manifest in manifests.items():
                found.add(path)
                for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                    found.add(entry.data_file.file_path)
        return found

    def _remove_orphans(self, table: Any, older_than: datetime) -> int:
        reached = self._reachable(table)
        reached.add(table.metadata_location)
        reached.update(entry.metadata_file for entry in table.metadata.metadata_log)
        keep = {local_path(uri) for uri in reached}
        location = local_path(table.location())
        removed = 0
        for path in location.rglob("*"):
            if not path.is_file() or path in keep:
                continue
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) >= older_than:
                continue
            path.unlink()
            removed += 1
        return removed


def _offsets_record(snapshot: Any) -> dict[str, Any]:
    """What `offset_gaps` reads of a snapshot's commit: `commit_record`'s kind, offsets, skipped
    offsets and position, and nothing else (a batch's planning reads every kept snapshot's)."""
    summary = _summary(snapshot)
    record: dict[str, Any] = {
        "snapshot_id": snapshot.snapshot_id,
        "kind": summary.get(PREFIX + "kind", "external"),
    }
    for key in ("offsets", "skipped", "position"):
        with contextlib.suppress(TypeError, ValueError):
            record[key] = json.loads(summary[PREFIX + key]) if PREFIX + key in summary else None
    return record


def offset_gaps(commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Offsets that the position of a commit (oldest first, as `commit_record` gives them) passes
    but that neither it nor an earlier one read: each gap's topic, partition, [start, stop) and the
    snapshot whose position passes it.

    What came before the oldest kept snapshot (expired, or a migration's) counts as read; so do the
    offsets a commit records as ``skipped`` (deleted by Kafka before anything read them), and where
    a partition the table had not seen yet starts (Kafka may have deleted its first records)."""
    gaps: list[dict[str, Any]] = []
    reached: dict[tuple[str, int], int] | None = None
    for commit in commits:
        position = commit.get("position")
        if not isinstance(position, dict):
            continue
        now = {(t, int(p)): int(o) for t, parts in position.items() for p, o in parts.items()}
        ranges = [
            r
            for r in (commit.get("offsets") or []) + (commit.get("skipped") or [])
            if commit.get("kind") == "ingest"
        ]
        if reached is None or commit.get("kind") == "migration":
            reached = dict(now)
            for r in ranges:
                key = (r["topic"], int(r["partition"]))
                reached[key] = min(reached.get(key, r["start"]), r["start"])
        expected = dict(reached)
        for r in sorted(ranges, key=lambda r: (r["topic"], r["partition"], r["start"])):
            key = (r["topic"], int(r["partition"]))
            if key in expected and r["start"] > expected[key]:
                gaps.append(_gap(commit, key, expected[key], r["start"]))
            expected[key] = max(expected.get(key, r["start"]), r["stop"])
        for key, offset in sorted(now.items()):
            if offset > expected.get(key, offset):
                gaps.append(_gap(commit, key, expected[key], offset))
        reached = now
    return gaps


def _gap(commit: dict[str, Any], key: tuple[str, int], start: int, stop: int) -> dict[str, Any]:
    return {
        "snapshot_id": commit["snapshot_id"],
        "topic": key[0],
        "partition": key[1],
        "start": start,
        "stop": stop,
    }


def _ranges_between(
    before: dict[str, dict[str, int]] | None, after: dict[str, dict[str, int]] | None
) -> list[dict[str, Any]]:
    """The offsets from position ``before`` up to position ``after``, per topic and partition."""
    ranges = []
    for topic, parts in sorted((after or {}).items()):
        for partition, stop in sorted(parts.items(), key=lambda item: int(item[0])):
            start = int(((before or {}).get(topic) or {}).get(str(partition), 0))
            if int(stop) > start:
                ranges.append(
                    {"topic": topic, "partition": int(partition), "start": start, "stop": int(stop)}
                )
    return ranges


def format_ranges(ranges: list[dict[str, Any]]) -> str:
    """Offset ranges as a person reads them: ``offsets 4-15 of partition 0 of t``."""
    if not ranges:
        return "no Kafka offsets"
    return ", ".join(
        f"offsets {r['start']}-{r['stop'] - 1} of partition {r['partition']} of {r['topic']}" for r in ranges
    )


def _commit_files(table: Any, properties: dict[str, str], remove: list[Any], add: list[Any]) -> None:
    """One snapshot of ``table`` that removes ``remove`` and adds ``add`` (data files): an append
    when it removes nothing, else an overwrite that carries the table's totals on."""
    from pyiceberg.table.snapshots import Operation

    from pipeline.iceberg_compat import ReplaceFiles

    with table.transaction() as tx:
        producer = (
            ReplaceFiles(
                operation=Operation.OVERWRITE, transaction=tx, io=table.io, snapshot_properties=properties
            )
            if remove
            else tx.update_snapshot(snapshot_properties=properties).merge_append()
        )
        with producer:
            for data_file in remove:
                producer.delete_data_file(data_file)
            for data_file in add:
                producer.append_data_file(data_file)


def _metadata_bytes(table: Any) -> int:
    """The size of ``table``'s current metadata file (0 when it is not on this machine's disk)."""
    with contextlib.suppress(OSError, UserError):
        return local_path(table.metadata_location).stat().st_size
    return 0


def _same_device(path: Path, uri: str) -> bool:
    """Whether placing ``path`` at ``uri`` is a rename (no new space) rather than a copy."""
    with contextlib.suppress(OSError, UserError):
        target = local_path(uri)
        while not target.exists():
            target = target.parent
        return target.stat().st_dev == path.stat().st_dev
    return False


def _delete(io: Any, uri: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        io.delete(uri)


def _summary_properties(
    batch: int,
    kind: str,
    offsets: list[dict[str, Any]],
    position: dict[str, dict[int, int]],
    stats: BatchStats,
    extra: dict[str, Any],
) -> dict[str, str]:
    """A commit's snapshot summary entries (strings, as Iceberg keeps them)."""
    return {
        PREFIX + "batch": str(batch),
        PREFIX + "kind": kind,
        PREFIX + "offsets": json.dumps(offsets, sort_keys=True),
        PREFIX + "position": json.dumps(
            {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in sorted(position.items())},
            sort_keys=True,
        ),
        PREFIX + "records": str(stats.records),
        PREFIX + "rows": str(stats.rows),
        PREFIX + "dead-letters": str(stats.dead_letters),
        PREFIX + "duplicates-dropped": str(stats.duplicates_dropped),
        PREFIX + "schema-version": str(CLEAN_SCHEMA_VERSION),
        **{PREFIX + key.replace("_", "-"): json.dumps(value) for key, value in extra.items()},
    }


def _write_atomically(path: Path, content: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(content, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
