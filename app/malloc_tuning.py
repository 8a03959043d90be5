"""glibc malloc tuning of a worker: keep freed big buffers for the next request (``mallopt``).

Contract: :func:`tune_malloc` is called once per worker from the lifespan, after start-up. With
``GATEWAY_MALLOC_KEEP`` unset it sets glibc's ``M_MMAP_THRESHOLD`` to :data:`MMAP_THRESHOLD`
(32 MiB, glibc's own maximum on 64-bit) and ``M_TRIM_THRESHOLD`` to :data:`DEFAULT_KEEP`
(64 MiB): buffers up to 32 MiB come from the heap, and up to 64 MiB of free memory at its top
stays mapped instead of going back to the kernel. ``GATEWAY_MALLOC_KEEP=N`` (bytes) keeps ``N``
instead; ``glibc`` leaves glibc's dynamic defaults alone. It returns what it applied (``None``
when nothing was: the setting, or a C library without ``mallopt``, such as musl or macOS); it
never raises.

Why (docs/design.md "Long conversations"): a 4 MB Claude Code turn passes through ~6 buffers of
its own size (the body as uvicorn reads it, the joined body, the parsed strings, the serialised
ChatDetails, aiohttp's joined write). glibc serves such buffers with ``mmap`` and trims the heap
once 2x its dynamic threshold is free, so every request faulted in and zeroed ~5.5 MB of fresh
pages: 1,300 page faults and 4 ms of system time per 4 MB request, measured in the bench's long
section (``/proc/<worker>/stat``); with the heap kept, 28 faults and 1.7 ms. The price is that
a worker's RSS stays near its high-water mark (at most ``KEEP`` more than it would be).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger("app.worker")

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: buffers up to this size come from the heap: above orjson's parse scratch for a 4 MB body
#: (~35 MB, so more than glibc's dynamic maximum of 32 MiB); glibc < 2.35 refuses more than
#: 32 MiB, which is then used instead
MMAP_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD_OLD_GLIBC = 32 * 1024 * 1024
DEFAULT_KEEP = 128 * 1024 * 1024


def parse_keep(value: str) -> int | None:
    """``""`` -> :data:`DEFAULT_KEEP`; ``"glibc"`` -> None (leave malloc alone); ``"N"`` -> N."""
    value = value.strip().lower()
    if not value:
        return DEFAULT_KEEP
    if value == "glibc":
        return None
    try:
        keep = int(value)
    except ValueError:
        raise ValueError(
            f"GATEWAY_MALLOC_KEEP: {value!r} is not 'glibc' or a number of bytes"
        ) from None
    if keep < 0:
        raise ValueError(f"GATEWAY_MALLOC_KEEP: {value!r} must be >= 0")
    return keep


def _mallopt() -> Callable[[int, int], int] | None:
    try:  # the process's own symbols: the C library it runs on (find_library would fork ldconfig)
        libc = ctypes.CDLL(None)
        mallopt: Callable[[int, int], int] = libc.mallopt
        return mallopt
    except (OSError, AttributeError, TypeError):
        return None  # no mallopt in the C library this process runs on


def tune_malloc(keep: int | None) -> dict[str, int] | None:
    """Apply the thresholds; returns ``{"mmap_threshold": …, "trim_threshold": …}`` or None."""
    if keep is None:
        return None
    mallopt = _mallopt()
    if mallopt is None:
        log.info("malloc not tuned: no mallopt in this C library")
        return None
    # mallopt returns 1 on success, 0 when glibc refuses a value
    sizes = (MMAP_THRESHOLD, MMAP_THRESHOLD_OLD_GLIBC)
    mmap = next((m for m in sizes if mallopt(M_MMAP_THRESHOLD, m)), 0)
    if not mmap or not mallopt(M_TRIM_THRESHOLD, keep):
        log.warning("malloc not tuned: mallopt refused the thresholds")
        return None
    applied = {"mmap_threshold": mmap, "trim_threshold": keep}
    log.info("malloc tuned", extra=applied)
    return applied
