"""``POST /v1/messages`` (``?beta=true`` and any query string tolerated).

Contract: thin. Inside the service's accounting block: refuse while draining (529), authenticate,
read the body within the size and time limits, and hand it to
:meth:`~app.service.MessagesService.messages`, cancelling the work if the client disconnects
first; then answer with the JSON, the SSE stream, or the Anthropic error envelope, each with
the request's ``request-id`` (and ``retry-after`` when known). The accounting, not this router,
records the outcome.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, cancel_on_disconnect, read_body, respond, service
from app.errors import Overloaded
from app.service.routing import HINT_HEADER

ROUTE = "/v1/messages"


async def create_message(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting(ROUTE) as acct:
        if request.app.state.draining:
            # between SIGTERM and the listener closing: send the client elsewhere at once
            raise Overloaded("the gateway is shutting down; please retry")
        key = await authenticate(request, acct.call)
        body = await read_body(request, svc.config.server, acct.call)
        hint = request.headers.get(HINT_HEADER)  # Claude Code's request class, for routing
        work = svc.messages(body, key, acct.call, hint)
        del body  # the service drops the bytes once parsed; a long turn must not hold them here
        acct.answer(await cancel_on_disconnect(request, work))
    return respond(acct)
