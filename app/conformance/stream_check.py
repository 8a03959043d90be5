"""Check an Anthropic answer's shape: the SSE stream invariants and the JSON message shape.

Contract: :func:`check_stream` raises ``AssertionError`` naming the broken rule, otherwise it
returns the reconstructed message: ``content`` (blocks with text / thinking / parsed tool input),
``stop_reason``, ``stop_sequence``, ``usage`` and the raw event list. Rules
(anthropic-messages.md §4): every event has an ``event:`` line equal to its ``type``;
``message_start`` first, with usage; blocks indexed 0..n in order, each started once, deltas
only while open and of the block's kind, stopped once; ``input_json_delta`` fragments
concatenate to valid JSON; one ``message_delta`` with ``output_tokens`` after all blocks
closed; exactly one ``message_stop`` and nothing after it (or a single terminal ``error`` event
instead of ``message_delta``/``message_stop``). Web search blocks: a ``server_tool_use`` (id
``srvtoolu_…``) streams like ``tool_use``; a ``web_search_tool_result`` arrives whole in its
``content_block_start``, answers an earlier ``server_tool_use`` and holds results or an error.
:func:`check_message` does the same for a JSON (non-streaming) answer and returns it in the
same shape.

It lives in ``app`` (not only in the test tree) because ``python -m app conformance`` checks
live answers with it in the shipped image; ``devtools.sse_check`` re-exports it for the tests.
The checks raise explicitly rather than with ``assert`` so they still run under ``python -O``.
"""

from __future__ import annotations

import json
from typing import Any

_DELTA_FOR = {
    "text": "text_delta",
    "thinking": "thinking_delta",
    "tool_use": "input_json_delta",
    "server_tool_use": "input_json_delta",
}
_BLOCK_TYPES = frozenset(
    {
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
        "web_search_tool_result",
        "tool_search_tool_result",
    }
)
_TOOL_BLOCKS = ("tool_use", "server_tool_use")


def _check_tool_search(block: dict[str, Any], server_ids: set[str], where: str) -> None:
    """A ``tool_search_tool_result`` answers an earlier ``server_tool_use`` with
    ``tool_references`` or a ``tool_search_tool_result_error`` (SDK 2.15's shapes)."""
    _need(block.get("tool_use_id") in server_ids, f"{where} answers no earlier server_tool_use")
    content = block.get("content") or {}
    if content.get("type") == "tool_search_tool_result_error":
        _need(bool(content.get("error_code")), f"{where} error without error_code")
        return
    _need(content.get("type") == "tool_search_tool_search_result", f"{where} bad {content}")
    for ref in content.get("tool_references") or ():
        _need(ref.get("type") == "tool_reference" and ref.get("tool_name"), f"{where} bad {ref}")


def _check_search_result(block: dict[str, Any], server_ids: set[str], where: str) -> None:
    """A ``web_search_tool_result`` answers an earlier ``server_tool_use`` and holds a list of
    ``web_search_result`` items or one ``web_search_tool_result_error``."""
    _need(block.get("tool_use_id") in server_ids, f"{where} answers no earlier server_tool_use")
    content = block.get("content")
    if isinstance(content, dict):
        _need(
            content.get("type") == "web_search_tool_result_error" and content.get("error_code"),
            f"{where} bad error content {content}",
        )
        return
    _need(isinstance(content, list), f"{where} content is neither a list nor an error")
    for item in content or ():
        _need(
            item.get("type") == "web_search_result" and item.get("url") and "title" in item,
            f"{where} bad result {item}",
        )
        _need(isinstance(item.get("encrypted_content"), str), f"{where} no encrypted_content")


STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
)


