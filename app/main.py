"""Application factory and lifespan. Nothing does I/O at import time.

Contract: :func:`create_app` returns the FastAPI app (gunicorn:
``app.main:create_app(metrics_listener=False)``).
The lifespan loads and validates the config (an invalid config stops the start with a message
naming the bad key), builds the OCI signer once (off the event loop: token signers call the
network), opens the pooled upstream session, loads the client keys, then freezes the start-up
heap so full GCs stay short while hundreds of streams are open. A background task re-reads the
config and keys files when they change (Kubernetes swaps a mounted ConfigMap/Secret atomically):
a valid new config serves new requests while in-flight ones finish on the old one, and
everything built from the config follows it (the OCI client's timeouts and pool, the limiter,
CORS, the client keys); a config that changes what only a restart can change (the OCI signer's
keys, :data:`_RESTART_KEYS`) is refused with a WARNING, an invalid one with an ERROR, and the old
one keeps serving. Closed by default (:func:`app.config.check_client_auth`): with real OCI
credentials and no client authentication the start fails and such a reload is refused, unless
``client_auth.allow_anonymous`` says otherwise (then the "OPEN" warning is logged). The
Prometheus exposition has its own listener (``GATEWAY_METRICS_PORT``), never the API port.
README "Operations" lists every key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.anthropic.openapi import add_components, count_tokens_openapi, messages_openapi
from app.api import count_tokens, messages, models, ops, usage
from app.api.deps import error_response
from app.config import ConfigError, GatewayConfig, check_client_auth, load_config
from app.errors import GatewayError, NotFound, internal_error
from app.gc_tuning import parse_gc_threshold, tune_gc
from app.malloc_tuning import parse_keep, tune_malloc
from app.observability import metrics as m
from app.observability import tracing
from app.observability.logging import setup_logging
from app.observability.metrics_server import start_metrics_server
from app.oci.auth import build_auth
from app.oci.client import OciClient
from app.security.budgets import Budgets
from app.security.identity import OPEN, Identity, warn_unknown_teams
from app.security.keys import KeyStore, file_stamp
from app.security.limits import build_limiter
from app.security.spend_store import build_store
from app.service import MessagesService
from app.service.accounting import new_request_id
from app.settings import Settings

log = logging.getLogger("app")


#: restart-only keys: the OCI signer is built once, at start-up (token signers call the network
#: and hold state). A reload that changes one is refused as a whole, so the running config never
#: mixes new endpoints with old credentials.
_RESTART_KEYS = frozenset({"oci.auth", "oci.config_file", "oci.profile", "oci.key_file"})


async def _watch_files(app: FastAPI, settings: Settings) -> None:
    """Poll (cheap ``stat``) rather than inotify: ConfigMap swaps replace a symlinked dir."""
    stamp = file_stamp(settings.config)
    while True:
        await asyncio.sleep(settings.reload_interval)
        keys: KeyStore = app.state.identity.keys
        result = keys.maybe_reload()
        if result is not None:
            m.CONFIG_RELOADS.labels("keys", "ok" if result else "error").inc()
        new_stamp = file_stamp(settings.config)
        if new_stamp == stamp or new_stamp is None:
            continue
        stamp = new_stamp
        try:
            await _reload_config(app, settings)
        except Exception as err:  # the watcher must survive whatever one reload does
            m.CONFIG_RELOADS.labels("config", "error").inc()
            log.error("config reload failed: %s", err, exc_info=err)


async def _reload_config(app: FastAPI, settings: Settings) -> None:
    """Apply a changed config file to everything built from it, or refuse it as a whole.

    result label of ``gateway_config_reloads_total{file="config"}``: ``ok`` (every change is in
    force), ``error`` (invalid file), ``restart_required`` (a key of :data:`_RESTART_KEYS`
    changed; logged at WARNING with the keys). In-flight requests finish on what they hold.
    """
    gateway = app.state.gateway
    old: GatewayConfig = gateway.config
    try:
        new = await asyncio.to_thread(load_config, settings.config, settings.oci_endpoint)
        check_client_auth(new)  # closed by default: a reload never opens the gateway by accident
    except ConfigError as err:
        m.CONFIG_RELOADS.labels("config", "error").inc()
        log.error("config change refused, keeping the running config: %s", err)
        return
    changed = _changed_keys(old.model_dump(mode="json"), new.model_dump(mode="json"))
    restart = sorted(_RESTART_KEYS.intersection(changed))
    if restart:
        m.CONFIG_RELOADS.labels("config", "restart_required").inc()
        log.warning(
            "config change not applied: %s only change(s) with a restart (the OCI signer is "
            "built at start-up); the running config keeps serving",
            ", ".join(restart),
            extra={"restart_required": restart},
        )
        return
    app.state.identity = await app.state.identity.for_config(new)
    warn_unknown_teams(app.state.identity, new)
    gateway.swap_config(new)  # models, aliases, retries, idle timeout, server.* limits
    gateway.client.reconfigure(new.oci)  # connect/first-byte timeouts, max_connections
    if new.limits.redis_url != old.limits.redis_url:
        retired, gateway.limiter = gateway.limiter, build_limiter(new.limits.redis_url)
        retired.retire()  # its permits in flight still release into it
        old_store, gateway.budgets.store = (
            gateway.budgets.store,
            build_store(new.limits.redis_url, new.budgets.history_days),
        )
        old_store.retire()  # spend is shared through the limits' Redis: it follows it
    app.state.cors.origins = new.server.cors_origins
    m.CONFIG_RELOADS.labels("config", "ok").inc()
    log.info("config reloaded", extra={"models": sorted(new.models), "changed": changed})


def _changed_keys(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted names of the leaves that differ (names only: values may hold credentials)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for name in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{name}" if path else str(name)
            out += _changed_keys(old.get(name), new.get(name), sub)
        return out
    return [path] if old != new else []


def _install_drain(app: FastAPI, settings: Settings) -> None:
    """On SIGTERM: readiness turns false at once; streams still open when the graceful period
    is nearly over are ended with an ``event: error`` before the server closes them.

    The server's own handler (uvicorn's or gunicorn's worker) is chained: it stops accepting
    new connections and waits for in-flight requests.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled in the main thread (e.g. in-process test servers)
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        if not app.state.draining:
            app.state.draining = True
            deadline = max(0.5, settings.graceful_timeout - 2.0)
            loop.call_soon_threadsafe(loop.call_later, deadline, app.state.gateway.abort_streams)
            log.info(
                "SIGTERM: draining",
                extra={
                    "grace_seconds": settings.graceful_timeout,
                    "open_streams": len(app.state.gateway.stream_tasks),
                },
            )
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def create_app(settings: Settings | None = None, *, metrics_listener: bool = True) -> FastAPI:
    """``metrics_listener``: this process serves ``GATEWAY_METRICS_PORT`` (gunicorn workers
    pass False: their master serves it, :mod:`app.gunicorn_conf`)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        config = await asyncio.to_thread(load_config, settings.config, settings.oci_endpoint)
        check_client_auth(config)  # closed by default: refuse to start open with real OCI creds
        auth = await asyncio.to_thread(build_auth, config.oci)
        identity = app.state.identity = await Identity.build(config)
        warn_unknown_teams(identity, config)
        client = OciClient(auth, config.oci)
        await client.start()
        region = config.oci.region or auth.region
        limiter = build_limiter(config.limits.redis_url)
        budgets = Budgets(build_store(config.limits.redis_url, config.budgets.history_days))
        app.state.gateway = MessagesService(config, client, limiter, region, budgets)
        app.state.draining = False
        app.state.cors.origins = config.server.cors_origins
        if not identity.enabled:
            log.warning(OPEN)
        if auth.mode == "demo":
            log.warning(
                "serving the DEMO upstream (the bundled OCI emulator at %s) with an "
                "ephemeral key: not real OCI models",
                config.base_url(),
            )
        log.info(
            "gateway ready",
            extra={
                "oci_auth": auth.description,
                "upstream": config.base_url(),
                "models": sorted(config.models),
                "keys": len(identity.keys.ids),
                "oidc": identity.oidc is not None,
            },
        )
        metrics = None
        if metrics_listener and settings.metrics_port:
            metrics = await asyncio.to_thread(
                start_metrics_server, settings.host, settings.metrics_port
            )
            log.info("metrics listener", extra={"metrics_port": metrics.port})
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(_watch_files(app, settings))
        _install_drain(app, settings)
        # freeze the start-up heap, then the collector's policy (app/gc_tuning.py)
        gc_task = tune_gc(parse_gc_threshold(settings.gc_threshold))
        # keep big freed buffers in the heap: no page faults per long turn (app/malloc_tuning.py)
        tune_malloc(parse_keep(settings.malloc_keep))
        try:
            yield
        finally:
            if gc_task is not None:
                gc_task.cancel()
            if watcher is not None:
                watcher.cancel()
            if metrics is not None:
                await asyncio.to_thread(metrics.close)
            await app.state.identity.close()  # the current one: reloads replace it
            await client.close()
            await app.state.gateway.limiter.close()  # the current one: reloads replace it
            await app.state.gateway.budgets.store.close()
            await asyncio.to_thread(_flush_traces)

    app = FastAPI(
        title="OCI Anthropic Gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI 0.165's own OpenTelemetry (a second SERVER span, dependency and endpoint spans,
        # metrics, a log bridge) doubled the spans per request: ours (or the instrumentation's)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.gateway = None
    app.state.cors = _CorsOrigins()
    app.add_api_route(
        "/v1/messages",
        messages.create_message,
        methods=["POST"],
        openapi_extra=messages_openapi(),
        summary="Create a message",
    )
    app.add_api_route(
        "/v1/messages/count_tokens",
        count_tokens.count_tokens,
        methods=["POST"],
        openapi_extra=count_tokens_openapi(),
        summary="Count tokens",
    )
    # The two hot routes are served by plain Starlette routes placed first (they parse their own
    # bodies), skipping FastAPI's dependency solving and exit-stack per request (~10% of a
    # request's CPU in the profile). The APIRoutes above stay for the OpenAPI description.
    app.router.routes.insert(0, Route("/v1/messages", messages.create_message, methods=["POST"]))
    app.router.routes.insert(
        1, Route("/v1/messages/count_tokens", count_tokens.count_tokens, methods=["POST"])
    )
    app.add_api_route("/v1/usage", usage.get_usage, methods=["GET"], summary="Spend and budgets")
    app.add_api_route("/v1/models", models.list_models, methods=["GET"])
    app.add_api_route("/v1/models/{model_id:path}", models.get_model, methods=["GET"])
    app.add_api_route("/", ops.root, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/healthz", ops.healthz, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/readyz", ops.readyz, methods=["GET", "HEAD"], include_in_schema=False)
    _install_error_handlers(app)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_components(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if tracing.setup_tracing(settings.otlp_encoder):
        if settings.trace_server_span == "instrumentation":
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            # no span per ASGI send/receive: that is one span per streamed event (1.6x CPU/event)
            FastAPIInstrumentor.instrument_app(
                app, excluded_urls="healthz,readyz", exclude_spans=["send", "receive"]
            )
        else:
            from app.observability.server_span import ServerSpanMiddleware

            # the default: the instrumentation still wraps every ASGI send (~20 µs per streamed
            # event, bench `modes`), which put tracing's cost at 43% of streamed throughput
            app.add_middleware(ServerSpanMiddleware)
    # outermost, as before: preflights are answered before tracing and routing
    app.add_middleware(_LiveCors, origins=app.state.cors)
    return app


def _flush_traces() -> None:
    # Flush, not shut down (review B11): the tracer provider is process-global and shared by
    # every app of this process (the tests build several); the SDK shuts it down at exit.
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        flush()


class _CorsOrigins:
    """The origins in force; the lifespan and reloads set them (``server.cors_origins``)."""

    __slots__ = ("origins",)

    def __init__(self) -> None:
        self.origins: tuple[str, ...] = ()


class _LiveCors:
    """CORS that follows config reloads: off (a pass-through) unless origins are listed.

    Starlette builds its middleware stack once, so a reload cannot re-add ``CORSMiddleware``;
    this wrapper rebuilds one (cheap, no I/O) when the origins change.
    """

    def __init__(self, app: ASGIApp, origins: _CorsOrigins) -> None:
        self.app = app
        self._origins = origins
        self._built: tuple[tuple[str, ...], ASGIApp] = ((), app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origins = self._origins.origins
        if not origins or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        built_for, cors = self._built
        if built_for != origins:
            cors = CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "HEAD"],
                allow_headers=["*"],
            )
            self._built = (origins, cors)
        await cors(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Any) -> Response:
        status = getattr(exc, "status_code", 500)
        rid = new_request_id()
        if status == 404:
            err: GatewayError = NotFound(f"no route for {request.method} {request.url.path}")
        elif status == 405:
            err = GatewayError(
                f"method {request.method} is not allowed on {request.url.path}",
                error_type="invalid_request_error",
                status=405,
            )
        else:
            err = GatewayError(
                str(getattr(exc, "detail", "error")),
                error_type="invalid_request_error" if status < 500 else "api_error",
                status=status,
            )
        return error_response(err, rid)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Only for routes without an accounting block (the API routes answer their own bugs,
        # with their own request id); Starlette re-raises after this, so the server logs it.
        log.error(
            "unexpected error",
            exc_info=exc,
            extra={"path": request.url.path, "error_class": type(exc).__name__},
        )
        return error_response(internal_error(), new_request_id())

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
