"""Garbage-collector policy for a gateway process: freeze the startup heap, then either raise the
thresholds or pace the young collections from the event loop.

Contract: :func:`tune_gc` is called once by the app's lifespan (app/main.py) when startup is done
(config, catalog, OCI client, metrics, tracing built), in every server: gunicorn's workers and
``python -m app serve``, with the policy :func:`parse_gc_threshold` reads from
``GATEWAY_GC_THRESHOLD``. The heap is moved to the permanent generation (``gc.freeze()``) so no
collection ever walks it again. Then:

* :class:`Paced` (the default; ``paced`` or ``paced:S``): automatic collection off; a task on the
  running loop (returned; the lifespan cancels it, which turns automatic collection back on)
  collects the young generation every :data:`PACE_S` seconds and freezes what survived, and
  every ``S`` seconds (default :data:`FULL_EVERY_S`, ``0``: never) unfreezes everything and runs
  one full collection;
* thresholds ``N[,M,K]``: CPython's automatic collector with those thresholds (missing ones
  from :data:`DEFAULT_GC_THRESHOLD`, the previous default);
* ``python``: CPython's own thresholds, nothing frozen.

Why (docs/design.md "Long conversations", "Streams opening under load"): a request's objects are
acyclic and freed by reference counting, so the collector finds almost nothing (``collected=0``
in every young collection measured with ``gc.callbacks`` during bench/ramp.py) and only costs
pauses. A pause is proportional to the live objects the collection walks, and an open stream
keeps ~200 of them: with 2,000 streams open, the default's full collections walked them all (up
to 336 ms) and, at thresholds of 50,000, young collections walked 35,000-90,000 objects (25-120
ms) while new streams opened. No threshold bounds that: CPython counts allocations minus
deallocations, so while streams open and close at the same rate the count barely grows and the
young generation fills with every object born since the last collection. Collecting it on a
clock does bound it (objects born in :data:`PACE_S` seconds), and freezing the survivors keeps
every later collection from walking the open streams again. What that leaves uncollected is the
rare cycle that outlives a pace (an exception's traceback kept by a long stream): the full
collection every ``S`` seconds reclaims it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass

log = logging.getLogger("app.worker")

#: gen0, gen1, gen2 thresholds filling the ``N,M,K`` form's missing values (the default before the
#: paced policy; measured on the bench's long section); CPython's are (700, 10, 10)
DEFAULT_GC_THRESHOLD = (50_000, 20, 40)
#: seconds between two young collections in the paced policy: with 2,000 streams open and 250
#: new ones a second, a young collection walks the ~2,000 objects born since the last (2-4 ms
#: measured; at 50 ms, ~4,000 objects and 5-9 ms)
PACE_S = 0.02
#: seconds between two full collections in the paced policy (``paced:S`` overrides it)
FULL_EVERY_S = 600.0


@dataclass(frozen=True)
class Paced:
    """The paced policy: young collections on a clock, survivors frozen, a full one now and then."""

    full_every_s: float = FULL_EVERY_S
    pace_s: float = PACE_S


Policy = tuple[int, int, int] | Paced | None


def parse_gc_threshold(value: str) -> Policy:
    """``""`` or ``"paced"`` -> :class:`Paced` (``"paced:S"``: a full collection every S s);
    ``"python"`` -> None (CPython's own, no freeze either); ``"N"`` or ``"N,M,K"`` -> those
    thresholds (missing ones from :data:`DEFAULT_GC_THRESHOLD`)."""
    value = value.strip().lower()
    if not value:
        return Paced()
    if value in ("python", "off", "default"):
        return None
    if value == "paced" or value.startswith("paced:"):
        _, _, every = value.partition(":")
        try:
            full = float(every) if every else FULL_EVERY_S
        except ValueError:
            full = -1.0
        if not full >= 0:
            raise ValueError(f"GATEWAY_GC_THRESHOLD: {value!r}: 'paced:S' needs seconds >= 0")
        return Paced(full_every_s=full)
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise ValueError(
            f"GATEWAY_GC_THRESHOLD: {value!r} is not 'python', 'paced[:S]' or up to three integers"
        ) from None
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise ValueError(f"GATEWAY_GC_THRESHOLD: {value!r} needs 1 to 3 integers >= 0")
    g0, g1, g2 = (*parts, *DEFAULT_GC_THRESHOLD[len(parts) :])
    return g0, g1, g2


def tune_gc(policy: Policy) -> asyncio.Task[None] | None:
    """Freeze the startup heap and apply ``policy`` (``None``: leave CPython's alone). For
    :class:`Paced`, call it on the running loop: it returns the collector's task."""
    if policy is None:
        return None
    gc.collect()  # the startup garbage goes, what is left is frozen
    gc.freeze()
    if isinstance(policy, Paced):
        gc.disable()
        log.info(
            "gc paced",
            extra={"gc_pace_s": policy.pace_s, "gc_full_every_s": policy.full_every_s},
        )
        return asyncio.get_running_loop().create_task(_paced(policy), name="gc-paced")
    gc.set_threshold(*policy)
    log.info("gc tuned", extra={"gc_threshold": policy, "gc_frozen": gc.get_freeze_count()})
    return None


async def _paced(policy: Paced) -> None:
    next_full = time.monotonic() + policy.full_every_s
    try:
        while True:
            await asyncio.sleep(policy.pace_s)
            gc.collect(0)
            gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one
            if policy.full_every_s and time.monotonic() >= next_full:
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                next_full = time.monotonic() + policy.full_every_s
    finally:
        with contextlib.suppress(Exception):
            gc.unfreeze()
            gc.enable()
