"""OpenTelemetry tracing: set up from the standard ``OTEL_*`` variables, off when unconfigured.

Contract:
- :func:`setup_tracing` installs an SDK tracer provider with a batch OTLP exporter (HTTP/protobuf
  or gRPC, per ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``) when an OTLP endpoint or
  ``OTEL_TRACES_EXPORTER`` is configured and ``OTEL_SDK_DISABLED`` is not true. HTTP/protobuf
  spans are encoded by app/observability/otlp.py (``GATEWAY_OTLP_ENCODER=library``: the
  library's own encoder, the switch back should ours ever be in doubt); those spans are
  app/observability/lean_span.py's (``library``: the SDK's); :func:`tracer` gives the tracer.
  Service name, resource attributes and sampler come from the SDK's own env handling. Returns
  whether tracing is on; when off, spans are the API's no-op spans and cost next to nothing.
- :func:`chat_span` starts the CLIENT span ``chat {model}`` around one OCI attempt with the
  GenAI semantic-convention attributes; :func:`end_chat_span` records the outcome (the service
  ends each span exactly once, in ``service.upstream.Exchange.end``). Prompt and
  completion text are recorded only through :func:`record_content`, which the service calls
  only when ``observability.record_content`` is true.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

_NAME = "oci-anthropic-gateway"
_TRACER: Any = trace.get_tracer(_NAME)
_enabled = False
_LEAN = False


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter.lower() == "none":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup_tracing(encoder: str = "lean") -> bool:
    """``encoder``: ``Settings.otlp_encoder`` (``GATEWAY_OTLP_ENCODER``), for OTLP/HTTP."""
    global _enabled, _TRACER
    if _enabled:
        return True
    if not tracing_configured():
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "oci-anthropic-gateway")}
    )
    provider = TracerProvider(resource=resource)
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower()
    exporter: Any
    protocol = ""
    if kind == "console":
        exporter = ConsoleSpanExporter()
    else:
        protocol = os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        elif encoder == "library":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        else:  # the library's exporter with our encoder: a fifth of its CPU (otlp.py)
            from app.observability.otlp import (  # type: ignore[assignment]
                LeanOTLPSpanExporter as OTLPSpanExporter,
            )
        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    global _LEAN
    # our spans where our encoder exports them (lean_span.py); else the SDK's tracer itself,
    # not the API's proxy that forwards every call to it
    _LEAN = (
        kind != "console"
        and protocol != "grpc"
        and encoder != "library"
        and hasattr(provider, "_active_span_processor")
    )
    _TRACER = tracer(_NAME)
    _enabled = True
    return True


def tracer(name: str) -> Any:
    """The tracer spans named ``name`` come from: a :class:`LeanTracer` of the installed
    provider when our encoder exports (the default), else the provider's own tracer."""
    provider = trace.get_tracer_provider()
    if _LEAN:
        from opentelemetry.sdk.trace import TracerProvider

        from app.observability.lean_span import LeanTracer

        if isinstance(provider, TracerProvider):
            return LeanTracer(provider, name)
    return provider.get_tracer(name)


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def chat_span(
    *,
    model: str,
    oci_model: str,
    requested: str,
    max_tokens: int,
    temperature: float | None,
    top_p: float | None,
    region: str,
    api_format: str,
    serving_mode: str,
    key_id: str,
    attempt: int,
    stream: bool,
    extra: dict[str, Any] | None = None,
) -> Span:
    """Start the attempt's CLIENT span; ``extra``: more attributes known at the start."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "oci.genai",
        "gen_ai.request.model": oci_model,
        "gen_ai.request.max_tokens": max_tokens,
        "gateway.model": model,
        "gateway.requested_model": requested,
        "gateway.client_key_id": key_id,
        "gateway.attempt": attempt,
        "gateway.stream": stream,
        "oci.region": region,
        "oci.api_format": api_format,
        "oci.serving_mode": serving_mode,
    }
    if temperature is not None:
        attrs["gen_ai.request.temperature"] = temperature
    if top_p is not None:
        attrs["gen_ai.request.top_p"] = top_p
    if extra:
        attrs.update(extra)
    return _TRACER.start_span(f"chat {oci_model}", kind=SpanKind.CLIENT, attributes=attrs)


def record_content(span: Span, key: str, value: str) -> None:
    """Opt-in only (``observability.record_content``): prompt or completion text on a span."""
    if span.is_recording():
        span.set_attribute(key, value)


def end_chat_span(
    span: Span,
    *,
    opc_request_id: str | None = None,
    response_id: str | None = None,
    finish_reason: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    time_to_first_chunk: float | None = None,
    error_type: str | None = None,
) -> None:
    """Record the attempt's outcome and end the span. ``error_type`` (a closed
    :class:`~app.errors.UpstreamKind` value) marks it failed."""
    if not span.is_recording():
        span.end()
        return
    # one set_attributes: the SDK takes the span's lock and cleans values once per call
    # (seven set_attribute calls cost ~1 µs more per span in a tight loop)
    attrs: dict[str, Any] = {}
    if opc_request_id:
        attrs["oci.opc_request_id"] = opc_request_id
    if response_id:
        attrs["gen_ai.response.id"] = response_id
    if finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (finish_reason,)
    if input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    if time_to_first_chunk is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = time_to_first_chunk
    if error_type:
        attrs["error.type"] = error_type
        span.set_status(Status(StatusCode.ERROR))
    if attrs:
        span.set_attributes(attrs)
    span.end()
