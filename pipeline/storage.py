"""Where a table's files are read from: this machine's disk, or object storage, by URI.

Committed files are named by URI (``file:///...`` for the embedded catalog, ``s3://...`` with a
REST catalog's warehouse on object storage). Readers (dedup's look-up of committed stories, a
backfill's carry-over, compaction, inspect, loads) open them here: a local path as it is, anything
else through pyiceberg's pyarrow FileIO with the catalog's FileIO properties (``s3.endpoint``, ...;
credentials from the environment, read by the S3 client itself).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["is_local", "local_path", "open_source", "identity", "refused"]


def is_local(uri: str) -> bool:
    return urlparse(str(uri)).scheme in ("", "file")


def local_path(uri: str) -> Path:
    """The local path of a ``file:`` URI (or of a plain path)."""
    from wirestream.errors import UserError

    parsed = urlparse(str(uri))
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    raise UserError(f"{uri} is not on this machine's disk")


@functools.lru_cache(maxsize=16)
def _file_io(properties: tuple[tuple[str, str], ...]) -> Any:
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO(dict(properties))


def open_source(uri: str, properties: Mapping[str, str] | None = None) -> Any:
    """Something pyarrow's Parquet readers take for the file at ``uri``: a local path, or an open
    random-access file from object storage."""
    if is_local(uri):
        return str(local_path(uri))
    io = _file_io(tuple(sorted((properties or {}).items())))
    return io.new_input(uri).open(seekable=True)


def identity(uri: str) -> tuple[int, int]:
    """(size, mtime in ns) of a local file; (0, 0) for a remote one. Committed files never change
    under their name (a batch number is used once), so a remote name alone identifies content."""
    if not is_local(uri):
        return (0, 0)
    stat = local_path(uri).stat()
    return stat.st_size, stat.st_mtime_ns


# How the S3 client words a refusal of the keys it was given (pyarrow's "AWS Error <KIND> ...").
_REFUSALS = ("ACCESS_DENIED", "SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID", "HTTP status 403")


def refused(exc: BaseException) -> str | None:
    """The object store's refusal in ``exc`` (wrong or missing keys), as one line; None if it is not
    one. Portable runners report a worker's exception as text, so the text is what is read."""
    for line in str(exc).splitlines():
        if "AWS Error" in line and any(kind in line for kind in _REFUSALS):
            return line.strip()
    return None
