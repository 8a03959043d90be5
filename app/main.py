"""Application factory and lifespan. Nothing does I/O at import time.

Contract: :func:`create_app` returns the FastAPI app (gunicorn: ``app.main:create_app()``).
The lifespan loads and validates the config (an invalid config stops the start with a message
naming the bad key), builds the OCI signer once (off the event loop: token signers call the
network), opens the pooled upstream session, loads the client keys, then freezes the start-up
heap so full GCs stay short while hundreds of streams are open. A background task re-reads the
config and keys files when they change (Kubernetes swaps a mounted ConfigMap/Secret atomically):
a valid new config serves new requests while in-flight ones finish on the old one; an invalid one
is refused with a log line and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.anthropic.openapi import add_components, count_tokens_openapi, messages_openapi
from app.api import count_tokens, messages, models, ops
from app.api.deps import error_response
from app.config import ConfigError, GatewayConfig, load_config
from app.errors import GatewayError, NotFound, internal_error
from app.observability import metrics as m
from app.observability import tracing
from app.observability.logging import setup_logging
from app.oci.auth import build_auth
from app.oci.client import OciClient
from app.security.keys import KeyStore
from app.security.limits import Limiter
from app.service import MessagesService
from app.service.accounting import new_request_id
from app.settings import Settings

log = logging.getLogger("app")


def _file_stamp(path: str) -> tuple[float, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_ino, st.st_size)


async def _watch_files(app: FastAPI, settings: Settings) -> None:
    """Poll (cheap ``stat``) rather than inotify: ConfigMap swaps replace a symlinked dir."""
    stamp = _file_stamp(settings.config)
    while True:
        await asyncio.sleep(settings.reload_interval)
        keys: KeyStore = app.state.keys
        result = keys.maybe_reload()
        if result is not None:
            m.CONFIG_RELOADS.labels("keys", "ok" if result else "error").inc()
        new_stamp = _file_stamp(settings.config)
        if new_stamp == stamp or new_stamp is None:
            continue
        stamp = new_stamp
        try:
            config = await asyncio.to_thread(load_config, settings.config, settings.oci_endpoint)
            _check_reloadable(app.state.gateway.config, config)
        except ConfigError as err:
            m.CONFIG_RELOADS.labels("config", "error").inc()
            log.error("config change refused, keeping the running config: %s", err)
            continue
        app.state.gateway.swap_config(config)
        if config.client_auth.api_keys_file != keys.path:
            try:
                app.state.keys = KeyStore(config.client_auth.api_keys_file)
            except Exception as err:  # keep the old keys: never open the gateway by accident
                log.error("new keys file refused: %s", err)
        m.CONFIG_RELOADS.labels("config", "ok").inc()
        log.info("config reloaded", extra={"models": sorted(config.models)})


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


def _check_reloadable(old: GatewayConfig, new: GatewayConfig) -> None:
    if (
        old.oci.auth != new.oci.auth
        or old.oci.config_file != new.oci.config_file
        or (old.oci.profile != new.oci.profile)
    ):
        raise ConfigError(
            "oci.auth/config_file/profile changed: restart the gateway to use new OCI credentials"
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        config = await asyncio.to_thread(load_config, settings.config, settings.oci_endpoint)
        auth = await asyncio.to_thread(build_auth, config.oci)
        keys = KeyStore(config.client_auth.api_keys_file)
        client = OciClient(auth, config.oci)
        await client.start()
        region = config.oci.region or auth.region
        app.state.keys = keys
        limiter: Limiter = Limiter()
        if config.limits.redis_url:
            from app.security.redis_limits import RedisLimiter

            limiter = RedisLimiter(config.limits.redis_url)
        app.state.gateway = MessagesService(config, client, limiter, region)
        app.state.draining = False
        if not keys.enabled:
            log.warning(
                "client_auth.api_keys_file is not set: the gateway is OPEN to anyone "
                "who can reach it"
            )
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
                "keys": len(keys.ids),
            },
        )
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(_watch_files(app, settings))
        _install_drain(app, settings)
        gc.collect()
        gc.freeze()  # start-up objects never need scanning again (DESIGN.md perf notes)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            await client.close()
            await limiter.close()
            tracing.shutdown_tracing()

    app = FastAPI(
        title="OCI Anthropic Gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.gateway = None
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
    app.add_api_route("/v1/models", models.list_models, methods=["GET"])
    app.add_api_route("/v1/models/{model_id:path}", models.get_model, methods=["GET"])
    app.add_api_route("/", ops.root, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/healthz", ops.healthz, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/readyz", ops.readyz, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/metrics", ops.metrics, methods=["GET"], include_in_schema=False)
    _install_error_handlers(app)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_components(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if tracing.setup_tracing():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # no span per ASGI send/receive: that is one span per streamed event (1.6x CPU/event)
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz,readyz,metrics", exclude_spans=["send", "receive"]
        )
    _install_cors(app, settings)
    return app


def _install_cors(app: FastAPI, settings: Settings) -> None:
    # CORS is off unless the config names origins; read without failing the import
    try:
        config = load_config(settings.config, settings.oci_endpoint)
    except ConfigError:
        return
    if config.server.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.server.cors_origins),
            allow_methods=["GET", "POST", "HEAD"],
            allow_headers=["*"],
        )


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
