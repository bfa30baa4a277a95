"""Snapshot expiry for catalogs that apply table updates in this process (the embedded SQL catalog).

The Iceberg REST protocol's ``remove-snapshots`` update is applied by a REST catalog server itself;
pyiceberg 0.8 sends it but cannot apply it to metadata it writes on its own (later pyiceberg releases
can). Importing this module registers, once, the same rule Iceberg's specification and later pyiceberg
releases follow: the snapshots go, with their log entries and any reference to them, and a snapshot
whose parent went keeps no parent.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.table.update import RemoveSnapshotsUpdate, _apply_table_update

__all__: list[str] = []


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
