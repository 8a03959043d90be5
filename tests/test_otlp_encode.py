"""app/observability/otlp.py: the lean OTLP encoder against the library's, and its exporter over
real HTTP. Spans are real SDK spans (TracerProvider + the SDK's in-memory exporter); the bytes are
decoded with opentelemetry-proto and must equal the message the library's ``encode_spans`` makes
for the same spans, for the gateway's own span shapes and for generated attribute values."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from app.observability import otlp

RESOURCE = Resource.create({"service.name": "gw", "team": "platform", "replicas": 3})


def _decode(data: bytes) -> ExportTraceServiceRequest:
    msg = ExportTraceServiceRequest()
    msg.ParseFromString(data)
    return msg


def _same(spans: Any) -> ExportTraceServiceRequest:
    lean = _decode(otlp.encode_spans(spans))
    assert lean == library_encode(spans)
    # encoding twice (the caches warm) gives the same message
    assert _decode(otlp.encode_spans(spans)) == lean
    return lean


@pytest.fixture()
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=RESOURCE, span_limits=SpanLimits(max_span_attributes=40))
    tp.add_span_processor(SimpleSpanProcessor(memory))
    yield tp, memory
    tp.shutdown()


def test_the_gateways_two_spans_encode_as_the_library_does(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The SERVER span (continued from a remote traceparent with tracestate) and its CLIENT
    ``chat`` children, one failed, as service/upstream.py and server_span.py make them."""
    tp, memory = provider
    server_tracer = tp.get_tracer("oci-anthropic-gateway.http")
    chat_tracer = tp.get_tracer("oci-anthropic-gateway", "1.2.3", schema_url="https://x/s")
    parent = propagate.extract({
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=a1,other=b2"})
    server = server_tracer.start_span("POST /v1/messages", context=parent, kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST",
                                                  "url.path": "/v1/messages",
                                                  "server.port": 8000,
                                                  "user_agent.original": "claude-cli/2.0 ü"})
    token = context.attach(trace.set_span_in_context(server, parent))
    for attempt, error in ((1, "server_error"), (2, None)):
        chat = chat_tracer.start_span("chat xai.grok-4", kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.max_tokens": 50,
            "gen_ai.request.temperature": 0.7, "gateway.attempt": attempt,
            "gateway.stream": True, "oci.circuit_state": "closed"})
        chat.set_attributes({"gen_ai.response.finish_reasons": ("stop",),
                             "gen_ai.usage.input_tokens": 12,
                             "gen_ai.response.time_to_first_chunk": 0.0123})
        if error:
            chat.set_attributes({"error.type": error})
            chat.set_status(Status(StatusCode.ERROR))
        chat.end()
    try:
        raise TimeoutError("upstream went quiet")
    except TimeoutError as exc:
        server.record_exception(exc)
        server.set_status(Status(StatusCode.ERROR, "TimeoutError"))
    context.detach(token)
    server.end()
    spans = memory.get_finished_spans()
    msg = _same(spans)
    assert len(msg.resource_spans) == 1 and len(msg.resource_spans[0].scope_spans) == 2
    names = [s.name for ss in msg.resource_spans[0].scope_spans for s in ss.spans]
    assert sorted(names) == ["POST /v1/messages", "chat xai.grok-4", "chat xai.grok-4"]


def test_links_limits_resources_and_scopes(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Links with attributes, dropped attribute counts, an int past int64 (the library logs and
    skips it), a second resource, a span without scope, an unset status with no name."""
    tp, memory = provider
    tracer = tp.get_tracer("t")
    first = tracer.start_span("first")
    first.end()
    link = Link(first.get_span_context(), {"why": "retry", "n": -5})
    limited = TracerProvider(resource=Resource.create({"service.name": "other"}),
                             span_limits=SpanLimits(max_span_attributes=2))
    limited.add_span_processor(SimpleSpanProcessor(memory))
    span = limited.get_tracer("lim").start_span("limited", links=[link], attributes={
        "a": 1, "b": 2, "c": 3})
    span.end()
    big = tracer.start_span("big", attributes={"huge": 2**70, "ok": "kept", "neg": -(2**63)})
    big.end()
    spans = list(memory.get_finished_spans())
    spans.append(ReadableSpan(name="", context=first.get_span_context(), resource=RESOURCE,
                              attributes={"x": "y"}, instrumentation_scope=None))
    spans.append(ReadableSpan(name="scoped", context=first.get_span_context(),
                              resource=RESOURCE,
                              instrumentation_scope=InstrumentationScope(
                                  "s", "0.1", "https://x/s", {"scope.attr": True})))
    msg = _same(spans)
    assert len(msg.resource_spans) == 2
    limited_span = msg.resource_spans[1].scope_spans[0].spans[0]
    assert limited_span.dropped_attributes_count == 1 and len(limited_span.links) == 1


_scalars = (st.text(max_size=40) | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False))
_values = _scalars | st.lists(st.text(max_size=10), max_size=4) | st.lists(
    st.integers(-(2**63), 2**63 - 1), max_size=4) | st.lists(st.floats(allow_nan=False),
                                                             max_size=4)


@settings(max_examples=150, deadline=None)
@given(attributes=st.dictionaries(st.text(min_size=1, max_size=20), _values, max_size=12),
       events=st.lists(st.dictionaries(st.text(min_size=1, max_size=8), _scalars, max_size=3),
                       max_size=2),
       kind=st.sampled_from(list(SpanKind)))
def test_generated_attributes_encode_as_the_library_does(
    attributes: dict[str, Any], events: list[dict[str, Any]], kind: SpanKind,
) -> None:
    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=RESOURCE)
    tp.add_span_processor(SimpleSpanProcessor(memory))
    span = tp.get_tracer("gen").start_span("generated", kind=kind, attributes=attributes)
    for i, ev in enumerate(events):
        span.add_event(f"e{i}", ev)
    span.end()
    _same(memory.get_finished_spans())


class _Receiver(ThreadingHTTPServer):
    bodies: list[bytes]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_lean_exporter_posts_what_the_library_would(
    provider: tuple[TracerProvider, InMemorySpanExporter], compression: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over real HTTP, with the library's own compression setting."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    tp, memory = provider
    tracer = tp.get_tracer("oci-anthropic-gateway")
    for i in range(3):
        tracer.start_span(f"chat m{i}", attributes={"gateway.attempt": i}).end()
    spans = memory.get_finished_spans()
    receiver = _Receiver(("127.0.0.1", 0), _Handler)
    receiver.bodies = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        exporter = otlp.LeanOTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{receiver.server_port}/v1/traces")
        # the private parts it uses are there in the pinned library (else: the library's way)
        assert exporter.lean()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert exporter.export(spans) is SpanExportResult.FAILURE  # as the library's, after
    finally:
        receiver.shutdown()
    assert len(receiver.bodies) == 1
    assert _decode(receiver.bodies[0]) == library_encode(spans)
