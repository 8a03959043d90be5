"""The gateway's own spans (app/observability/lean_span.py) export what the SDK's would.

What is pinned: the same span tree made by the SDK's tracer and by :class:`LeanTracer` -- a
SERVER span continuing a remote ``traceparent``, a CLIENT child with start attributes, later
attributes, an error status and a recorded exception -- gives the same OTLP message through the
library's encoder and through ours (ids and times aside); a lean span is the current span for
``traceparent`` injection; the provider's sampler decides (a dropped span is not recording and
never exported, a sampled parent's children follow it).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.observability import otlp
from app.observability.lean_span import LeanSpan, LeanTracer

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _provider(**kw: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}), **kw)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def _tree(tracer: Any) -> None:
    parent = propagate.extract({"traceparent": PARENT})
    server = tracer.start_span("POST /v1/messages", context=parent, kind=SpanKind.SERVER,
                               attributes={"http.request.method": "POST", "server.port": 8080})
    token = context.attach(trace.set_span_in_context(server, parent))
    try:
        headers: dict[str, str] = {}
        client = tracer.start_span("chat m", kind=SpanKind.CLIENT,
                                   attributes={"gen_ai.request.max_tokens": 10})
        propagate.inject(headers, context=trace.set_span_in_context(client))
        assert headers["traceparent"].split("-")[2] == f"{client.get_span_context().span_id:016x}"
        client.set_attributes({"gen_ai.usage.input_tokens": 7,
                               "gen_ai.response.finish_reasons": ["stop"]})
        client.set_status(Status(StatusCode.ERROR))
        client.end()
        server.set_attribute("http.response.status_code", 500)
        try:
            raise ValueError("boom")
        except ValueError as exc:
            server.record_exception(exc)
        server.set_status(Status(StatusCode.ERROR, "ValueError"))
        assert trace.get_current_span() is server
    finally:
        context.detach(token)
        server.end()


def _normalised(data: bytes) -> ExportTraceServiceRequest:
    msg = ExportTraceServiceRequest.FromString(data)
    for rs in msg.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                span.span_id = b""
                if span.parent_span_id != bytes.fromhex("b7ad6b7169203331"):
                    span.parent_span_id = b""
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    event.time_unix_nano = 0
                    for kv in event.attributes:
                        if kv.key == "exception.stacktrace":
                            kv.value.string_value = kv.value.string_value.count("\n") and "tb"
    return msg


def test_lean_spans_encode_as_the_sdks_do() -> None:
    sdk_provider, sdk_memory = _provider()
    _tree(sdk_provider.get_tracer("scope"))
    lean_provider, lean_memory = _provider()
    _tree(LeanTracer(lean_provider, "scope"))
    sdk_spans, lean_spans = sdk_memory.get_finished_spans(), lean_memory.get_finished_spans()
    assert [type(s) for s in lean_spans] == [LeanSpan, LeanSpan]
    assert [s.name for s in lean_spans] == [s.name for s in sdk_spans]
    expected = _normalised(encode_spans(sdk_spans).SerializeToString())
    assert _normalised(encode_spans(lean_spans).SerializeToString()) == expected
    assert _normalised(otlp.encode_spans(lean_spans)) == expected
    # the remote parent, then the child of the server span
    server, client = lean_spans[1], lean_spans[0]
    assert server.parent is not None and server.parent.is_remote
    assert client.parent == server.get_span_context()
    assert client.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)


def test_the_providers_sampler_decides() -> None:
    provider, memory = _provider(sampler=ParentBased(ALWAYS_OFF))
    tracer = LeanTracer(provider, "scope")
    dropped = tracer.start_span("root")
    assert not dropped.is_recording() and not dropped.get_span_context().trace_flags.sampled
    dropped.end()
    # a sampled remote parent: its children are sampled, as ParentBased says
    child = tracer.start_span("child", context=propagate.extract({"traceparent": PARENT}))
    assert child.is_recording()
    child.end()
    assert [s.name for s in memory.get_finished_spans()] == ["child"]


def test_an_ended_span_takes_nothing_more() -> None:
    provider, memory = _provider()
    span = LeanTracer(provider, "scope").start_span("s")
    span.end()
    span.set_attribute("late", 1)
    span.end()
    assert len(memory.get_finished_spans()) == 1
    assert "late" not in memory.get_finished_spans()[0].attributes


def test_none_values_are_left_out() -> None:
    """The API says attribute values are never null; the SDK would export an empty value."""
    provider, memory = _provider()
    span = LeanTracer(provider, "scope").start_span("s", attributes={"a": None, "b": 1})
    span.set_attribute("c", None)
    span.end()
    assert dict(memory.get_finished_spans()[0].attributes) == {"b": 1}
