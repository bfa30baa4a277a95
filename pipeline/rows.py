"""How story rows cross a shuffle: as primitives, with timestamps as UTC microseconds.

Rows are plain dicts. Beam's default coder for a dict pickles every value it has no fast path for,
and a row's timestamps made encoding one row cost ~4x what its text does. Declaring a PCollection's
element type as `StoryRow` selects `StoryRowCoder` for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam

__all__ = ["StoryRow", "StoryRowCoder", "MICROSECOND", "micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime | None) -> int:
    """UTC microseconds since the epoch (0 for no time): how timestamps cross shuffles, and the
    unit dedup compares publication times in."""
    return (moment - _EPOCH) // MICROSECOND if moment else 0


class StoryRow(dict[str, Any]):
    """Type hint for a PCollection of story rows; the elements themselves are plain dicts."""


class StoryRowCoder(beam.coders.Coder):
    """A row as (other fields, {field: UTC microseconds}) in Beam's fast primitives coder.

    Only time-zone-aware datetimes are converted (every row timestamp is UTC); they decode as UTC
    datetimes of the same instant. Anything else falls to the inner coder as before.
    """

    def __init__(self) -> None:
        self._inner = beam.coders.FastPrimitivesCoder()

    def encode(self, row: dict[str, Any]) -> bytes:
        plain: dict[str, Any] = {}
        stamps: dict[str, int] = {}
        for key, value in row.items():
            if type(value) is datetime and value.tzinfo is not None:
                stamps[key] = micros(value)
            else:
                plain[key] = value
        return self._inner.encode((plain, stamps))

    def decode(self, encoded: bytes) -> dict[str, Any]:
        plain, stamps = self._inner.decode(encoded)
        for key, stamp in stamps.items():
            plain[key] = _EPOCH + stamp * MICROSECOND
        return plain  # type: ignore[no-any-return]

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> type:
        return StoryRow

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


beam.coders.registry.register_coder(StoryRow, StoryRowCoder)
