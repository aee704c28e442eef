"""A worker process keeps the memory it frees (glibc's malloc), instead of faulting it back in.

A checkpoint builds each changed region's snapshot: at province scale tens of megabytes of base64
and JSON made and dropped again every second or so (benchmarks/README.md, Scale). glibc serves
allocations that large with mmap, or gives them back from the top of its heap when they are
freed, so every snapshot faulted its pages in again: a busy region's 16 MB snapshot took 8,000
minor page faults and about a third of its time. `keep_freed_memory` raises both thresholds:
allocations under KEEP bytes come from the heap, and up to KEEP bytes free at its top are kept for
the next snapshot. The price is a resident size up to KEEP above what the process holds at the
time. With another C library (musl) it changes nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

KEEP = 256 << 20  # bytes: a busy region's snapshot allocates some 100 MB on its way
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_freed_memory(keep: int = KEEP) -> bool:
    """Let this process keep up to `keep` bytes of freed memory; False where the C library has
    no mallopt (nothing changed)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError) as exc:
        log.info("memory: this C library has no mallopt (%s): freed memory goes back", exc)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    kept = bool(mallopt(_M_MMAP_THRESHOLD, keep) == 1 and mallopt(_M_TRIM_THRESHOLD, keep) == 1)
    if not kept:
        log.warning("memory: mallopt refused a threshold of %d bytes: freed memory goes back", keep)
    return kept
