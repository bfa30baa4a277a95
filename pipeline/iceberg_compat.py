"""Two things pyiceberg 0.8 (the release that takes Beam 2.62's pyarrow) lacks, as Iceberg's
specification and later pyiceberg releases have them.

- Snapshot expiry for catalogs that apply table updates in this process (the embedded SQL catalog).
  The REST protocol's ``remove-snapshots`` update is applied by a REST catalog server itself;
  pyiceberg 0.8 sends it but cannot apply it to metadata it writes on its own. Importing this module
  registers, once, the rule: the snapshots go, with their log entries and any reference to them, and
  a snapshot whose parent went keeps no parent.
- `ReplaceFiles`: an overwrite of some of a table's files whose summary carries the table's totals
  on from its parent (pyiceberg 0.8 sums every overwrite as if it replaced the whole table, so a
  backfill's or compaction's ``total-records`` would count only its own files).
"""

from __future__ import annotations

from typing import Any

from pyiceberg.table import TableProperties
from pyiceberg.table.snapshots import SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import RemoveSnapshotsUpdate, _apply_table_update
from pyiceberg.table.update.snapshot import _OverwriteFiles
from pyiceberg.typedef import EMPTY_DICT

__all__ = ["ReplaceFiles"]


class ReplaceFiles(_OverwriteFiles):
    """An OVERWRITE snapshot that removes and adds some files, its totals carried on."""

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        metadata = self._transaction.table_metadata
        collector = SnapshotSummaryCollector()
        collector.set_partition_summary_limit(
            int(
                metadata.properties.get(
                    TableProperties.WRITE_PARTITION_SUMMARY_LIMIT,
                    TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT,
                )
            )
        )
        for data_file in self._added_data_files:
            collector.add_file(data_file=data_file, partition_spec=metadata.spec(), schema=metadata.schema())
        for data_file in self._deleted_data_files:
            collector.remove_file(
                data_file=data_file,
                partition_spec=metadata.specs()[data_file.spec_id],
                schema=metadata.schema(),
            )
        parent = metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id else None
        return update_snapshot_summaries(
            summary=Summary(operation=self._operation, **collector.build(), **snapshot_properties),
            previous_summary=parent.summary if parent is not None else None,
            truncate_full_table=False,
        )


def _remove_snapshots(update: RemoveSnapshotsUpdate, base: Any, context: Any) -> Any:
    gone = set(update.snapshot_ids)
    known = {s.snapshot_id for s in base.snapshots}
    if gone - known:
        raise ValueError(f"snapshots {sorted(gone - known)} do not exist")
    snapshots = [
        s.model_copy(update={"parent_snapshot_id": None}) if s.parent_snapshot_id in gone else s
        for s in base.snapshots
        if s.snapshot_id not in gone
    ]
    log = [entry for entry in base.snapshot_log if entry.snapshot_id not in gone]
    refs = {name: ref for name, ref in base.refs.items() if ref.snapshot_id not in gone}
    context.add_update(update)
    return base.model_copy(update={"snapshots": snapshots, "snapshot_log": log, "refs": refs})


if RemoveSnapshotsUpdate not in _apply_table_update.registry:
    _apply_table_update.register(RemoveSnapshotsUpdate)(_remove_snapshots)
