"""How the pipeline's processes hold memory: what they give back to the system, and when.

Giving freed memory back has a price here: a page the system hands out again is faulted in,
~3 us a 4 KB page on this kind of virtual machine, about what it costs to fill it. A worker that
returned every chunk's buffers spent ~10 us a story faulting them back in. The pipeline process
gives a batch's memory back between batches (a long backfill's peak had grown with its length);
workers keep theirs, whose peak is a few chunks whatever the run's length (Arrow's allocator in
them keeps its freed pages too: `wirestream.processes.ARROW_ALLOCATOR`).

(The pipeline process once gave every allocation of 1 MiB or more its own mapping: glibc's
moving threshold had left a 1M-story backfill's process ~230 MiB of freed heap it could not trim,
its peak 1.47x a 100k one's. With a fixed threshold and a trim after each batch, the benchmark's
1M peak is ~1.1x the 100k one's.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable
from typing import Any

import pyarrow as pa

__all__ = ["release_memory", "keep_freed_memory", "freeze_loaded_objects"]

# glibc's mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> Any:
    path = ctypes.util.find_library("c")
    return ctypes.CDLL(path) if path else None


def _mallopt(parameter: int, value: int) -> None:
    mallopt = getattr(_libc(), "mallopt", None)  # glibc only; elsewhere the allocator does as it does
    if mallopt is not None:
        mallopt(parameter, value)


def release_memory() -> None:
    """Give a finished batch's memory back to the operating system. Without it the allocator keeps
    the fragments of every earlier batch, and a long backfill's peak grew with its length."""
    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow's own allocator (jemalloc) keeps freed pages
    trim: Callable[[int], int] | None = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache
def keep_freed_memory() -> None:
    """glibc keeps what is freed for the next use, in its heap, large blocks included (a Kafka fetch,
    an inflated record batch, a part's signature matrix had each been a mapping of its own, faulted
    in afresh, and each chunk's strings a heap top trimmed away). A worker's page faults fell from
    ~1.6 a story to ~0.05 and its CPU by ~7%, its peak staying its largest chunk's (~190 MiB at
    100k stories and at 1M); the pipeline process's faults fell by a third at 1M (its CPU by 8%).
    The pipeline process gives its heap back between batches (`release_memory`)."""
    _mallopt(_M_MMAP_THRESHOLD, 256 << 20)
    _mallopt(_M_TRIM_THRESHOLD, 1 << 30)


@functools.cache
def freeze_loaded_objects() -> None:
    """Leave the objects a process holds once it has loaded what it works with (the pipeline
    process when it first runs a pipeline: Beam's, Arrow's and the stages' modules, ~110k objects;
    a worker when it starts: the stages and the language model) out of the cycle collector's full
    passes, which walked them all each time: ~50 ms a pass, 0.36 s of the pipeline process's main
    thread in a 100k backfill, 0.05 s since. Once per process, after a collection (~20 ms in a
    worker), so no garbage is frozen; what later runs create stays collectable. Objects alive then
    that later fall into a reference cycle (in a continuous run, the first batch's few) stay until
    the process ends: a fixed amount, not one that grows."""
    gc.collect()
    gc.freeze()
