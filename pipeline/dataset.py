"""The committed dataset: Parquet files that only become visible through a manifest.

Layout under the output folder::

    data/published_date=YYYY-MM-DD/batch-000007-shard-000.parquet   clean rows (Hive partitions)
    dead_letters/batch-000007-0000-parse.parquet                   records that failed, with reasons
    _manifests/batch-000007.json                                   the commit: files + offset ranges
    _staging/batch-000007/...                                      a run in progress (never read)

A batch commits by moving its staged files into place and then atomically renaming its manifest
into ``_manifests``. Files under ``data/`` that no manifest names come from a crash between those
two steps; the next run deletes them before it starts, and rewrites the same deterministic names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from schemas import CLEAN_SCHEMA_VERSION, rfc3339
from wirestream.errors import UserError

__all__ = ["Dataset", "BatchStats"]

MANIFEST_VERSION = 1


@dataclass
class BatchStats:
    records: int
    rows: int
    dead_letters: int

    @property
    def duplicates_dropped(self) -> int:
        return self.records - self.rows - self.dead_letters


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Dataset:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.manifest_dir = self.root / "_manifests"
        self.staging_root = self.root / "_staging"
        self._parsed: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def lock(self, wait: bool = False) -> Iterator[None]:
        """One writer at a time per dataset: a second one waits, or fails fast unless ``wait``."""
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

    def manifests(self) -> list[dict[str, Any]]:
        if not self.manifest_dir.is_dir():
            return []
        # A manifest never changes once renamed into place, so each is parsed once per Dataset:
        # one run asks for them several times (recover, offsets, next batch, live files).
        found = []
        for path in sorted(self.manifest_dir.glob("batch-*.json")):
            if path.name not in self._parsed:
                self._parsed[path.name] = json.loads(path.read_text("utf-8"))
            found.append(self._parsed[path.name])
        return sorted(found, key=lambda m: m["batch"])

    def next_batch(self) -> int:
        manifests = self.manifests()
        return manifests[-1]["batch"] + 1 if manifests else 1

    def committed_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition: the furthest end any ingest manifest recorded.

        Backfills re-read old offsets and compactions read none, so neither moves this position.
        """
        position: dict[int, int] = {}
        for manifest in self.manifests():
            if manifest.get("kind", "ingest") != "ingest":
                continue
            for rng in manifest.get("offsets", []):
                if rng["topic"] == topic:
                    position[rng["partition"]] = max(position.get(rng["partition"], 0), rng["stop"])
        return position

    def live(self) -> dict[str, dict[str, Any]]:
        """Relative path -> file entry, for every file a reader must see now.

        Manifests apply in batch order: each adds its files and retires the ones it ``removes``
        (a backfill replacing partitions, a compaction merging files).
        """
        files: dict[str, dict[str, Any]] = {}
        for manifest in self.manifests():
            for path in manifest.get("removes", []):
                files.pop(path, None)
            for entry in manifest.get("files", []):
                files[entry["path"]] = entry
        return files

    def committed_files(self, kind: str = "data") -> list[Path]:
        return [self.root / path for path, entry in sorted(self.live().items()) if entry["kind"] == kind]

    def vacuum(self, older_than_s: float) -> list[Path]:
        """Delete files retired longer ago than ``older_than_s``, once no reader should still hold them."""
        live = self.live()
        now = datetime.now(UTC)
        removed = []
        for manifest in self.manifests():
            committed = datetime.fromisoformat(manifest["committed_at"].replace("Z", "+00:00"))
            if (now - committed).total_seconds() < older_than_s:
                continue
            for path in manifest.get("removes", []):
                target = self.root / path
                if path not in live and target.exists():
                    target.unlink()
                    removed.append(target)
        return removed

    def staging_path(self, batch: int) -> Path:
        return self.staging_root / f"batch-{batch:06d}"

    def staging_dir(self, batch: int) -> Path:
        path = self.staging_path(batch)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def recover(self) -> list[Path]:
        """Discard what crashed runs left: staging folders and files no manifest names."""
        removed: list[Path] = []
        if self.staging_root.exists():
            for child in self.staging_root.iterdir():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        named = {self.root / f["path"] for m in self.manifests() for f in m.get("files", [])}
        for folder in (self.root / "data", self.root / "dead_letters"):
            if folder.exists():
                for path in folder.rglob("*.parquet"):
                    if path not in named:
                        path.unlink()
                        removed.append(path)
        for stale in self.manifest_dir.glob(".*.tmp") if self.manifest_dir.exists() else []:
            stale.unlink()
        return removed

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
    ) -> dict[str, Any]:
        """Move the staged files into place, then publish the manifest: the single commit point.

        ``carried`` names staged files that only carry rows over from files this commit ``removes``
        (a backfill keeping the rest of a partition); they do not count as newly written rows.
        """
        files = []
        for folder in ("data", "dead_letters"):
            for staged in (
                sorted((staging / folder).rglob("*.parquet")) if (staging / folder).exists() else []
            ):
                relative = staged.relative_to(staging).as_posix()
                rows = pq.ParquetFile(staged).metadata.num_rows
                entry = {"kind": folder, "path": relative, "rows": rows, "bytes": staged.stat().st_size}
                if carried and relative in carried:
                    entry["carried"] = True
                files.append(entry)
        records = sum(r["stop"] - r["start"] for r in offsets)
        rows = sum(f["rows"] for f in files if f["kind"] == "data" and not f.get("carried"))
        dead = sum(f["rows"] for f in files if f["kind"] == "dead_letters")
        stats = BatchStats(records=records, rows=rows, dead_letters=dead)
        for f in files:
            target = self.root / f["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / f["path"], target)
        for folder in {(self.root / f["path"]).parent for f in files}:
            _fsync_dir(folder)
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "schema_version": CLEAN_SCHEMA_VERSION,
            "batch": batch,
            "kind": kind,
            "committed_at": rfc3339(datetime.now(UTC)),
            "removes": sorted(removes or []),
            "offsets": offsets,
            "files": files,
            "stats": {
                "records": stats.records,
                "rows": stats.rows,
                "dead_letters": stats.dead_letters,
                "duplicates_dropped": stats.duplicates_dropped,
            },
            **extra,
        }
        self.manifest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.manifest_dir, prefix=".batch-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.manifest_dir / f"batch-{batch:06d}.json")
        _fsync_dir(self.manifest_dir)
        shutil.rmtree(staging, ignore_errors=True)
        return manifest
