"""``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` for a Messages body.

Contract: accepts the same body as ``/v1/messages`` (``max_tokens``/``stream`` optional) and
answers the calibrated estimate of :mod:`app.translate.tokens`, without calling OCI.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, error_response, gateway, json_response, read_body, start_call
from app.errors import GatewayError
from app.observability import metrics as m

ROUTE = "/v1/messages/count_tokens"


async def count_tokens(request: Request) -> Response:
    gw = gateway(request)
    call = start_call(request, ROUTE)
    try:
        key = authenticate(request, call)
        body = await read_body(
            request, gw.config.server.max_body_bytes, gw.config.server.body_timeout
        )
        tokens = gw.count_tokens(body, key)
    except GatewayError as err:
        call.status = err.status
        m.CLIENT_ERRORS.labels(ROUTE, err.error_type).inc()
        m.REQUESTS.labels(ROUTE, "", m.status_class(err.status), call.key_id).inc()
        return error_response(err, call.request_id)
    m.REQUESTS.labels(ROUTE, "", "2xx", call.key_id).inc()
    return json_response({"input_tokens": tokens}, call.request_id)
