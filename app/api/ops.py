"""Operational endpoints: ``HEAD/GET /``, ``/healthz``, ``/readyz``.

Contract: ``/healthz`` is liveness (the process answers; no upstream call). ``/readyz`` is 200
when the config is loaded and the signer was built, and 503 while draining for shutdown, so the
load balancer stops sending new requests. The Prometheus exposition is NOT here: it has its own
port (``GATEWAY_METRICS_PORT``, :mod:`app.observability.metrics_server`), so whatever publishes
the API port (an Ingress) never publishes the metrics; ``/metrics`` on the API port is a 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import JSON

_OK = b'{"status":"ok"}'


async def root(request: Request) -> Response:
    return Response(_OK, media_type=JSON)


async def healthz(request: Request) -> Response:
    return Response(_OK, media_type=JSON)


async def readyz(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "draining", False):
        return Response(b'{"status":"draining"}', status_code=503, media_type=JSON)
    if getattr(state, "gateway", None) is None:
        return Response(b'{"status":"starting"}', status_code=503, media_type=JSON)
    return Response(_OK, media_type=JSON)
