"""Give memory that Python has freed back to the operating system.

CPython frees a job's objects at once, but glibc's allocator keeps the freed pages in its arenas (one
per thread that allocated: parsing runs in worker threads), so a process that once held a big job's
bodies and parse trees keeps that resident size for good. ``malloc_trim(0)`` returns the free pages of
every arena. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Trim the allocator's free pages; True when the platform has malloc_trim."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
