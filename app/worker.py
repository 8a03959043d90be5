"""The gunicorn worker class: uvicorn with uvloop and httptools, our logging, long keep-alive,
and the garbage collector tuned once the app has started.

Contract: ``worker_class = "app.worker.GatewayWorker"`` in :mod:`app.gunicorn_conf`. Built on the
``uvicorn-worker`` package (``uvicorn.workers`` is deprecated since uvicorn 0.30). The keep-alive
(``timeout_keep_alive``) comes from gunicorn's ``keepalive`` (the base class passes it on) and
uvicorn's graceful shutdown from gunicorn's ``graceful_timeout``, both set from
:class:`app.settings.Settings` in :mod:`app.gunicorn_conf`. On SIGTERM gunicorn stops accepting;
uvicorn lets in-flight streams finish within that time.

Garbage collection (:func:`tune_gc`, ``GATEWAY_GC_THRESHOLD`` through
:class:`~app.settings.Settings`): once the lifespan startup is done (config, catalog, OCI
client, metrics, tracing all built), the heap is moved to the permanent generation
(``gc.freeze()``) so that no collection ever walks it again, and the generation-0 threshold is
raised from CPython's 700. Why: a 1 MB Claude Code turn allocates ~50,000 containers (parsed
JSON, block models, the translation); at 700 that is ~70 young collections per request and, with
the startup heap in the old generations, full collections over the whole worker (bench ``long``,
docs/design.md "Long conversations"). A request's objects are acyclic and freed by reference
counting; the collector only has to find the rare cycle, which a higher threshold still does.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.settings import Settings

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


class _Server(Server):
    """uvicorn's server, with :func:`tune_gc` once its startup (the app's lifespan) is done."""

    gc_threshold: tuple[int, int, int] | None = DEFAULT_GC_THRESHOLD

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            tune_gc(self.gc_threshold)


class GatewayWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # gunicorn kills a worker graceful_timeout after SIGTERM; uvicorn waits as long for
        # in-flight streams (the app ends the ones still open just before that)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        self.gc_threshold = parse_gc_threshold(Settings().gc_threshold)

    async def _serve(self) -> None:
        # UvicornWorker._serve with our server class (uvicorn-worker 0.3)
        self.config.app = self.wsgi
        server = _Server(config=self.config)
        server.gc_threshold = self.gc_threshold
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
