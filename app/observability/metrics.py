"""Every Prometheus metric the gateway exposes is defined here and nowhere else.

Contract:
- Names follow the OpenTelemetry GenAI semantic conventions where one exists
  (``gen_ai.client.token.usage`` -> ``gen_ai_client_token_usage``,
  ``gen_ai.client.operation.duration`` -> ``gen_ai_client_operation_duration_seconds``), with
  the semconv bucket boundaries; ``gateway_*`` metrics cover what the conventions do not.
- Every label value is bounded: model names come from the catalog (the gateway model name, the
  alias pattern that matched, the OCI model id), key ids from the keys file, error types from
  :class:`~app.errors.UpstreamKind` (enforced by :func:`error_label`), routes from the router's
  templates. Never a raw client string.
- ``GATEWAY_METRICS=0`` (read at import) swaps every metric for a no-op, for benchmarks that
  price the metrics; ``/metrics`` then exposes only the process collectors.
- Under gunicorn with several workers, ``PROMETHEUS_MULTIPROC_DIR`` must be set before this
  module is imported (the gunicorn config does it); ``/metrics`` then sums all workers. Gauges use
  ``livesum`` so a dead worker's open streams disappear with it. Their values read the process id
  once per process, not per update (:mod:`app.observability.prom_values`).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from app.errors import UpstreamKind
from app.observability import prom_values

# before the first metric: multiprocess values without a getpid() per update (prom_values.py)
prom_values.install()

#: Closed set of error kinds (the ``error_type`` label and span ``error.type``).
UPSTREAM_ERROR_TYPES = frozenset(kind.value for kind in UpstreamKind)


def error_label(kind: str | None) -> str:
    """The ``error_type`` label for a failure kind. Only :class:`UpstreamKind` values pass: any
    other string (an Anthropic error type, a typo) is a bug, and must not grow a new series."""
    if kind is not None and kind in UPSTREAM_ERROR_TYPES:
        return str(kind)
    return UpstreamKind.OTHER.value


# Semconv bucket boundaries (gen-ai metrics spec).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
# Time to first chunk/token: finer at the low end, where users feel it.
TTFT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
)
# The gateway's own overhead is sub-millisecond to a few milliseconds.
OVERHEAD_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)

GEN_AI_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
)

TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per upstream operation (semconv gen_ai.client.token.usage).",
    [*GEN_AI_LABELS, "gen_ai_token_type"],
    buckets=TOKEN_BUCKETS,
)
OPERATION_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of each upstream OCI chat call, until its last chunk (semconv).",
    [*GEN_AI_LABELS, "error_type"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_CHUNK = Histogram(
    "gen_ai_client_operation_time_to_first_chunk_seconds",
    "Time from sending the OCI request to its first streamed chunk (semconv).",
    GEN_AI_LABELS,
    buckets=TTFT_BUCKETS,
)
TOKENS = Counter(
    "gateway_tokens",
    "Tokens by model, as OCI reported them. type: input|output|reasoning|cache_read.",
    ["requested_model", "model", "oci_model", "key_id", "type"],
)
REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by route, gateway model and HTTP status class.",
    ["route", "model", "status_class", "key_id"],
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors",
    "Failed upstream attempts by closed error type.",
    ["model", "oci_model", "error_type"],
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries",
    "Upstream attempts retried (same endpoint or failover), by reason.",
    ["model", "error_type"],
)
UPSTREAM_FAILOVERS = Counter(
    "gateway_upstream_failovers",
    "Switches to the next OCI endpoint of a model before the first byte.",
    ["model"],
)
ACTIVE_STREAMS = Gauge(
    "gateway_active_streams",
    "Streaming responses currently open.",
    ["model"],
    multiprocess_mode="livesum",
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "End-to-end request duration as the gateway sees it (until the last byte).",
    ["route", "model"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gateway_time_to_first_token_seconds",
    "Time from request arrival to the first content event sent to the client.",
    ["model"],
    buckets=TTFT_BUCKETS,
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "The gateway's own time on a request: its duration minus the time spent waiting for OCI "
    "(headers, body, every streamed chunk, retry backoff) and for the client (request body, "
    "taking streamed bytes).",
    ["route"],
    buckets=OVERHEAD_BUCKETS,
)
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Requests refused by a per-key limit. limit: requests|tokens|concurrency.",
    ["key_id", "limit"],
)
CLIENT_ERRORS = Counter(
    "gateway_client_errors",
    "Requests refused before any upstream call, by Anthropic error type.",
    ["route", "error_type"],
)
SERVER_TOOL_CALLS = Counter(
    "gateway_server_tool_calls",
    "Server-tool calls the gateway ran for the model. tool: web_search|tool_search; backend: "
    "searxng|brave|tavily|none for web search, regex|bm25 for tool search; outcome: ok|empty|"
    "error code (unavailable, too_many_requests, max_uses_exceeded, invalid_tool_input, ...).",
    ["tool", "backend", "outcome"],
)
RATELIMIT_BACKEND_ERRORS = Counter(
    "gateway_ratelimit_backend_errors",
    "Failures of the shared limit store (Redis); the gateway fails open.",
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Config and keys file reloads. result: ok|error|restart_required.",
    ["file", "result"],
)
PARAM_DROPPED = Counter(
    "gateway_param_dropped",
    "Request parameters OCI refused for a model (400) that the gateway then dropped or renamed "
    "and retried without; later requests omit them up front for an hour. param: a closed set "
    "(app.oci.param_compat.PARAMS).",
    ["model", "param"],
)
MODEL_RETIREMENT_NOTICE = Gauge(
    "gateway_model_retirement_notice",
    "1 for a model whose OCI answers carry the model-retirement-info header (deprecated, "
    "retirement scheduled).",
    ["model", "oci_model"],
    multiprocess_mode="max",
)
MEDIA_FETCHES = Counter(
    "gateway_media_fetches",
    "Image and document url sources fetched for OCI (which takes base64 only). result: "
    "ok|refused|too_large|bad_type|timeout|error|disabled.",
    ["kind", "result"],
)
CIRCUIT_STATE = Gauge(
    "gateway_upstream_circuit_state",
    "Circuit breaker of each upstream target of a model, as requests last saw it: 0 closed, "
    "1 half-open (one probe let through), 2 open (skipped until the cooldown ends). target: "
    "the region or endpoint; the highest value over the workers.",
    ["model", "oci_model", "target"],
    multiprocess_mode="livemax",
)
CIRCUIT_TRANSITIONS = Counter(
    "gateway_upstream_circuit_transitions",
    "Circuit breaker state changes of upstream targets. to: open|half_open|closed.",
    ["oci_model", "target", "to"],
)
CONVERSATION_CACHE = Counter(
    "gateway_conversation_cache",
    "Request bodies of 32 KB or more, by whether they began with a conversation this worker "
    "kept decoded (hit: only the new messages were decoded) or not (miss).",
    ["result"],
)
CONVERSATION_CACHE_BYTES = Gauge(
    "gateway_conversation_cache_bytes",
    "What the kept conversations count against server.conversation_cache_mb, all workers.",
    multiprocess_mode="livesum",
)
SPEND = Counter(
    "gateway_spend_usd",
    "Spend in USD by gateway model, key (or signed-in user) and team: the tokens OCI reported "
    "(an estimate for a stream cut off before OCI's usage) at models.<name>.price. team: '-' "
    "for callers without a team.",
    ["model", "key_id", "team"],
)
BUDGET_USD = Gauge(
    "gateway_budget_usd",
    "Spend budget in USD of a key, user or team per UTC calendar window, as requests last saw "
    "it. scope: key|user|team; window: day|week|month.",
    ["scope", "name", "window"],
    multiprocess_mode="livemax",
)
SPEND_WINDOW_USD = Gauge(
    "gateway_spend_window_usd",
    "Spend in USD of a budgeted key, user or team in the current UTC window, as requests last "
    "saw it (shared through Redis when configured: every replica reports the same total).",
    ["scope", "name", "window"],
    multiprocess_mode="livemax",
)
BUDGET_REJECTED = Counter(
    "gateway_budget_rejected",
    "Requests refused (429, x-should-retry: false) because a spend budget was spent. scope: "
    "key|user|team; window: day|week|month.",
    ["scope", "window"],
)
SPEND_BACKEND_ERRORS = Counter(
    "gateway_spend_backend_errors",
    "Failures of the shared spend store (Redis); budgets then count this process only (fail-open).",
)


class _Noop:
    """Stands in for a metric when metrics are off: same calls, no work."""

    def labels(self, *args: object, **kwargs: object) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass


if os.environ.get("GATEWAY_METRICS", "1").lower() in ("0", "false", "off", "no"):
    _NOOP = _Noop()
    TOKEN_USAGE = OPERATION_DURATION = TIME_TO_FIRST_CHUNK = _NOOP  # type: ignore[assignment]
    TOKENS = REQUESTS = UPSTREAM_ERRORS = UPSTREAM_RETRIES = _NOOP  # type: ignore[assignment]
    UPSTREAM_FAILOVERS = ACTIVE_STREAMS = REQUEST_DURATION = _NOOP  # type: ignore[assignment]
    TIME_TO_FIRST_TOKEN = OVERHEAD = RATE_LIMITED = CLIENT_ERRORS = _NOOP  # type: ignore[assignment]
    RATELIMIT_BACKEND_ERRORS = CONFIG_RELOADS = _NOOP  # type: ignore[assignment]
    PARAM_DROPPED = MODEL_RETIREMENT_NOTICE = MEDIA_FETCHES = _NOOP  # type: ignore[assignment]
    CIRCUIT_STATE = CIRCUIT_TRANSITIONS = _NOOP  # type: ignore[assignment]
    SPEND = BUDGET_USD = SPEND_WINDOW_USD = BUDGET_REJECTED = _NOOP  # type: ignore[assignment]
    SPEND_BACKEND_ERRORS = SERVER_TOOL_CALLS = _NOOP  # type: ignore[assignment]
    CONVERSATION_CACHE = CONVERSATION_CACHE_BYTES = _NOOP  # type: ignore[assignment]


def metrics_payload() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``: this process, or all workers in multiprocess mode."""
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def status_class(status: int) -> str:
    return f"{status // 100}xx"
