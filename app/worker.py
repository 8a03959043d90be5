"""The gunicorn worker class: uvicorn with uvloop and httptools, our logging, long keep-alive.

Contract: ``worker_class = "app.worker.GatewayWorker"`` in :mod:`app.gunicorn_conf`. On SIGTERM
gunicorn stops accepting; uvicorn lets in-flight streams finish within the graceful timeout.
"""

from __future__ import annotations

import os

from uvicorn.workers import UvicornWorker


class GatewayWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": int(os.environ.get("GATEWAY_KEEPALIVE", "75")),
        "timeout_graceful_shutdown": int(float(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "600"))),
    }
