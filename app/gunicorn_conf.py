"""Gunicorn settings: ``gunicorn -c python:app.gunicorn_conf`` (uvicorn workers).

Contract: every knob comes from :class:`app.settings.Settings` (the one reader of the
environment): ``GATEWAY_HOST``/``GATEWAY_PORT``, ``GATEWAY_WORKERS`` (default 1),
``GATEWAY_TIMEOUT`` (worker heartbeat timeout; 0 disables, streams are long),
``GATEWAY_GRACEFUL_TIMEOUT`` (default 600 s: how long in-flight streams may run after SIGTERM),
``GATEWAY_KEEPALIVE`` (default 75 s, above the OCI load balancer's 65 s), ``GATEWAY_LOG_LEVEL``.
Gunicorn takes whole seconds only, so fractional values are rounded up. The worker
(:mod:`app.worker`) takes its keep-alive and graceful timeout from these gunicorn settings.
Prometheus multiprocess mode is always on under gunicorn: the directory in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's own variable; default
``/tmp/prometheus-multiproc``) is emptied at start, each worker writes its files there, a dead
worker's files are marked, and the MASTER alone serves their sum on ``GATEWAY_METRICS_PORT``
(``when_ready``; the workers run ``create_app(metrics_listener=False)`` and close their
inherited copy of that socket). Before anything starts, ``on_starting`` loads the config and
applies the closed-by-default rule (:func:`app.config.check_client_auth`), so a gateway that
would be open with real OCI credentials stops here with the message naming the fix.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from app.settings import Settings, whole_seconds

_settings = Settings()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "app.worker.GatewayWorker"
wsgi_app = "app.main:create_app(metrics_listener=False)"
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

# Set before the workers fork: prometheus_client reads it when app.observability is imported.
# Always, even with one worker: the master serves the metrics and can only read them from files.
_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/prometheus-multiproc")
shutil.rmtree(_dir, ignore_errors=True)
os.makedirs(_dir, exist_ok=True)

_metrics: Any = None  # the master's MetricsServer


def on_starting(server: Any) -> None:
    from app.config import ConfigError, check_client_auth, load_config

    try:
        check_client_auth(load_config(_settings.config, _settings.oci_endpoint))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        sys.exit(1)


def when_ready(server: Any) -> None:
    global _metrics
    if _settings.metrics_port:
        from app.observability.metrics_server import start_metrics_server

        _metrics = start_metrics_server(_settings.host, _settings.metrics_port)
        server.log.info("metrics on %s:%s", _settings.host, _metrics.port)


def post_fork(server: Any, worker: Any) -> None:
    if _metrics is not None:
        _metrics.close_inherited()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(getattr(worker, "pid", 0))
