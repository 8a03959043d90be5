"""The gunicorn worker class: uvicorn with uvloop and httptools, our logging, long keep-alive.

Contract: ``worker_class = "app.worker.GatewayWorker"`` in :mod:`app.gunicorn_conf`. Built on the
``uvicorn-worker`` package (``uvicorn.workers`` is deprecated since uvicorn 0.30). It reads no
environment itself: the keep-alive (``timeout_keep_alive``) comes from gunicorn's ``keepalive``
(the base class passes it on) and uvicorn's graceful shutdown from gunicorn's
``graceful_timeout``, both set from :class:`app.settings.Settings` in :mod:`app.gunicorn_conf`.
On SIGTERM gunicorn stops accepting; uvicorn lets in-flight streams finish within that time.
The garbage-collector tuning happens in the app's lifespan (app/gc_tuning.py), for every server.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


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
