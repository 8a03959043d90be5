"""OTLP/HTTP protobuf span export with a cheap encoder: the library's transport, our bytes.

Contract: :func:`encode_spans` turns finished SDK spans into the serialized bytes of one
``ExportTraceServiceRequest`` that decodes to a message equal to the one the library's
``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`` builds for the same
spans (same grouping by resource and instrumentation scope, in first-seen order; same fields,
flags, status, events, links, attribute types; an attribute the library cannot encode is
skipped and logged, as there). :class:`LeanOTLPSpanExporter` is the library's
``OTLPSpanExporter`` (endpoint, headers, timeout, compression, TLS, retries all from its own
``OTEL_EXPORTER_OTLP_*`` handling) whose ``export`` sends these bytes instead of encoding
through protobuf messages. If anything in a batch is not what the encoder knows, that batch
goes the library's way.

Why: the library builds a protobuf message object per span, per attribute and per value from
Python (upb 7.36: ~50 µs of CPU per span of ours, 15-20 attributes), on the worker's own core
in the batch processor's thread. That alone was half of tracing's cost at full sampling. Here
attribute key/value pairs, resources and scopes, which repeat across spans, are encoded once
and reused, and the rest is a few ``bytes`` joins (~4-6 µs per span; docs/design.md "Cheap
tracing"). Tests decode the bytes with opentelemetry-proto and compare them to the library's
message (tests/test_otlp_encode.py) and through the real gateway and an OTLP receiver.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as _library_encode,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

_logger = logging.getLogger(__name__)

_pack_d = struct.Struct("<d").pack
_pack_q = struct.Struct("<Q").pack
_pack_times = struct.Struct("<BQBQ").pack  # start (field 7) and end (field 8), fixed64 each
_pack_flags = struct.Struct("<I").pack
_SMALL = [bytes((i,)) for i in range(128)]
_INT64 = 1 << 63
_FLAGS = {False: b"\x85\x01" + _pack_flags(0x100), True: b"\x85\x01" + _pack_flags(0x300)}
_KINDS = [b"\x30" + _SMALL[k + 1] for k in range(5)]
_LINK_FLAGS = {False: b"\x35" + _pack_flags(0x100), True: b"\x35" + _pack_flags(0x300)}
#: field tag -> attribute (key, type, value) -> the tagged KeyValue field. Bounded: high
#: cardinality values (ids, token counts) come and go; a full cache is replaced, not grown.
_KV: dict[bytes, dict[tuple[str, type, Any], bytes]] = {}
_KV_MAX = 4096
_NAMES: dict[str, bytes] = {}  # span name -> field 5 (names are few: routes and models)
_NAMES_MAX = 1024
_RESOURCES: dict[int, tuple[Any, bytes]] = {}  # id -> (the object, Resource field)
_SCOPES: dict[int, tuple[Any, bytes]] = {}  # id -> (the object, InstrumentationScope field)


class Unencodable(Exception):
    """A value the library's encoder would reject too (it logs and skips the attribute)."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _any_value(value: Any) -> bytes:
    """The AnyValue message (unprefixed), as ``_encode_value`` in the library."""
    if value is None:
        return b""
    if value is True:
        return b"\x10\x01"
    if value is False:
        return b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, bool):  # a bool subclass
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise Unencodable(f"int out of range: {value}")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _pack_d(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _kv(str(k), v)) for k, v in value.items()))
    raise Unencodable(f"Invalid type {type(value)} of value {value}")


def _kv(key: str, value: Any) -> bytes:
    """The KeyValue message (unprefixed); an empty key is proto3's default, not sent."""
    body = _field(b"\x12", _any_value(value))
    return _field(b"\x0a", key.encode("utf-8")) + body if key else body


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """One ``tag``-field per attribute, each a KeyValue; cached for scalar values."""
    out: list[bytes] = []
    if not attributes:
        return out
    cache = _KV.get(tag)
    if cache is None or len(cache) >= _KV_MAX:
        cache = _KV[tag] = {}
    get = cache.get
    for key in attributes:  # not .items(): the Mapping mixin's generator costs ~30% here
        value = attributes[key]
        cls = value.__class__
        if cls is str or cls is int or cls is bool or cls is float:
            ck = (key, cls, value)  # the class too: True == 1 == 1.0
            kv = get(ck)
            if kv is None:
                try:
                    kv = cache[ck] = _field(tag, _kv(key, value))
                except Unencodable as err:
                    _logger.error("Failed to encode key %s: %s", key, err)
                    continue
        else:
            try:
                kv = _field(tag, _kv(key, value))
            except Unencodable as err:
                _logger.error("Failed to encode key %s: %s", key, err)
                continue
        out.append(kv)
    return out


def _resource(resource: Any) -> bytes:
    hit = _RESOURCES.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    encoded = _field(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))
    _RESOURCES[id(resource)] = (resource, encoded)  # a provider has one; kept alive with it
    return encoded


def _scope(scope: Any) -> bytes:
    hit = _SCOPES.get(id(scope))
    if hit is not None and hit[0] is scope:
        return hit[1]
    if scope is None:
        encoded = b"\x0a\x00"
    else:
        parts = [_field(b"\x0a", scope.name.encode("utf-8"))] if scope.name else []
        if scope.version:
            parts.append(_field(b"\x12", scope.version.encode("utf-8")))
        parts += _attributes(b"\x1a", scope.attributes)
        encoded = _field(b"\x0a", b"".join(parts))
    if len(_SCOPES) > 256:  # tracers are made once per module; a leak guard only
        _SCOPES.clear()
    _SCOPES[id(scope)] = (scope, encoded)
    return encoded


