"""Gunicorn settings: ``gunicorn -c python:app.gunicorn_conf`` (uvicorn workers).

Contract: everything comes from the environment — ``GATEWAY_HOST``/``GATEWAY_PORT``,
``GATEWAY_WORKERS`` (default 1), ``GATEWAY_TIMEOUT`` (worker heartbeat timeout; 0 disables,
streams are long), ``GATEWAY_GRACEFUL_TIMEOUT`` (default 600 s: how long in-flight streams may
run after SIGTERM), ``GATEWAY_KEEPALIVE`` (default 75 s, above the OCI load balancer's 65 s).
With more than one worker, Prometheus multiprocess mode is switched on: the directory in
``PROMETHEUS_MULTIPROC_DIR`` (default ``/tmp/prometheus-multiproc``) is emptied at start so
``/metrics`` sums the live workers only, and a dead worker's files are marked.
"""

from __future__ import annotations

import os
import shutil

_workers = int(os.environ.get("GATEWAY_WORKERS", "1"))
bind = f"{os.environ.get('GATEWAY_HOST', '0.0.0.0')}:{os.environ.get('GATEWAY_PORT', '8000')}"
workers = _workers
worker_class = "app.worker.GatewayWorker"
wsgi_app = "app.main:create_app()"
timeout = int(os.environ.get("GATEWAY_TIMEOUT", "0"))
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "600"))
keepalive = int(os.environ.get("GATEWAY_KEEPALIVE", "75"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GATEWAY_LOG_LEVEL", "info").lower()
# the app logs JSON itself; keep gunicorn's own lines short
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.observability.logging.JsonFormatter"}},
    "handlers": {
        "out": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    },
    "root": {"handlers": ["out"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["out"], "level": loglevel.upper(), "propagate": False}
    },
}

if _workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus-multiproc")
    shutil.rmtree(_dir, ignore_errors=True)
    os.makedirs(_dir, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(getattr(worker, "pid", 0))
