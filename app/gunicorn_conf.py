"""Gunicorn settings: ``gunicorn -c python:app.gunicorn_conf`` (uvicorn workers).

Contract: every knob comes from :class:`app.settings.Settings` (the one reader of the
environment): ``GATEWAY_HOST``/``GATEWAY_PORT``, ``GATEWAY_WORKERS`` (default 1),
``GATEWAY_TIMEOUT`` (worker heartbeat timeout; 0 disables, streams are long),
``GATEWAY_GRACEFUL_TIMEOUT`` (default 600 s: how long in-flight streams may run after SIGTERM),
``GATEWAY_KEEPALIVE`` (default 75 s, above the OCI load balancer's 65 s), ``GATEWAY_LOG_LEVEL``.
Gunicorn takes whole seconds only, so fractional values are rounded up. The worker
(:mod:`app.worker`) takes its keep-alive and graceful timeout from these gunicorn settings.
With more than one worker, Prometheus multiprocess mode is switched on: the directory in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's own variable; default
``/tmp/prometheus-multiproc``) is emptied at start so ``/metrics`` sums the live workers only,
and a dead worker's files are marked.
"""

from __future__ import annotations

import os
import shutil

from app.settings import Settings, whole_seconds

_settings = Settings()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "app.worker.GatewayWorker"
wsgi_app = "app.main:create_app()"
timeout = whole_seconds(_settings.timeout)
graceful_timeout = whole_seconds(_settings.graceful_timeout)
keepalive = whole_seconds(_settings.keepalive)
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
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

if workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # set before the workers fork: prometheus_client reads it when app.observability is imported
    _dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus-multiproc")
    shutil.rmtree(_dir, ignore_errors=True)
    os.makedirs(_dir, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(getattr(worker, "pid", 0))
