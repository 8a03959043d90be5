"""Anthropic SSE bytes -> the Anthropic Message they describe. Pure, no I/O.

Contract: :func:`fold_message` takes the complete SSE body of one answer as
:class:`~app.translate.stream.StreamTranslator` writes it (``message_start`` ... ``message_stop``)
and returns the Message object a non-streaming answer carries (anthropic-messages.md §3): the
``message_start`` message with every content block folded in (text and thinking deltas
concatenated, the thinking signature set, a tool's ``partial_json`` fragments parsed into its
``input`` when the block stops: a JSON object as is, another JSON value as ``{"value": v}``,
broken JSON as ``{"_raw_arguments": text}``), and ``stop_reason``, ``stop_sequence`` and
usage from ``message_delta``. It is what the Anthropic SDK's ``accumulate_event`` does on the
client side.

Why fold bytes rather than plug a second output into the translator: the translator then has
one output path, the one the streaming hot path needs (see :mod:`app.translate.stream`), and a
JSON answer is by construction the stream the gateway would have sent. A non-streaming answer
is fed as one chunk, so its stream is a dozen small events: folding costs a few microseconds
per answer, against ~0.7 ms for the request signature.
"""

from __future__ import annotations

from typing import Any

import orjson


def fold_message(body: bytes) -> dict[str, Any]:
    # frames are "event: <name>\ndata: <one line of JSON>\n\n" (JSON never holds a raw
    # newline): one parse of all the data lines as an array, not one per event
    events = orjson.loads(
        b"[" + b",".join(line[6:] for line in body.split(b"\n") if line[:6] == b"data: ") + b"]"
    )
    message: dict[str, Any] = {}
    blocks: list[dict[str, Any]] = []
    arguments: dict[int, list[str]] = {}
    for event in events:
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            block = blocks[event["index"]]
            dtype = delta["type"]
            if dtype == "text_delta":
                block["text"] += delta["text"]
            elif dtype == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif dtype == "signature_delta":
                block["signature"] = delta["signature"]
            elif dtype == "input_json_delta":
                arguments.setdefault(event["index"], []).append(delta["partial_json"])
        elif kind == "content_block_start":
            blocks.append(event["content_block"])
        elif kind == "content_block_stop":
            fragments = arguments.pop(event["index"], None)
            if fragments is not None:
                blocks[event["index"]]["input"] = tool_input("".join(fragments))
        elif kind == "message_start":
            message = event["message"]
            message["content"] = blocks
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"] = event["usage"]
    return message


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
