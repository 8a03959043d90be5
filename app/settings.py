"""Process settings from the environment (pydantic-settings): the ONE reader of ``GATEWAY_*``.

Contract: only process-level knobs live here (where the config file is, where to listen — the
API on ``GATEWAY_PORT``, the metrics on their own ``GATEWAY_METRICS_PORT`` —, log level,
workers, timeouts of the HTTP server). Everything about models and OCI is in the config file
(:mod:`app.config`). ``python -m app`` (:mod:`app.__main__`), the gunicorn config
(:mod:`app.gunicorn_conf`) and the app itself read these values through :class:`Settings` and
nowhere else, so a knob means the same under uvicorn and gunicorn. Durations are seconds and
may be fractional (``GATEWAY_GRACEFUL_TIMEOUT=60.5``); servers that only take whole seconds get
:func:`whole_seconds`, rounded up so a deadline is never shortened. A value that is not a number
stops the start with pydantic's message naming the variable.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    config: str = "config/gateway.yaml"
    host: str = "0.0.0.0"
    port: int = 8000
    #: the Prometheus exposition's own port (never the API port); 0 = no metrics listener
    metrics_port: int = Field(9464, ge=0, le=65535)
    log_level: str = "INFO"
    #: overrides ``oci.endpoint`` of the config file (compose points it at the emulator)
    oci_endpoint: str | None = None
    #: seconds between checks of the config and keys files for changes (0 disables)
    reload_interval: float = Field(2.0, ge=0)
    #: seconds in-flight streams may run after SIGTERM (gunicorn's graceful_timeout too)
    graceful_timeout: float = Field(600.0, ge=0)
    #: seconds an idle client connection is kept open; above the OCI load balancer's 65 s
    keepalive: float = Field(75.0, ge=0)
    #: gunicorn worker processes (``python -m app`` always runs one)
    workers: int = Field(1, ge=1)
    #: gunicorn's worker heartbeat timeout; 0 = off, because a stream holds a request for minutes
    timeout: float = Field(0.0, ge=0)
    #: the garbage collector (app/gc_tuning.py): "" = tuned default, "python" = CPython's
    gc_threshold: str = ""
    #: free heap a worker keeps for its next big request (app/malloc_tuning.py): "" = 64 MiB,
    #: a number of bytes, or "glibc" to leave malloc's own thresholds alone
    malloc_keep: str = ""
    #: the SERVER span of each request when tracing is on: "lean" = the gateway's middleware
    #: (app/observability/server_span.py), "instrumentation" = opentelemetry-instrumentation-
    #: fastapi (more HTTP attributes, ~20 µs more per streamed event: README "Tracing cost")
    trace_server_span: Literal["lean", "instrumentation"] = "lean"
    #: how OTLP/HTTP spans are encoded: "lean" = app/observability/otlp.py, "library" =
    #: opentelemetry-exporter-otlp-proto-http's own (README "Tracing cost")
    otlp_encoder: Literal["lean", "library"] = "lean"


def whole_seconds(seconds: float) -> int:
    """For servers whose settings are integers (gunicorn refuses ``60.5``; uvicorn types int)."""
    return math.ceil(seconds)
