"""Spans without the SDK's per-span machinery, exported by the SDK's own processor.

Contract: :class:`LeanTracer` ``(provider, name)`` has the API tracer's ``start_span(name,
context=None, kind=INTERNAL, attributes=None)``. It draws ids from the provider's id generator,
asks the provider's sampler (``OTEL_TRACES_SAMPLER`` honoured; a dropped span is the API's
``NonRecordingSpan`` carrying its context, as the SDK does) and parents the span on the context's
current span. A :class:`LeanSpan` is an API ``Span`` (context, ``traceparent`` injection and the
log's trace id work unchanged) and, once ended, a ReadableSpan-shaped record handed to the
provider's span processor: the SDK's batch processor, our encoder (otlp.py) and the library's
encoders read the same fields (name, context, parent, kind, times, attributes, events, status,
resource, scope; no links).

Why by hand: the SDK's span took 32 µs to start and end with nothing set (4 lock allocations,
links and attribute containers, a ReadableSpan copy at the end), 75 µs for the gateway's two
spans per request (docs/design.md, "Cheap tracing"). These spans are made and ended on the event
loop's thread only, so they take no lock, and their attributes come from this code: values are
not cleaned (``None`` is dropped), up to the SDK's default limit of 128 per span.
``GATEWAY_OTLP_ENCODER=library`` goes back to the SDK's tracer with the library's encoder.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

_MAX_ATTRIBUTES = 128  # the SDK's default OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT
_UNSET = Status(StatusCode.UNSET)


class LeanSpan(trace.Span):
    __slots__ = (
        "_processor",
        "attributes",
        "context",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    links: tuple[Any, ...] = ()
    dropped_links = 0
    dropped_events = 0

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        tracer: LeanTracer,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.events: list[Event] = []
        self.status = _UNSET
        self.resource = tracer.resource
        self.instrumentation_scope = tracer.scope
        self._processor = tracer.processor
        self.start_time = time.time_ns()
        self.end_time: int | None = None

    @property
    def dropped_attributes(self) -> int:
        return 0

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None and self.end_time is None:
            attrs = self.attributes
            if key in attrs or len(attrs) < _MAX_ATTRIBUTES:
                attrs[key] = tuple(value) if isinstance(value, list) else value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> None:
        if self.end_time is None:
            self.events.append(Event(name, dict(attributes or {}), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        pass  # the gateway makes no links

    def update_name(self, name: str) -> None:
        self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # OK is final (the API's rule)
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # the attributes the SDK records (exception semantic conventions)
        attrs: dict[str, Any] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        self._processor.on_end(self)  # type: ignore[arg-type]


class LeanTracer:
    def __init__(self, provider: TracerProvider, name: str) -> None:
        self.sampler = provider.sampler
        self.ids = provider.id_generator
        self.resource = provider.resource
        # the provider's processor (all processors added): private in the SDK, and its only
        # way to reach them; tracing.py falls back to the SDK's tracer when it is missing
        self.processor = provider._active_span_processor
        self.scope = InstrumentationScope(name)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Any] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        current = trace.get_current_span(context).get_span_context()
        parent = current if current.is_valid else None
        trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        span_context = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(
                TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT
            ),
            trace_state=result.trace_state,
        )
        if not result.decision.is_recording():
            return NonRecordingSpan(span_context)
        attrs = {k: v for k, v in (result.attributes or attributes or {}).items() if v is not None}
        span = LeanSpan(name, span_context, parent, kind, attrs, self)
        if start_time:
            span.start_time = start_time
        return span
