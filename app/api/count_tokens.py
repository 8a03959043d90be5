"""``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` for a Messages body.

Contract: accepts the same body as ``/v1/messages`` (``max_tokens``/``stream`` optional) and
answers the calibrated estimate of :mod:`app.translate.tokens`, without calling OCI. Accounted
like every route (``gateway_requests_total`` with the resolved model, one access-log line).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, read_body, respond, service

ROUTE = "/v1/messages/count_tokens"


async def count_tokens(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting(ROUTE) as acct:
        key = await authenticate(request, acct.call)
        body = await read_body(request, svc.config.server, acct.call)
        acct.answer({"input_tokens": svc.count_tokens(body, key, acct.call)})
    return respond(acct)
