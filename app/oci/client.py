"""Async transport to the OCI GenAI chat endpoint: sign the bytes, send them, hand back the answer.

Contract:
- One :class:`OciClient` per process holds one aiohttp session (a pooled keep-alive connector)
  and the signer. :meth:`OciClient.open` makes ONE attempt: it signs the exact body bytes, sends
  them with ``opc-request-id`` and ``Accept-Encoding: identity``, waits for the response headers
  within the first-byte timeout, and on HTTP 200 returns an :class:`UpstreamAnswer`. Any failure
  raises :class:`~app.oci.errors.UpstreamError` (classified in :mod:`app.oci.errors`). Retries,
  failover and backoff are the caller's (:mod:`app.oci.retry` is the policy), because each
  attempt is its own span and metric.
- :class:`UpstreamAnswer` is the only upstream object that leaves this package: ``events()``
  (the stream, :func:`~app.oci.stream.read_chunks`), ``json()`` (the whole body),
  ``opc_request_id``, ``retirement_info`` (OCI's ``model-retirement-info`` header on answers of
  a deprecated model, else ``None``), and ``close()``, which must be called once the caller is
  done, however it ended. No aiohttp type crosses into the service.
- :meth:`OciClient.get_json` is one signed GET of the management API (``ListModels``,
  :mod:`app.oci.models_api`) with the same signer and pool; errors as for :meth:`open`.
- :meth:`OciClient.reconfigure` takes a reloaded ``oci`` section for new requests without
  disturbing open streams (a new pool when its size or the connect timeout changed).
- The SDK's blocking retry strategy and circuit breaker are not used (oci-genai-wire.md §3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

import aiohttp
import orjson

from app.config import OciSection
from app.oci.auth import OciAuth, _SignTarget
from app.oci.errors import broken_answer, classify, connect_error, timeout_error
from app.oci.stream import read_chunks

CHAT_PATH = "/20231130/actions/chat"


class UpstreamAnswer:
    """An answer OCI started (HTTP 200), open until :meth:`close`."""

    __slots__ = ("_resp", "opc_request_id", "retirement_info")

    def __init__(self, resp: aiohttp.ClientResponse, opc_request_id: str) -> None:
        self._resp = resp
        self.opc_request_id = opc_request_id
        # OCI release note 2025-07-10: deprecated models answer with this header
        self.retirement_info: str | None = resp.headers.get("model-retirement-info")

    def events(
        self, *, idle: float, ping_every: float
    ) -> AsyncGenerator[list[dict[str, Any]] | None, None]:
        """The streamed events as they arrive; ``None`` for each ``ping_every`` of silence.
        ``aclose()`` it when stopping early (it holds a timer)."""
        return read_chunks(self._resp.content, idle=idle, ping_every=ping_every)

    async def json(self, *, idle: float) -> dict[str, Any]:
        """The whole (non-streaming) answer; the connection then goes back to the pool.

        A stall or a cut connection is retryable (the client has seen nothing yet); a body that
        is not a JSON object is not (asking again would get the same answer).
        """
        try:
            async with asyncio.timeout(idle):
                data = await self._resp.read()
        except TimeoutError:
            raise timeout_error("the answer stalled") from None
        except (aiohttp.ClientError, OSError) as err:
            raise broken_answer(
                f"the OCI answer was cut off ({type(err).__name__})", retryable=True
            ) from None
        self._resp.release()
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise broken_answer("OCI sent an answer that is not JSON", retryable=False) from None
        if not isinstance(value, dict):
            raise broken_answer("OCI sent an unexpected answer", retryable=False)
        return value

    def close(self) -> None:
        """Free the connection. Close, not release: an unfinished body must not go back to the
        pool, and closing tells OCI to stop generating (and billing) at once. A no-op after
        :meth:`json` read the body to its end."""
        self._resp.close()


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

    async def open(
        self, base_url: str, body: bytes, opc_request_id: str, *, stream: bool
    ) -> UpstreamAnswer:
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
                raise connect_error(err) from None
            opc_id = resp.headers.get("opc-request-id", opc_request_id)
            if resp.status == 200:
                return UpstreamAnswer(resp, opc_id)
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

    async def get_json(self, url: str, opc_request_id: str) -> tuple[dict[str, Any], str | None]:
        """One signed GET (management API): the JSON object and the ``opc-next-page`` header."""
        assert self._session is not None, "OciClient.start() was not awaited"
        headers = {
            "accept": "application/json",
            "opc-request-id": opc_request_id,
            "user-agent": "oci-anthropic-gateway/0.1",
        }
        refreshed = False
        while True:
            target = _SignTarget("GET", url, dict(headers), b"")
            if self.auth.blocking:  # a token signer may refresh over the network
                await asyncio.to_thread(self.auth.signer, target)
            else:
                self.auth.signer(target)
            try:
                async with asyncio.timeout(self.cfg.timeouts.first_byte):
                    async with self._session.get(url, headers=target.headers) as resp:
                        data = await resp.read()
            except TimeoutError:
                raise timeout_error(f"no answer within {self.cfg.timeouts.first_byte:g}s") from None
            except (aiohttp.ClientError, OSError) as err:
                raise connect_error(err) from None
            opc_id = resp.headers.get("opc-request-id", opc_request_id)
            if resp.status == 401 and not refreshed and await self.auth.refresh():
                refreshed = True
                continue
            if resp.status != 200:
                raise classify(resp.status, data, resp.headers, opc_id)
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise broken_answer(
                    "OCI sent an answer that is not JSON", retryable=False
                ) from None
            if not isinstance(value, dict):
                raise broken_answer("OCI sent an unexpected answer", retryable=False)
            return value, resp.headers.get("opc-next-page")
