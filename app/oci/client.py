"""Async transport to the OCI GenAI chat endpoint: sign the bytes, send them, classify failures.

Contract:
- One :class:`OciClient` per process holds one aiohttp session (a pooled keep-alive connector)
  and the signer. :meth:`OciClient.send` makes ONE attempt: it signs the exact body bytes, sends
  them with ``opc-request-id`` and ``Accept-Encoding: identity``, waits for the response headers
  within the first-byte timeout and returns the open response on HTTP 200. Any failure raises
  :class:`UpstreamError` carrying the Anthropic error to show, a closed ``kind`` and whether a
  retry may help. Retries, failover and backoff (:func:`backoff`) are the caller's, because each
  attempt is its own span and metric.
- :func:`read_chunks` iterates a streaming response's events with an idle timeout, yielding
  ``None`` each time the upstream has been silent for ``ping_every`` seconds so the caller can
  keep its client connection alive.
- :meth:`OciClient.reconfigure` takes a reloaded ``oci`` section for new requests without
  disturbing open streams (a new pool when its size or the connect timeout changed).
- The SDK's blocking retry strategy and circuit breaker are not used (oci-genai-wire.md §3).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson

from app.config import OciSection
from app.errors import GatewayError
from app.oci.auth import OciAuth
from app.oci.sse import MalformedChunk, SseReader

CHAT_PATH = "/20231130/actions/chat"


class UpstreamError(GatewayError):
    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retryable: bool,
        error_type: str,
        status: int | None = None,
        retry_after: float | None = None,
        opc_request_id: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(
            message,
            error_type=error_type,
            status=status,
            retry_after=retry_after,
            upstream_kind=kind,
            opc_request_id=opc_request_id,
        )
        self.retryable = retryable
        self.upstream_status = upstream_status


_CONTEXT_RX = re.compile(
    r"(context length|context window|maximum context|too many tokens|prompt is too long|"
    r"input is too long|exceeds the maximum|maximum input|token limit)",
    re.IGNORECASE,
)
_NUMBERS_RX = re.compile(r"\d[\d,]*")


def classify(status: int, body: bytes, headers: Any, opc_id: str | None) -> UpstreamError:
    """An OCI error response -> the Anthropic error (oci-genai-wire.md §9, issue table)."""
    message = ""
    try:
        parsed = orjson.loads(body) if body else {}
        if isinstance(parsed, dict):
            message = str(parsed.get("message") or parsed.get("code") or "")
    except orjson.JSONDecodeError:
        message = body[:300].decode("utf-8", "replace")
    message = message[:1000]
    retry_after = _retry_after(headers)
    if status == 400:
        if _CONTEXT_RX.search(message):
            return UpstreamError(
                message,
                kind="context_overflow",
                retryable=False,
                error_type="invalid_request_error",
                opc_request_id=opc_id,
                upstream_status=status,
            )
        return UpstreamError(
            message or "OCI rejected the request",
            kind="bad_request",
            retryable=False,
            error_type="invalid_request_error",
            opc_request_id=opc_id,
            upstream_status=status,
        )
    if status == 404:
        return UpstreamError(
            "OCI Generative AI could not find the model, or the gateway's identity has no access "
            f"to it in this compartment/region: {message}",
            kind="not_found",
            retryable=False,
            error_type="not_found_error",
            opc_request_id=opc_id,
            upstream_status=status,
        )
    if status in (401, 403):
        # the gateway's own credentials: never a 401 to the client (Claude Code retries 401s)
        return UpstreamError(
            f"the upstream rejected the gateway's OCI credentials (HTTP {status}); "
            "check the gateway's OCI auth configuration",
            kind="auth_error",
            retryable=False,
            error_type="api_error",
            status=500,
            opc_request_id=opc_id,
            upstream_status=status,
        )
    if status == 429:
        return UpstreamError(
            f"OCI Generative AI is throttling requests: {message or 'too many requests'}",
            kind="rate_limited",
            retryable=True,
            error_type="rate_limit_error",
            retry_after=retry_after if retry_after is not None else 5.0,
            opc_request_id=opc_id,
            upstream_status=status,
        )
    if status >= 500:
        overloaded = status in (503, 504)
        return UpstreamError(
            f"OCI Generative AI failed (HTTP {status}): {message or 'server error'}",
            kind="server_error",
            retryable=status != 501,
            error_type="overloaded_error" if overloaded else "api_error",
            retry_after=retry_after,
            opc_request_id=opc_id,
            upstream_status=status,
        )
    return UpstreamError(
        f"OCI answered HTTP {status}: {message}",
        kind="other",
        retryable=False,
        error_type="api_error",
        opc_request_id=opc_id,
        upstream_status=status,
    )


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def context_overflow_numbers(message: str) -> tuple[int, int] | None:
    """(tokens, maximum) when OCI's message names them, largest first as the maximum."""
    nums = [int(n.replace(",", "")) for n in _NUMBERS_RX.findall(message)]
    nums = [n for n in nums if n >= 100]
    if len(nums) >= 2:
        a, b = nums[0], nums[1]
        return (max(a, b), min(a, b))
    return None


