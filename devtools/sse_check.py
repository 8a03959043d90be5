"""Parse an Anthropic SSE body and check the stream invariants (anthropic-messages.md §4).

Contract: :func:`check_stream` raises ``AssertionError`` naming the broken rule, otherwise it
returns the reconstructed message: ``content`` (blocks with text / thinking / parsed tool input),
``stop_reason``, ``stop_sequence``, ``usage`` and the raw event list. Rules: every event has an
``event:`` line equal to its ``type``; ``message_start`` first, with usage; blocks indexed 0..n
in order, each started once, deltas only while open and of the block's kind, stopped once;
``input_json_delta`` fragments concatenate to valid JSON; one ``message_delta`` with
``output_tokens`` after all blocks closed; exactly one ``message_stop`` and nothing after it
(or a single terminal ``error`` event instead of ``message_delta``/``message_stop``).
"""

from __future__ import annotations

import json
from typing import Any

_DELTA_FOR = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for raw in body.replace("\r\n", "\n").split("\n\n"):
        if not raw.strip():
            continue
        name = None
        data = None
        for line in raw.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                assert data is None, f"several data lines in one event: {raw!r}"
                data = json.loads(line[5:])
        assert name is not None, f"event without an event: line: {raw!r}"
        assert data is not None, f"event without data: {raw!r}"
        assert data.get("type") == name, f"event name {name!r} != data type {data.get('type')!r}"
        events.append((name, data))
    return events


def check_stream(body: str, *, allow_error: bool = False) -> dict[str, Any]:
    events = parse_sse(body)
    assert events, "empty stream"
    assert events[0][0] == "message_start", f"first event is {events[0][0]}"
    start = events[0][1]["message"]
    assert isinstance(start["usage"]["input_tokens"], int)
    assert start["content"] == [] and start["role"] == "assistant"
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_index: int | None = None
    stopped: set[int] = set()
    delta_seen = stop_seen = False
    result: dict[str, Any] = {"events": events, "error": None}
    for name, data in events[1:]:
        assert not stop_seen, f"{name} after message_stop"
        if name == "ping":
            continue
        if name == "error":
            assert allow_error, f"unexpected error event: {data}"
            result["error"] = data["error"]
            stop_seen = True
            continue
        if name == "content_block_start":
            assert open_index is None, f"block {data['index']} started while {open_index} open"
            assert data["index"] == len(blocks), f"block index {data['index']} out of order"
            block = dict(data["content_block"])
            if block["type"] == "tool_use":
                assert block["input"] == {} and block["id"] and block["name"]
                partial[data["index"]] = ""
            blocks.append(block)
            open_index = data["index"]
        elif name == "content_block_delta":
            assert open_index is not None and data["index"] == open_index, (
                f"delta for closed block {data['index']}"
            )
            block = blocks[open_index]
            delta = data["delta"]
            if delta["type"] == "signature_delta":
                assert block["type"] == "thinking"
                block["signature"] = delta["signature"]
                continue
            assert delta["type"] == _DELTA_FOR[block["type"]], f"{delta['type']} in {block}"
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            else:
                partial[open_index] += delta["partial_json"]
        elif name == "content_block_stop":
            assert open_index is not None and data["index"] == open_index, (
                f"stop for block {data['index']} not open"
            )
            assert data["index"] not in stopped
            stopped.add(data["index"])
            if blocks[open_index]["type"] == "tool_use":
                text = partial[open_index]
                blocks[open_index]["input"] = json.loads(text) if text else {}
                blocks[open_index]["partial_json"] = text
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta while a block is open"
            assert not delta_seen, "two message_delta events"
            delta_seen = True
            assert isinstance(data["usage"]["output_tokens"], int)
            result["stop_reason"] = data["delta"]["stop_reason"]
            result["stop_sequence"] = data["delta"].get("stop_sequence")
            result["usage"] = data["usage"]
        elif name == "message_stop":
            assert delta_seen, "message_stop without message_delta"
            stop_seen = True
        else:
            raise AssertionError(f"unknown event {name}")
    assert stop_seen, "stream did not end with message_stop or error"
    assert len(stopped) == len(blocks) or result["error"], "a block was never stopped"
    result["content"] = blocks
    result["text"] = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    result["message_start"] = start
    return result
