"""Where the answer state machine writes its Anthropic events: SSE bytes or a Message dict.

Contract: a :class:`Sink` receives the events of one Anthropic message in stream order, in
three calls shaped like :mod:`app.anthropic.sse` (``event(name, payload)``, ``delta(index,
delta_type, field, value)`` for single-string ``content_block_delta`` events, ``block_stop``)
plus two constant frames (``ping``, ``message_stop``), and returns the bytes to send for each.

- :data:`SSE` (:class:`SseSink`) is the wire: it returns the pre-encoded frames of
  :mod:`app.anthropic.sse` unchanged, so the streaming hot path costs what it did before sinks.
- :class:`MessageSink` returns ``b""`` and folds the same events into the Anthropic Message
  object of a non-streaming answer (what the Anthropic SDK's ``accumulate_event`` does on the
  client side): text and thinking deltas concatenated, the signature set, a tool's
  ``partial_json`` fragments parsed into ``input`` when its block stops, ``stop_reason``,
  ``stop_sequence`` and usage from ``message_delta``.

Both see exactly the same events, so a JSON answer and a stream of the same OCI answer carry
the same blocks, stop reason and usage.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from app.anthropic import sse


class Sink(Protocol):
    ping: bytes
    message_stop: bytes

    def event(self, name: str, payload: dict[str, Any]) -> bytes: ...

    def delta(self, index: int, delta_type: str, field: str, value: str) -> bytes: ...

    def block_stop(self, index: int) -> bytes: ...


class SseSink:
    """The Anthropic SSE wire. Stateless: one instance (:data:`SSE`) serves every stream."""

    __slots__ = ()
    ping = sse.PING
    message_stop = sse.MESSAGE_STOP
    # the encoders themselves, not wrappers: no extra call frame per delta
    event = staticmethod(sse.event)
    delta = staticmethod(sse.delta)
    block_stop = staticmethod(sse.block_stop)


SSE = SseSink()


class MessageSink:
    """Folds one answer's events into its Anthropic Message dict (:attr:`message`)."""

    __slots__ = ("_json", "message")
    ping = b""
    message_stop = b""

    def __init__(self) -> None:
        #: the Message, from ``message_start`` on (None before)
        self.message: dict[str, Any] | None = None
        self._json: dict[int, list[str]] = {}

    def event(self, name: str, payload: dict[str, Any]) -> bytes:
        if name == "message_start":
            self.message = payload["message"]
        elif self.message is not None:
            if name == "content_block_start":
                self.message["content"].append(payload["content_block"])
            elif name == "message_delta":
                self.message.update(payload["delta"])
                self.message["usage"] = payload["usage"]
        return b""

    def delta(self, index: int, delta_type: str, field: str, value: str) -> bytes:
        if delta_type == "input_json_delta":
            self._json.setdefault(index, []).append(value)
        elif self.message is not None:
            block = self.message["content"][index]
            if delta_type == "signature_delta":
                block[field] = value
            else:
                block[field] += value
        return b""

    def block_stop(self, index: int) -> bytes:
        fragments = self._json.pop(index, None)
        if fragments is not None and self.message is not None:
            self.message["content"][index]["input"] = tool_input("".join(fragments))
        return b""


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments text as the ``input`` object of a ``tool_use`` block."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        # a model that emitted broken JSON: hand the raw text to the client rather than fail
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}