def _need(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


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
                _need(data is None, f"several data lines in one event: {raw!r}")
                data = json.loads(line[5:])
        _need(name is not None, f"event without an event: line: {raw!r}")
        _need(data is not None, f"event without data: {raw!r}")
        assert name is not None and data is not None  # for the type checker
        _need(data.get("type") == name, f"event name {name!r} != data type {data.get('type')!r}")
        events.append((name, data))
    return events


def check_stream(body: str, *, allow_error: bool = False) -> dict[str, Any]:
    events = parse_sse(body)
    _need(events, "empty stream")
    _need(events[0][0] == "message_start", f"first event is {events[0][0]}")
    start = events[0][1]["message"]
    _need(isinstance(start["usage"]["input_tokens"], int), "message_start without input_tokens")
    _need(start["content"] == [] and start["role"] == "assistant", "bad message_start")
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_index: int | None = None
    stopped: set[int] = set()
    delta_seen = stop_seen = False
    server_ids: set[str] = set()
    result: dict[str, Any] = {"events": events, "error": None}
    for name, data in events[1:]:
        _need(not stop_seen, f"{name} after message_stop")
        if name == "ping":
            continue
        if name == "error":
            _need(allow_error, f"unexpected error event: {data}")
            result["error"] = data["error"]
            stop_seen = True
            continue
        if name == "content_block_start":
            _need(open_index is None, f"block {data['index']} started while {open_index} open")
            _need(data["index"] == len(blocks), f"block index {data['index']} out of order")
            block = dict(data["content_block"])
            _need(block["type"] in _BLOCK_TYPES, f"unknown block type {block['type']!r}")
            if block["type"] in _TOOL_BLOCKS:
                _need(block["input"] == {} and block["id"] and block["name"], f"bad {block}")
                partial[data["index"]] = ""
            if block["type"] == "server_tool_use":
                _need(block["id"].startswith("srvtoolu_"), f"server_tool_use id {block['id']}")
                server_ids.add(block["id"])
            elif block["type"] == "web_search_tool_result":  # complete at start, no deltas
                _check_search_result(block, server_ids, f"block {data['index']}")
            elif block["type"] == "tool_search_tool_result":
                _check_tool_search(block, server_ids, f"block {data['index']}")
            blocks.append(block)
            open_index = data["index"]
        elif name == "content_block_delta":
            _need(
                open_index is not None and data["index"] == open_index,
                f"delta for closed block {data['index']}",
            )
            assert open_index is not None
            block = blocks[open_index]
            delta = data["delta"]
            if delta["type"] == "signature_delta":
                _need(block["type"] == "thinking", f"signature_delta in {block['type']}")
                block["signature"] = delta["signature"]
                continue
            _need(delta["type"] == _DELTA_FOR.get(block["type"]), f"{delta['type']} in {block}")
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            else:
                partial[open_index] += delta["partial_json"]
        elif name == "content_block_stop":
            _need(
                open_index is not None and data["index"] == open_index,
                f"stop for block {data['index']} not open",
            )
            assert open_index is not None
            _need(data["index"] not in stopped, f"block {data['index']} stopped twice")
            stopped.add(data["index"])
            if blocks[open_index]["type"] in _TOOL_BLOCKS:
                text = partial[open_index]
                blocks[open_index]["input"] = json.loads(text) if text else {}
                blocks[open_index]["partial_json"] = text
            open_index = None
        elif name == "message_delta":
            _need(open_index is None, "message_delta while a block is open")
            _need(not delta_seen, "two message_delta events")
            delta_seen = True
            _need(isinstance(data["usage"]["output_tokens"], int), "no output_tokens")
            result["stop_reason"] = data["delta"]["stop_reason"]
            result["stop_sequence"] = data["delta"].get("stop_sequence")
            result["usage"] = data["usage"]
        elif name == "message_stop":
            _need(delta_seen, "message_stop without message_delta")
            stop_seen = True
        else:
            raise AssertionError(f"unknown event {name}")
    _need(stop_seen, "stream did not end with message_stop or error")
    _need(len(stopped) == len(blocks) or result["error"], "a block was never stopped")
    result["content"] = blocks
    result["text"] = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    result["message_start"] = start
    return result


def check_message(message: Any) -> dict[str, Any]:
    """A JSON answer of ``POST /v1/messages``; returned with ``text`` added."""
    _need(isinstance(message, dict), "the answer is not a JSON object")
    _need(message.get("type") == "message", f"type is {message.get('type')!r}")
    _need(message.get("role") == "assistant", f"role is {message.get('role')!r}")
    _need(str(message.get("id", "")).startswith("msg_"), "id does not start with msg_")
    content = message.get("content")
    _need(isinstance(content, list), "content is not a list")
    server_ids: set[str] = set()
    for i, block in enumerate(content):
        _need(block.get("type") in _BLOCK_TYPES, f"content[{i}] has type {block.get('type')!r}")
        if block["type"] == "server_tool_use":
            server_ids.add(block.get("id", ""))
        elif block["type"] == "web_search_tool_result":
            _check_search_result(block, server_ids, f"content[{i}]")
        elif block["type"] == "tool_search_tool_result":
            _check_tool_search(block, server_ids, f"content[{i}]")
        if block["type"] in _TOOL_BLOCKS:
            _need(block.get("id") and block.get("name"), f"content[{i}] tool_use without id/name")
            _need(isinstance(block.get("input"), dict), f"content[{i}] input is not an object")
    _need(message.get("stop_reason") in STOP_REASONS, f"stop_reason {message.get('stop_reason')}")
    usage = message.get("usage") or {}
    for key in ("input_tokens", "output_tokens"):
        _need(isinstance(usage.get(key), int), f"usage.{key} is not an integer")
    text = "".join(b.get("text", "") for b in content if b["type"] == "text")
    return {**message, "text": text}