def backoff(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; an upstream ``retry-after`` is a floor."""
    delay = random.uniform(0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def timeout_error(what: str) -> UpstreamError:
    return UpstreamError(
        f"OCI Generative AI did not answer in time ({what})",
        kind="timeout",
        retryable=True,
        error_type="overloaded_error",
        retry_after=2.0,
    )


class _Connector(aiohttp.TCPConnector):
    """Counts the connections it has handed out, so a retired pool can close after its last."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_use = 0
        self._on_idle: Callable[[], None] | None = None

    async def connect(self, *args: Any, **kwargs: Any) -> aiohttp.connector.Connection:
        self._in_use += 1
        try:
            conn = await super().connect(*args, **kwargs)
        except BaseException:
            self._released()
            raise
        conn.add_callback(self._released)  # runs once, on release() or close()
        return conn

    def _released(self) -> None:
        self._in_use -= 1
        if self._in_use == 0 and self._on_idle is not None:
            callback, self._on_idle = self._on_idle, None
            callback()

    def when_idle(self, callback: Callable[[], None]) -> None:
        if self._in_use == 0:
            callback()
        else:
            self._on_idle = callback


class OciClient:
    def __init__(self, auth: OciAuth, cfg: OciSection) -> None:
        self.auth = auth
        self.cfg = cfg
        self._session: aiohttp.ClientSession | None = None
        #: sessions replaced by reconfigure() that still carry open responses
        self._retired: set[aiohttp.ClientSession] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._session = self._new_session()

    def _new_session(self) -> aiohttp.ClientSession:
        connector = _Connector(
            limit=self.cfg.max_connections,
            ttl_dns_cache=300,
            keepalive_timeout=60,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.cfg.timeouts.connect, sock_connect=self.cfg.timeouts.connect
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )

    def reconfigure(self, cfg: OciSection) -> None:
        """Config reload: requests sent from now on use ``cfg``.

        ``timeouts.first_byte`` is read per attempt. The pool size (``max_connections``) and the
        connect timeout belong to the session, so a change builds a new session for new
        requests; the old one keeps the responses already open on it (streams run on) and
        closes when the last of them is released.
        """
        old, self.cfg = self.cfg, cfg
        if self._session is None or (
            old.max_connections == cfg.max_connections
            and old.timeouts.connect == cfg.timeouts.connect
        ):
            return
        retired, self._session = self._session, self._new_session()
        self._retired.add(retired)

        def close_retired() -> None:
            self._retired.discard(retired)
            task = asyncio.get_running_loop().create_task(retired.close())
            self._closing.add(task)  # a reference until it ran
            task.add_done_callback(self._closing.discard)

        connector = retired.connector
        assert isinstance(connector, _Connector)
        connector.when_idle(close_retired)

    async def close(self) -> None:
        for session in [self._session, *self._retired]:
            if session is not None:
                await session.close()
        self._session = None
        self._retired.clear()

    async def send(
        self, base_url: str, body: bytes, opc_request_id: str, *, stream: bool
    ) -> aiohttp.ClientResponse:
        assert self._session is not None, "OciClient.start() was not awaited"
        url = base_url + CHAT_PATH
        headers = {
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": "identity",
            "opc-request-id": opc_request_id,
            "user-agent": "oci-anthropic-gateway/0.1",
        }
        refreshed = False
        while True:
            signed = await self.auth.sign(url, body, dict(headers))
            try:
                async with asyncio.timeout(self.cfg.timeouts.first_byte):
                    resp = await self._session.post(url, data=body, headers=signed)
            except TimeoutError:
                raise timeout_error(
                    f"no response headers within {self.cfg.timeouts.first_byte:g}s"
                ) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as err:
                raise UpstreamError(
                    f"cannot reach OCI Generative AI ({type(err).__name__})",
                    kind="connect_error",
                    retryable=True,
                    error_type="overloaded_error",
                    retry_after=2.0,
                ) from None
            if resp.status == 200:
                return resp
            opc_id = resp.headers.get("opc-request-id", opc_request_id)
            try:
                async with asyncio.timeout(self.cfg.timeouts.idle):
                    err_body = await resp.read()
            except (TimeoutError, aiohttp.ClientError):
                err_body = b""
            finally:
                resp.release()
            if resp.status == 401 and not refreshed and await self.auth.refresh():
                refreshed = True  # a token signer's token expired: refresh once and retry
                continue
            raise classify(resp.status, err_body, resp.headers, opc_id)


async def read_json(resp: aiohttp.ClientResponse, idle: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(idle):
            data = await resp.read()
    except TimeoutError:
        raise timeout_error("the answer stalled") from None
    except aiohttp.ClientError as err:
        raise UpstreamError(
            f"the OCI answer was cut off ({type(err).__name__})",
            kind="stream_broken",
            retryable=True,
            error_type="api_error",
        ) from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "OCI sent an answer that is not JSON",
            kind="stream_broken",
            retryable=False,
            error_type="api_error",
        ) from None
    if not isinstance(value, dict):
        raise UpstreamError(
            "OCI sent an unexpected answer",
            kind="stream_broken",
            retryable=False,
            error_type="api_error",
        )
    return value


class _Watchdog:
    """One timer per stream that notices upstream silence, instead of a timer per socket read.

    It re-arms itself while data keeps coming; after ``every`` seconds without data (or since
    the last ping) it cancels the reading task, but only while that task is waiting in
    ``readany`` (never while it is handing bytes to the client), and marks the cancellation as
    its own so the reader turns it into a ping or an idle timeout.
    """

    __slots__ = ("_every", "_handle", "_loop", "_task", "fired", "last", "mark", "reading")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], every: float
    ) -> None:
        self._loop = loop
        self._task = task
        self._every = every
        self.last = self.mark = loop.time()
        self.fired = False
        self.reading = False
        self._handle = loop.call_at(self.mark + every, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self.mark + self._every
        if now < due or not self.reading:
            self._handle = self._loop.call_at(max(due, now + 0.05), self._check)
            return
        self.fired = True
        self._task.cancel()
        self._handle = self._loop.call_at(now + self._every, self._check)

    def close(self) -> None:
        self._handle.cancel()


async def read_chunks(
    resp: aiohttp.ClientResponse, *, idle: float, ping_every: float
) -> AsyncIterator[list[dict[str, Any]] | None]:
    """Yield lists of parsed events as they arrive; ``None`` after each ``ping_every`` of silence.

    Raises :class:`UpstreamError` (``timeout`` after ``idle`` seconds of silence,
    ``stream_broken`` on a cut connection or a malformed event).
    """
    reader = SseReader()
    content = resp.content
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    dog = _Watchdog(loop, task, min(ping_every, idle))
    try:
        while True:
            dog.reading = True
            try:
                data = await content.readany()
            except asyncio.CancelledError:
                if not dog.fired:
                    raise
                dog.fired = False
                if task.uncancel() > 0:
                    raise  # a real cancellation (client gone, shutdown) arrived as well
                now = loop.time()
                if now - dog.last >= idle:
                    raise timeout_error(f"no data for {idle:g}s mid-stream") from None
                dog.mark = now
                dog.reading = False
                yield None
                continue
            except (aiohttp.ClientError, OSError) as err:
                raise UpstreamError(
                    f"the OCI stream was cut off ({type(err).__name__})",
                    kind="stream_broken",
                    retryable=False,
                    error_type="api_error",
                ) from None
            finally:
                dog.reading = False
            if not data:
                tail = reader.close()
                if tail:
                    yield tail
                return
            dog.last = dog.mark = loop.time()
            try:
                events = reader.feed(data)
            except MalformedChunk as err:
                raise UpstreamError(
                    str(err), kind="stream_broken", retryable=False, error_type="api_error"
                ) from None
            if events:
                yield events
    finally:
        dog.close()
