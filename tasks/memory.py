"""A process's memory: what it freed, given back to the system; what lives as long as it
does, kept out of the garbage collector's way.

glibc's malloc and Arrow's allocator (mimalloc) keep the pages a process freed for reuse.
A pool worker that had read an author part of the stage held 175 MB more than it used so,
through the rest of the run: a run's memory peaks near its end, when the workers are idle.
"""
from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from functools import cache

import pyarrow as pa


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc's; other C libraries have none
    except (AttributeError, OSError):
        return None


_malloc_trim = _libc_malloc_trim()


def release_memory() -> None:
    """Return the free pages of Arrow's allocator and of malloc to the system."""
    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)


@cache  # once per process
def freeze_imports() -> None:
    """Put the objects alive now out of the cyclic garbage collector's reach: they are the
    imported modules (Prefect, Great Expectations, pandas: some 390,000 objects in a batch
    worker), which live as long as the process, and every full collection walked them all
    (0.23 s each: 1.15 s in 5 batches of 16 MB; 0.19 s once frozen). A collection first, so
    that no garbage is frozen with them."""
    gc.collect()
    gc.freeze()
