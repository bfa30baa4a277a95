"""The forkserver this process's worker pools fork from.

Python runs one forkserver per process, set up by whichever pool starts it first: its preloaded
modules and its environment are then every pool's. The feed parser's pool and the pipeline's
workers both start it here, so whichever comes first (`wirestream demo` runs both), the server
carries the environment both expect.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
from collections.abc import Iterator

__all__ = ["forkserver", "ARROW_ALLOCATOR"]

# Arrow's allocator (its own jemalloc) reads its settings once, from this variable, when pyarrow is
# first imported, and by default gives freed pages back to the system at once: a worker then
# faults every chunk's buffers in afresh (see `pipeline.memory`). Processes forked from the server
# keep them instead.
ARROW_ALLOCATOR = ("JE_ARROW_MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1")


def forkserver(preload: list[str]) -> multiprocessing.context.BaseContext:
    """The ``forkserver`` context, its server started (if no pool started it yet) with ``preload``
    imported and `ARROW_ALLOCATOR` in its environment; ``spawn`` where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    with _environment(*ARROW_ALLOCATOR):
        multiprocessing.forkserver.ensure_running()
    return context


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for processes started inside the block; this process's own
    setting is left as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before
