"""``FakeOCI``: an HTTP server that speaks OCI Generative AI's chat API.

Contract:

* ``POST /20231130/actions/chat`` — verifies the request signature (unless disabled),
  validates the ChatDetails body, resolves the model (404 if unknown), applies per-model
  rules, then answers with the next queued ``Scenario`` (or an inline ``[[scenario:...]]``
  marker, or the default answer) as SSE (``isStream: true``) or JSON. Answers about a
  deprecated model carry ``model-retirement-info``; an answer cut by the on-demand output cap
  carries the debugging header ``x-fake-oci-output-capped: <cap>``.
* ``GET /20231130/models`` and ``GET /20231130/models/{id}`` — the management API's ListModels
  and GetModel (``management.py``), signed like inference. Real OCI serves them on
  ``generativeai.<region>...`` rather than ``inference.generativeai.<region>...``; the emulator
  is one server and serves both on its one port.
* Any other path → 404 in OCI's error shape (after authentication).
* ``/_fake/*`` — unauthenticated control API: ``POST|DELETE /_fake/scenarios``,
  ``GET|DELETE /_fake/requests``, ``PUT|DELETE /_fake/default``, ``GET /_fake/health``,
  ``GET /_fake/models`` (the catalog with every rule flag and the on-demand output caps),
  ``POST /_fake/gc`` (a full garbage collection now; ``{"automatic": false|true}`` also turns
  the process's automatic collection off or back on: for latency benchmarks, see below).
* Replay mode (``replay=`` a cassette folder or ``CassetteLibrary``; ``cassettes.py``): every
  OCI-API request (after the signature check) is answered from the recorded exchange that
  matches it, without validation or scenarios; no match → ``404 CassetteNotFound``.

Runs on its own event loop in a background thread (``start``/``stop`` or ``with``), or on
the caller's loop (``await start_async()``), e.g. when started by ``python -m emulator``.
Streams are plain coroutines writing with ``await resp.write()``, so thousands of slow
concurrent streams cost no threads. Handler cancellation is on so a client that closes a
stream early is noticed at once (``connections_closed``, ``client_disconnected_at``).

Why ``/_fake/gc``: with thousands of streams open, one of CPython's full collections walks every
stream's objects and stalls them all (320 ms measured in bench/ramp.py's emulator-alone floor);
a benchmark that measures gaps between chunks turns automatic collection off for its run and on
again after it, so the floor is the harness's cost and not the collector's. It acts on the whole
process (``gc`` is per interpreter): in process, on the caller's too.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from .answer import Answer, resolve_answer
from .cassettes import CassetteLibrary
from .catalog import Catalog
from .context import ChatContext, build_context
from .errors import OCIError, bad_request, error_response, make_request_id, model_not_found
from .errors import response_for as error_for
from .jsonutil import dumps, loads
from .management import MODELS_PATH, get_model, list_models
from .records import MAX_RECORDED_BYTES, RecordedRequest, RequestLog, now
from .responses import json_body
from .scenario import Scenario, ScenarioQueue, coerce, parse_inline_marker
from .signature import SignatureVerifier
from .streams import render_stream, send_frames
from .validate import check_model_rules, validate_chat_details

CHAT_PATH = "/20231130/actions/chat"
MAX_BODY_BYTES = 64 * 1024 * 1024  # base64 images/documents make large bodies
NOT_FOUND_BODY = ("NotAuthorizedOrNotFound",
                  "Authorization failed or requested resource not found.")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(data), content_type="application/json")


def _control_error(message: str) -> web.Response:
    return _json({"code": "400", "message": message}, status=400)


class FakeOCI:
    """OCI GenAI inference emulator; see the module docstring."""

    def __init__(
        self,
        public_keys: dict[str, str] | None = None,
        accept_any_key_pem: str | None = None,
        verify_signatures: bool = True,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_delay_between: float = 0.0,
        log_requests: bool = False,
        max_recorded: int = 50_000,
        max_recorded_bytes: int = MAX_RECORDED_BYTES,
        catalog: Catalog | None = None,
        replay: CassetteLibrary | Path | None = None,
    ) -> None:
        self.verify_signatures = verify_signatures
        self.verifier = SignatureVerifier(public_keys, accept_any_key_pem)
        self.catalog = catalog or Catalog()
        self.replay = CassetteLibrary.load(replay) if isinstance(replay, Path) else replay
        self.host = host
        self.port = port
        self.default_delay_between = default_delay_between
        self.log_requests = log_requests
        self.connections_closed = 0  # streams the client closed before the end
        self.active_streams = 0
        self._queue = ScenarioQueue()
        self._log = RequestLog(max_recorded, max_recorded_bytes)
        self._default: Scenario | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping = False

    # --- scripting API (thread-safe) -----------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def push(self, *scenarios: Scenario | dict[str, Any]) -> None:
        """Queue answers; a ``match`` scenario wins for a matching request, else FIFO."""
        self._queue.push(*scenarios)

    def set_default(self, scenario: Scenario | dict[str, Any] | None) -> None:
        """Scenario used when nothing is queued and no inline marker is present."""
        self._default = None if scenario is None else coerce(scenario)

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._log.snapshot()

    @property
    def last_request(self) -> RecordedRequest | None:
        items = self._log.snapshot()
        return items[-1] if items else None

    def clear_requests(self) -> None:
        self._log.clear()

    def reset(self) -> None:
        """Forget queued scenarios, the default scenario, recorded requests and counters."""
        self._queue.clear()
        self._log.clear()
        self._default = None
        self.connections_closed = 0

    def add_key(self, key_id: str, public_pem: str) -> None:
        self.verifier.add_key(key_id, public_pem)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` from a test thread; True as soon as it holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- lifecycle ----------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        router = app.router
        router.add_post("/_fake/scenarios", self._ctl_push)
        router.add_delete("/_fake/scenarios", self._ctl_clear_scenarios)
        router.add_get("/_fake/requests", self._ctl_requests)
        router.add_delete("/_fake/requests", self._ctl_clear_requests)
        router.add_put("/_fake/default", self._ctl_set_default)
        router.add_post("/_fake/default", self._ctl_set_default)
        router.add_delete("/_fake/default", self._ctl_clear_default)
        router.add_get("/_fake/health", self._ctl_health)
        router.add_get("/_fake/models", self._ctl_models)
        router.add_post("/_fake/gc", self._ctl_gc)
        if self.replay is not None:
            router.add_route("*", "/{tail:.*}", self._replay)
            return app
        router.add_post(CHAT_PATH, self._chat)
        router.add_get(MODELS_PATH, self._list_models)
        router.add_get(MODELS_PATH + "/{model_id}", self._get_model)
        router.add_route("*", "/{tail:.*}", self._other)
        return app

    async def start_async(self) -> None:
        """Start serving on the running loop; sets ``port`` when it was 0."""
        self._stopping = False
        runner = web.AppRunner(self.build_app(), handler_cancellation=True, access_log=None,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=4096)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop_async(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> FakeOCI:
        """Serve from a background thread with its own event loop."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, name="fake-oci", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._startup_error is not None:
            raise RuntimeError("FakeOCI failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._stopping = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None

    def __enter__(self) -> FakeOCI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start_async())
        except BaseException as exc:  # reported to start() in the caller's thread
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.stop_async())
            loop.close()

    # --- OCI API ------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[RecordedRequest, bytes]:
        raw = await request.read()
        try:
            body = loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method, path=request.raw_path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body, raw_body=raw, received_at=now(),
            opc_request_id=make_request_id(request.headers.get("opc-request-id")),
        )
        self._log.add(record)
        return record, raw

    def _authenticate(self, request: web.Request, raw: bytes) -> None:
        if self.verify_signatures:
            self.verifier.verify(request.method, request.raw_path, request.headers, raw)

    def _fail(self, record: RecordedRequest, error: OCIError) -> web.Response:
        record.status = error.status
        record.error_message = error.message
        record.completed_at = now()
        self._log_line(record)
        return error_for(error, record.opc_request_id or make_request_id(None))

    async def _other(self, request: web.Request) -> web.Response:
        record, raw = await self._record(request)
        try:
            self._authenticate(request, raw)
        except OCIError as exc:
            return self._fail(record, exc)
        return self._fail(record, OCIError(404, *NOT_FOUND_BODY))

    def _ok_json(self, record: RecordedRequest, data: Any,
                 headers: dict[str, str] | None = None) -> web.Response:
        record.status = 200
        record.completed_at = now()
        self._log_line(record)
        return web.Response(body=dumps(data), content_type="application/json", headers={
            "opc-request-id": str(record.opc_request_id), **(headers or {})})

    async def _list_models(self, request: web.Request) -> web.Response:
        record, raw = await self._record(request)
        try:
            self._authenticate(request, raw)
            collection, next_page = list_models(self.catalog, parse_qs(request.query_string))
        except OCIError as exc:
            return self._fail(record, exc)
        return self._ok_json(record, collection,
                             {"opc-next-page": next_page} if next_page else None)

    async def _get_model(self, request: web.Request) -> web.Response:
        record, raw = await self._record(request)
        try:
            self._authenticate(request, raw)
            model = get_model(self.catalog, request.match_info["model_id"])
        except OCIError as exc:
            return self._fail(record, exc)
        return self._ok_json(record, model)

    async def _replay(self, request: web.Request) -> web.StreamResponse:
        assert self.replay is not None
        record, raw = await self._record(request)
        try:
            self._authenticate(request, raw)
        except OCIError as exc:
            return self._fail(record, exc)
        cassette = self.replay.take(request.method, request.raw_path, record.body)
        if cassette is None:
            return self._fail(record, OCIError(404, "CassetteNotFound", self.replay.miss_message(
                request.method, request.raw_path, record.body), {"x-fake-oci-replay": "miss"}))
        headers = {**cassette.reply_headers(), "opc-request-id": str(record.opc_request_id),
                   "x-fake-oci-replay": cassette.name}
        record.status = cassette.status
        if cassette.events is None:
            record.completed_at = now()
            self._log_line(record)
            return web.Response(status=cassette.status, body=dumps(cassette.response_body),
                                headers=headers)
        resp = web.StreamResponse(status=cassette.status, headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for index, data in enumerate(cassette.events):
            await resp.write(b"data: " + data.encode("utf-8") + b"\n\n")
            record.events_sent = index + 1
        record.completed_at = now()
        await resp.write_eof()
        self._log_line(record)
        return resp

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record, raw = await self._record(request)
        try:
            self._authenticate(request, raw)
            ctx = self._context(record)
            scenario = self._pick_scenario(ctx)
            answer = resolve_answer(scenario, ctx)
        except OCIError as exc:
            return self._fail(record, exc)
        record.model_id, record.stream = ctx.model_id, ctx.is_stream
        try:
            return await self._answer(request, record, ctx, scenario, answer)
        except asyncio.CancelledError:
            if not self._stopping:
                self._client_gone(record)
            raise

    def _context(self, record: RecordedRequest) -> ChatContext:
        if record.body is None:
            raise bad_request("<body>: request body is not valid JSON")
        validate_chat_details(record.body)
        chat_request = record.body["chatRequest"]
        model = self.catalog.resolve(record.body["servingMode"], chat_request["apiFormat"])
        if model is None:
            raise model_not_found()
        check_model_rules(model, chat_request)
        return build_context(record.body, model)

    def _pick_scenario(self, ctx: ChatContext) -> Scenario:
        queued = self._queue.take(ctx.last_user_text)
        if queued is not None:
            return queued
        if ctx.fresh_user_turn:
            try:
                inline = parse_inline_marker(ctx.last_user_text)
            except (ValueError, TypeError) as exc:
                raise bad_request(f"invalid [[scenario:...]] marker: {exc}") from None
            if inline is not None:
                return inline
        return self._default or Scenario()

    async def _answer(self, request: web.Request, record: RecordedRequest, ctx: ChatContext,
                      scenario: Scenario, answer: Answer) -> web.StreamResponse:
        if scenario.delay_before > 0:
            await asyncio.sleep(scenario.delay_before)
        if scenario.error is not None:
            err = scenario.error
            return self._fail(record, OCIError(err.status, err.code or str(err.status),
                                               err.message or "", err.headers))
        if ctx.is_stream:
            return await self._stream(request, record, ctx, scenario, answer)
        return await self._json(request, record, ctx, scenario, answer)

    @staticmethod
    def _answer_headers(ctx: ChatContext, answer: Answer) -> dict[str, str]:
        headers = {}
        # OCI release note 2025-07-10: after a model is deprecated, "any inference call to that
        # model includes another response header called model-retirement-info".
        retirement = ctx.model.retirement_info(ctx.serving_type)
        if retirement is not None:
            headers["model-retirement-info"] = retirement
        if answer.capped_at is not None:
            headers["x-fake-oci-output-capped"] = str(answer.capped_at)
        return headers

    async def _json(self, request: web.Request, record: RecordedRequest, ctx: ChatContext,
                    scenario: Scenario, answer: Answer) -> web.StreamResponse:
        body = dumps(json_body(answer, ctx))
        headers = {"Content-Type": "application/json", "opc-request-id": str(record.opc_request_id),
                   **self._answer_headers(ctx, answer)}
        if scenario.drop_after is None:
            record.status = 200
            record.completed_at = now()
            self._log_line(record)
            return web.Response(body=body, headers=headers)
        resp = web.StreamResponse(status=200, headers=headers)
        if scenario.drop_after > 0:
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
        return self._abort(request, record, resp)

    async def _stream(self, request: web.Request, record: RecordedRequest, ctx: ChatContext,
                      scenario: Scenario, answer: Answer) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream", "opc-request-id": str(record.opc_request_id),
            **self._answer_headers(ctx, answer)})
        resp.enable_chunked_encoding()
        frames = render_stream(answer, ctx, scenario.single_newline)
        delay = (scenario.delay_between if scenario.delay_between is not None
                 else self.default_delay_between)
        self.active_streams += 1
        try:
            await resp.prepare(request)
            record.status = 200
            finished = await send_frames(
                resp, frames, delay_first=scenario.delay_first_chunk, delay_between=delay,
                split_reads=scenario.split_reads, drop_after=scenario.drop_after,
                on_sent=lambda n: setattr(record, "events_sent", n))
            if not finished:
                return self._abort(request, record, resp)
            # Final before the last chunk goes out: a client that has the whole body
            # always sees a complete record.
            record.completed_at = now()
            await resp.write_eof()
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
            record.completed_at = None
            self._client_gone(record)
            return resp
        finally:
            self.active_streams -= 1
        self._log_line(record)
        return resp

    def _abort(self, request: web.Request, record: RecordedRequest,
               resp: web.StreamResponse) -> web.StreamResponse:
        """Cut the TCP connection without finishing the body (emulates a broken upstream)."""
        record.dropped_by_server = True
        record.completed_at = now()
        transport = request.transport
        if transport is not None:
            transport.abort()
        self._log_line(record)
        return resp

    def _client_gone(self, record: RecordedRequest) -> None:
        if record.dropped_by_server or record.client_disconnected_at is not None:
            return
        record.client_disconnected_at = now()
        self.connections_closed += 1
        self._log_line(record)

    def _log_line(self, record: RecordedRequest) -> None:
        if not self.log_requests:
            return
        outcome = ("client-closed" if record.client_disconnected_at else
                   "dropped" if record.dropped_by_server else str(record.status))
        took = ((record.completed_at or now()) - record.received_at) * 1000
        print(f"{time.strftime('%H:%M:%S')} {record.method} {record.path} {outcome} "
              f"model={record.model_id} stream={record.stream} events={record.events_sent} "
              f"{took:.0f}ms rid={record.opc_request_id}", file=sys.stdout, flush=True)

    # --- control API --------------------------------------------------------------------

    async def _ctl_push(self, request: web.Request) -> web.Response:
        try:
            data = loads(await request.read())
            items = data if isinstance(data, list) else [data]
            scenarios = [Scenario.from_dict(item) for item in items]
        except (ValueError, TypeError) as exc:
            return _control_error(f"invalid scenario: {exc}")
        self.push(*scenarios)
        return _json({"queued": len(scenarios), "pending": self.pending})

    async def _ctl_clear_scenarios(self, request: web.Request) -> web.Response:
        return _json({"cleared": self._queue.clear()})

    async def _ctl_requests(self, request: web.Request) -> web.Response:
        return _json([r.to_dict() for r in self.requests])

    async def _ctl_clear_requests(self, request: web.Request) -> web.Response:
        return _json({"cleared": self._log.clear()})

    async def _ctl_set_default(self, request: web.Request) -> web.Response:
        try:
            self.set_default(Scenario.from_dict(loads(await request.read())))
        except (ValueError, TypeError) as exc:
            return _control_error(f"invalid scenario: {exc}")
        return _json({"default": self._default.to_dict() if self._default else None})

    async def _ctl_clear_default(self, request: web.Request) -> web.Response:
        self.set_default(None)
        return _json({"default": None})

    async def _ctl_models(self, request: web.Request) -> web.Response:
        return _json({"models": [m.describe() for m in self.catalog.models.values()],
                      "endpoints": dict(self.catalog.endpoints)})

    async def _ctl_gc(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            data = loads(raw) if raw else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            automatic = data.get("automatic")
            if automatic is not None and not isinstance(automatic, bool):
                raise ValueError("'automatic' must be true or false")
        except ValueError as exc:
            return _control_error(f"invalid gc request: {exc}")
        started = time.perf_counter()
        collected = gc.collect()
        took_ms = (time.perf_counter() - started) * 1e3
        if automatic is True:
            gc.enable()
        elif automatic is False:
            gc.disable()
        return _json({"collected": collected, "ms": round(took_ms, 2),
                      "automatic": gc.isenabled()})

    async def _ctl_health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "pending": self.pending, "requests": len(self._log),
                      "activeStreams": self.active_streams,
                      "connectionsClosed": self.connections_closed})


__all__ = ["CHAT_PATH", "MODELS_PATH", "FakeOCI", "error_response"]