def _trace_state(state: Any) -> bytes:
    if not state:
        return b""
    text = ",".join(f"{key}={value}" for key, value in state.items())
    return _field(b"\x1a", text.encode("utf-8")) if text else b""


def _span(span: ReadableSpan) -> bytes:
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    parts = [
        b"\x0a\x10",
        ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        ctx.span_id.to_bytes(8, "big"),
    ]
    if ctx.trace_state:
        parts.append(_trace_state(ctx.trace_state))
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    name = _NAMES.get(span.name)
    if name is None:
        name = _field(b"\x2a", span.name.encode("utf-8")) if span.name else b""
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[span.name] = name
    parts.append(name)
    # SpanKind INTERNAL..CONSUMER are 0..4 in the API, 1..5 in OTLP (``_value_``: the enum's
    # plain attribute; ``.value`` is a descriptor call, measurable at this rate)
    parts.append(_KINDS[span.kind._value_])
    parts.append(_pack_times(0x39, span.start_time or 0, 0x41, span.end_time or 0))
    parts += _attributes(b"\x4a", span.attributes)
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        ev = [b"\x09" + _pack_q(event.timestamp or 0)]
        if event.name:
            ev.append(_field(b"\x12", event.name.encode("utf-8")))
        ev += _attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            ev.append(b"\x20" + _varint(event.dropped_attributes))
        parts.append(_field(b"\x5a", b"".join(ev)))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        lk = [
            b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + link.context.span_id.to_bytes(8, "big"),
        ]
        lk += _attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            lk.append(b"\x28" + _varint(link.dropped_attributes))
        lk.append(_LINK_FLAGS[bool(link.context.is_remote)])
        parts.append(_field(b"\x6a", b"".join(lk)))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    code = status.status_code._value_
    if code == 0 and not status.description:
        parts.append(b"\x7a\x00")  # the library always sets a Status, UNSET included
    else:
        st = _field(b"\x12", status.description.encode("utf-8")) if status.description else b""
        parts.append(_field(b"\x7a", st + (b"\x18" + _SMALL[code] if code else b"")))
    parts.append(_FLAGS[bool(parent is not None and parent.is_remote)])
    return _field(b"\x12", b"".join(parts))  # ScopeSpans.spans (field 2)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for ``spans``; see the module docstring."""
    # resource -> scope -> encoded spans, in first-seen order as the library groups them
    groups: list[tuple[Any, dict[Any, list[bytes]]]] = []
    current: Any = None
    scopes: dict[Any, list[bytes]] = {}
    for span in spans:
        resource = span.resource
        if resource is not current:
            for res, sc in groups:
                if res is resource or res == resource:
                    scopes = sc
                    break
            else:
                scopes = {}
                groups.append((resource, scopes))
            current = resource
        scope = span.instrumentation_scope or None
        encoded = _span(span)
        bucket = scopes.get(scope)
        if bucket is None:
            scopes[scope] = [encoded]
        else:
            bucket.append(encoded)
    out: list[bytes] = []
    for resource, sc in groups:
        body = [_resource(resource)]
        for scope, encoded_spans in sc.items():
            scope_spans = [_scope(scope), *encoded_spans]
            if scope is not None and scope.schema_url:
                scope_spans.append(_field(b"\x1a", scope.schema_url.encode("utf-8")))
            body.append(_field(b"\x12", b"".join(scope_spans)))
        if resource.schema_url:
            body.append(_field(b"\x1a", resource.schema_url.encode("utf-8")))
        out.append(_field(b"\x0a", b"".join(body)))
    return b"".join(out)


class LeanOTLPSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` whose ``export`` is the library's, line for line, but for the
    encoding: :func:`encode_spans` instead of protobuf messages (and the library's encoder for
    a batch ours fails on). It uses the exporter's private parts (``_client``: compression,
    retries, backoff, timeouts; ``_metrics``, ``_max_request_size``, ``_shutdown``) of the
    pinned opentelemetry-exporter-otlp-proto-http 1.45 (constraints.txt); should an upgrade
    rename them, the library's own ``export`` runs unchanged (and tests/test_otlp_encode.py
    says so)."""

    def lean(self) -> bool:
        return all(hasattr(self, a) for a in _PRIVATE)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self.lean():
            return super().export(spans)
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = encode_spans(spans)
            except Exception:  # an SDK change the encoder does not know: the library's way
                _logger.warning("lean OTLP encoding failed; library encoder used", exc_info=True)
                try:
                    data = _library_encode(spans).SerializePartialToString()
                except Exception as error:
                    _logger.error("Failed to encode span batch: %s", error)
                    result.error = error
                    return SpanExportResult.FAILURE
            if 0 < self._max_request_size < len(data):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds "
                    "max_request_size %d bytes.",
                    len(data),
                    self._max_request_size,
                )
                result.error = ValueError("span batch exceeds max_request_size")
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {"http.response.status_code": sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


_PRIVATE = ("_client", "_metrics", "_max_request_size", "_shutdown")
