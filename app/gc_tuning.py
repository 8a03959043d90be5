"""Garbage-collector tuning for a gateway process: freeze the startup heap, raise the thresholds.

Contract: :func:`tune_gc` is called once by the app's lifespan (app/main.py) when startup is done
(config, catalog, OCI client, metrics, tracing built), in every server: gunicorn's workers and
``python -m app serve``. The heap is moved to the permanent generation (``gc.freeze()``) so no
collection ever walks it again, and the thresholds are raised from CPython's (700, 10, 10) to
:data:`DEFAULT_GC_THRESHOLD`, or to ``GATEWAY_GC_THRESHOLD`` (:func:`parse_gc_threshold`;
``python`` keeps CPython's own and freezes nothing).

Why (docs/design.md "Long conversations", "Streams opening under load"): a 1 MB Claude Code turn
allocates ~50,000 containers (parsed JSON, block models, the translation); at 700 that is ~70
young collections per request, and with 2,000 streams open the default's full collections
walked every open stream's objects (up to 336 ms of CPU each, measured with ``gc.callbacks`` in
bench/ramp.py) while new streams opened, stalling them all, and freed nothing. A request's
objects are acyclic and freed by reference counting; the collector only has to find the rare
cycle (an exception's traceback), which a higher threshold still does.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("app.worker")

#: gen0, gen1, gen2 thresholds when GATEWAY_GC_THRESHOLD is unset: measured on the bench's
#: long section (README, "Long conversations"); CPython's are (700, 10, 10)
DEFAULT_GC_THRESHOLD = (50_000, 20, 40)


def parse_gc_threshold(value: str) -> tuple[int, int, int] | None:
    """``""`` -> the default; ``"python"`` -> None (CPython's own, no freeze either);
    ``"N"`` or ``"N,M,K"`` -> those thresholds (missing ones from the default)."""
    value = value.strip().lower()
    if not value:
        return DEFAULT_GC_THRESHOLD
    if value in ("python", "off", "default"):
        return None
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise ValueError(
            f"GATEWAY_GC_THRESHOLD: {value!r} is not 'python' or up to three integers"
        ) from None
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise ValueError(f"GATEWAY_GC_THRESHOLD: {value!r} needs 1 to 3 integers >= 0")
    g0, g1, g2 = (*parts, *DEFAULT_GC_THRESHOLD[len(parts) :])
    return g0, g1, g2


def tune_gc(threshold: tuple[int, int, int] | None) -> None:
    """Freeze the startup heap and set the thresholds (``None``: leave CPython's alone)."""
    if threshold is None:
        return
    gc.collect()  # the startup garbage goes, what is left is frozen
    gc.freeze()
    gc.set_threshold(*threshold)
    log.info("gc tuned", extra={"gc_threshold": threshold, "gc_frozen": gc.get_freeze_count()})
