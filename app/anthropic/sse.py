"""Server-sent-event framing for Anthropic streams.

Contract: :func:`event` returns the bytes of one event, ``event: <type>`` then one ``data:`` line
of compact JSON whose ``type`` equals the event name, then a blank line (anthropic-messages.md
§4.1: both clients drop events without the ``event:`` line). The constant pieces of the hottest
events are pre-encoded so a text delta costs one ``orjson.dumps`` of the text.
"""

from __future__ import annotations

from typing import Any

import orjson

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _prefix(index: int, delta_type: str, field: str) -> bytes:
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":{"type":"'
        + delta_type.encode()
        + b'","'
        + field.encode()
        + b'":'
    )


_SUFFIX = b"}}\n\n"
_PREFIX_CACHE: dict[tuple[int, str, str], bytes] = {}


def delta(index: int, delta_type: str, field: str, value: str) -> bytes:
    """``content_block_delta`` with a single string field, e.g. a ``text_delta``."""
    key = (index, delta_type, field)
    prefix = _PREFIX_CACHE.get(key)
    if prefix is None:
        prefix = _prefix(index, delta_type, field)
        if len(_PREFIX_CACHE) < 4096:
            _PREFIX_CACHE[key] = prefix
    return prefix + orjson.dumps(value) + _SUFFIX


def block_stop(index: int) -> bytes:
    return (
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
        + str(index).encode()
        + b"}\n\n"
    )
