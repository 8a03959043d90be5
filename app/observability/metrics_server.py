"""The metrics listener: the Prometheus exposition on its own port, never on the API port.

Contract: :func:`start_metrics_server` serves the exposition on ``host:port``
(``GATEWAY_METRICS_PORT``, default 9464) with prometheus_client's own HTTP server in a daemon
thread, off the event loop; every path answers with it (``/metrics`` is what scrapers use).
Kept apart from the API so an Ingress or load balancer in front of the API never publishes key
ids, models and spend. Exactly ONE process binds the port: ``python -m app`` (and the
in-process test servers) from the lifespan; under gunicorn the master (``when_ready`` in
:mod:`app.gunicorn_conf`), which serves the sum of every worker's files in
``PROMETHEUS_MULTIPROC_DIR``; the workers never bind it. This module imports no metric
definitions, so the gunicorn master writes no metric files of its own.
"""

from __future__ import annotations

import os
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.registry import Collector


def exposition_registry() -> Collector:
    """This process's registry, or every worker's (multiprocess mode: the directory is set)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


class MetricsServer:
    """A running listener; :meth:`close` stops it and frees the port."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self.httpd = httpd
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def close_inherited(self) -> None:
        """In a forked child (a gunicorn worker): drop the copy of the listening socket, so
        only the master holds the port."""
        self.httpd.socket.close()


def start_metrics_server(host: str, port: int) -> MetricsServer:
    """Bind and serve; an ``OSError`` (port taken) propagates: the start must fail loudly."""
    httpd, thread = start_http_server(port, addr=host, registry=exposition_registry())
    return MetricsServer(httpd, thread)
