"""Shared pieces of the HTTP layer: state access, request ids, auth, body limits, responses.

Contract: routers stay thin — they call these helpers and the service, nothing else. Every
response made here carries a ``request-id`` header; every error is the Anthropic envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.errors import AuthenticationFailed, GatewayError, RequestTooLarge, error_json
from app.security.keys import ClientKey, KeyStore, presented_key
from app.service import Call, Gateway

JSON = "application/json"


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def start_call(request: Request, route: str) -> Call:
    return Call(request_id=new_request_id(), route=route, key_id="-", t0=time.perf_counter())


def authenticate(request: Request, call: Call) -> ClientKey | None:
    keys: KeyStore = request.app.state.keys
    if not keys.enabled:
        return None
    key = keys.authenticate(presented_key(request.headers))
    if key is None:
        raise AuthenticationFailed(
            "missing or invalid API key: send it in the x-api-key header or as "
            "Authorization: Bearer <key>"
        )
    call.key_id = key.id
    return key


async def read_body(request: Request, limit: int, seconds: float = 60.0) -> bytes:
    """The body, within the size limit (413) and the time limit (408: a stalled sender)."""
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


def json_response(payload: Any, request_id: str, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=JSON,
        headers={"request-id": request_id},
    )


def error_response(err: GatewayError, request_id: str) -> Response:
    headers = {"request-id": request_id, **err.headers()}
    return Response(
        error_json(err, request_id), status_code=err.status, media_type=JSON, headers=headers
    )


class SSEResponse(Response):
    """Streams SSE bytes and cancels the producer as soon as the client disconnects.

    Written against raw ASGI (instead of Starlette's StreamingResponse and its anyio task group)
    so one stream costs one watcher task, and so the producer is always closed — releasing the
    upstream connection, the stream slot and the key's limits within moments of a disconnect.
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
            with contextlib.suppress(BaseException):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
