"""Connector state that survives restarts: one JSON file per connector, replaced atomically.

State is advanced only after Kafka acknowledged a publish, so a crash between the two republishes
(the pipeline drops re-delivered story ids) and never loses a story.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ConnectorState:
    def __init__(self, state_dir: str | os.PathLike[str], name: str) -> None:
        self.path = Path(state_dir) / "connectors" / f"{name}.json"
        self.data: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text("utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"connector state {self.path} is corrupt ({exc}); move it away to start over"
                ) from None

    def section(self, key: str) -> dict[str, Any]:
        return self.data.setdefault(key, {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.data, out, ensure_ascii=False, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
