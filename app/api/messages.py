"""``POST /v1/messages`` (``?beta=true`` and any query string tolerated).

Contract: thin — authenticate, read the body within the size limit, hand it to
:meth:`Gateway.messages`, and wrap the result as JSON or SSE. Errors before the first byte are
Anthropic-envelope HTTP errors with ``request-id`` (and ``retry-after`` when known).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import (
    SSEResponse,
    authenticate,
    error_response,
    gateway,
    json_response,
    read_body,
    start_call,
)
from app.errors import GatewayError, Overloaded
from app.observability import metrics as m

ROUTE = "/v1/messages"


async def create_message(request: Request) -> Response:
    gw = gateway(request)
    call = start_call(request, ROUTE)
    try:
        if request.app.state.draining:
            # between SIGTERM and the listener closing: send the client elsewhere at once
            raise Overloaded("the gateway is shutting down; please retry")
        key = authenticate(request, call)
        body = await read_body(
            request, gw.config.server.max_body_bytes, gw.config.server.body_timeout
        )
        result = await gw.messages(body, key, call)
    except GatewayError as err:
        call.status = err.status
        call.error_type = err.upstream_kind or err.error_type
        if err.upstream_kind is None:
            m.CLIENT_ERRORS.labels(ROUTE, err.error_type).inc()
        gw.finish_call(call)
        return error_response(err, call.request_id)
    if isinstance(result, dict):
        gw.finish_call(call)
        return json_response(result, call.request_id)
    return SSEResponse(result, call.request_id)
