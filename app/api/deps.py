"""Shared pieces of the HTTP layer: state access, auth, body limits, disconnects, responses.

Contract: routers stay thin — inside the service's accounting block they call these helpers and
the service, nothing else, and then :func:`respond` turns the outcome into the response. Every
response made here carries the request's ``request-id`` header; every error is the Anthropic
envelope. A client that disconnects cancels the work done for it: :func:`cancel_on_disconnect`
while the answer is being prepared, :class:`SSEResponse` while it streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.config import ServerLimits
from app.errors import ClientGone, GatewayError, RequestTooLarge, error_json
from app.security.identity import Identity
from app.security.policy import Principal
from app.service import Accounting, Call, MessagesService

JSON = "application/json"
T = TypeVar("T")

log = logging.getLogger("app.api")


def service(request: Request) -> MessagesService:
    svc: MessagesService = request.app.state.gateway
    return svc


async def authenticate(request: Request, call: Call) -> Principal | None:
    """The caller's principal (API key or company sign-in token), or None when the gateway
    allows anonymous callers; 401/403 otherwise (:mod:`app.security.identity`)."""
    identity: Identity = request.app.state.identity
    principal = await identity.authenticate(request.headers, service(request).config)
    if principal is not None:
        call.key_id = principal.id
    return principal


async def read_body(request: Request, limits: ServerLimits, call: Call) -> bytes:
    """The body, within the size limit (413) and the time limit (408: a stalled sender).
    The time it takes is the client's, not the gateway's (``call.client_wait``)."""
    t0 = time.perf_counter()
    try:
        return await _read_body(request, limits.max_body_bytes, limits.body_timeout)
    finally:
        call.client_wait += time.perf_counter() - t0


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLarge(f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise GatewayError(
            f"the request body did not arrive within {seconds:g}s",
            error_type="timeout_error",
            status=408,
        ) from None
    return b"".join(chunks)


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it as soon as the client disconnects (raises
    :class:`~app.errors.ClientGone`): a client that left must not keep an OCI call running.

    Only after the body was read: ``receive()`` then has nothing to give but the disconnect.
    """
    task = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        if task is not None:
            task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone or task is None:
            raise
        task.uncancel()  # our own cancellation, handled here: the task goes on to respond
        raise ClientGone() from None
    finally:
        watcher.cancel()


def respond(acct: Accounting) -> Response:
    """The response for what the accounted block ended with."""
    rid = acct.call.request_id
    if acct.error is not None:
        return error_response(acct.error, rid)
    if acct.stream is not None:
        return SSEResponse(acct.stream, rid)
    return Response(acct.json, media_type=JSON, headers={"request-id": rid})


def error_response(err: GatewayError, request_id: str) -> Response:
    headers = {"request-id": request_id, **err.headers()}
    return Response(
        error_json(err, request_id), status_code=err.status, media_type=JSON, headers=headers
    )


class SSEResponse(Response):
    """Streams SSE bytes and cancels the producer as soon as the client disconnects.

    Written against raw ASGI because Starlette's StreamingResponse notices a disconnect only
    when a ``send`` fails, never during a long upstream silence (a thinking pause of minutes).
    One watcher task per stream; the producer is always closed, releasing the upstream
    connection, the stream slot and the key's limits within moments of a disconnect.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterable[bytes], request_id: str) -> None:
        self.body_iterator = content
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "request-id": request_id,
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                "content-type": "text/event-stream; charset=utf-8",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        gone = False

        async def watch() -> None:
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone = True
                    if task is not None:
                        task.cancel()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
            if task is not None:
                task.uncancel()
        except OSError:
            pass  # the socket went away under us: same as a disconnect
        finally:
            watcher.cancel()
            try:
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise  # a new cancellation (shutdown) while closing: never swallowed
            except Exception as exc:  # the body's own cleanup failed: a bug, told, not raised
                log.error("closing a stream body failed", exc_info=exc)
