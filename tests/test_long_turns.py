"""The long-turn fast paths count, accept and refuse exactly as before.

What is pinned: ``raw_estimate``'s inline paths (TEXT parts, GENERIC tool calls) give the numbers
of the generic walk they shortcut (the walk is kept here as the oracle) on odd shapes and,
exactly, on every test model's translation of a grown Claude Code turn; that count is at most a
few percent more than the walk's over the decoded JSON (texts kept as the client's bytes count
escapes as written); unknown fields on blocks are still accepted (the block
models no longer keep them); the tool-input depth check, now one walk over all of a turn's
inputs, still refuses the deepest input and accepts one at the limit, over HTTP.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.anthropic.models import JsonText, MessagesRequest, raw_text
from app.catalog import Catalog
from app.config import ServerLimits, parse_config
from app.service.parse import parse
from app.translate.to_oci import to_oci
from app.translate.tokens import (
    _IMAGE_TYPES,
    _TEXT_KEYS,
    MESSAGE_OVERHEAD,
    image_estimate,
    raw_estimate,
)
from app.translate.wire import encode
from bench.long import grow
from devtools.config import TEST_MODELS
from tests.harness import GatewayServer


def walk_estimate(body: dict[str, Any]) -> int:
    """The generic walk ``raw_estimate`` had before its inline path (the oracle)."""
    chat = body.get("chatRequest") or {}
    chars = messages = image_tokens = 0
    stack: list[Any] = [chat.get("messages"), chat.get("chatHistory"), chat.get("toolResults")]
    for key in ("message", "preambleOverride"):
        value = chat.get(key)
        if isinstance(value, str):
            chars += len(value)
            messages += 1
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if "role" in node:
                messages += 1
            if node.get("type") in _IMAGE_TYPES:
                image_tokens += image_estimate(node.get("imageUrl"))
                continue
            for k, v in node.items():
                if isinstance(v, str):
                    if k in _TEXT_KEYS:
                        chars += len(v)
                elif isinstance(v, JsonText):  # a client's text kept encoded: as written
                    if k in _TEXT_KEYS:
                        chars += v.chars
                elif isinstance(v, (dict, list)):
                    if k == "parameters":
                        chars += len(orjson.dumps(v))
                    else:
                        stack.append(v)
    tools = chat.get("tools")
    if tools:
        chars += len(orjson.dumps(tools))
    return (chars + 3) // 4 + messages * MESSAGE_OVERHEAD + image_tokens


@pytest.mark.parametrize("model", sorted(TEST_MODELS))
def test_estimate_of_a_grown_turn_equals_the_walk(model: str) -> None:
    config = parse_config(
        {"oci": {"region": "us-chicago-1", "compartment_id": "ocid1.compartment.oc1..t",
                 "auth": "api_key"}, "models": TEST_MODELS}
    )
    body = grow(256 * 1024)
    body["model"] = model
    req = parse(orjson.dumps(body), MessagesRequest, ServerLimits())
    oci = to_oci(req, Catalog(config).resolve(model), "ocid1.compartment.oc1..t")
    # the walk reads the body as OCI does (decoded JSON). The texts kept as the client's bytes
    # (app/anthropic/models.py) count as written, an escape as its characters: a few percent
    # more than their decoded length on Claude Code's file reads, never less
    estimate = raw_estimate(oci.body)
    assert estimate == walk_estimate(oci.body)
    exact = walk_estimate(orjson.loads(encode(oci.body)))
    assert exact > 10_000
    assert exact <= estimate <= exact * 1.08


ODD_SHAPES: list[Any] = [
    [{"role": "USER", "content": [{"type": "TEXT", "text": "abc"},
                                  {"type": "IMAGE", "imageUrl": {"url": "x"}}]}],
    [{"type": "IMAGE", "imageUrl": {}}, "loose", 7, None],
    [{"role": "ASSISTANT", "toolCalls": [{"id": "a", "arguments": '{"x": 1}'}], "content": "s"}],
    [{"content": [{"type": "TEXT", "text": 5}, {"type": "TEXT", "text": "t", "extra": "e"}],
      "parameters": {"a": [1, 2]}}],
    [{"role": "TOOL", "content": [{"type": "TEXT", "text": "r"}, {"text": "no type"}],
      "message": "counted", "thinking": "too"}],
    # tool calls: GENERIC's shape, and every way a call can leave it (the walk counts those)
    [{"role": "ASSISTANT", "toolCalls": [
        {"id": "a", "type": "FUNCTION", "name": "Read", "arguments": '{"f": "x"}'},
        {"id": "b", "type": "FUNCTION", "name": "Read", "arguments": {"f": "nested"}},
        {"id": "c", "type": "FUNCTION", "name": "Read", "arguments": "s", "text": "extra"},
        {"role": "TOOL", "type": "FUNCTION", "name": "Read", "arguments": "role counts"},
        {"id": "d", "type": "IMAGE", "name": "Read", "arguments": "an image's"},
        {"id": 5, "type": "FUNCTION", "name": "Read", "arguments": "id not a str"},
        {"id": "e", "type": "FUNCTION", "name": ["x"], "arguments": "name a list"},
        "loose", None]}],
    [{"role": "USER", "toolCalls": {"not": "a list"}, "content": {"text": "a dict"},
      "text": raw_text("kept encoded"), "parameters": [{"a": 1}]}],
    {"not": "a list"},
]


@pytest.mark.parametrize("messages", ODD_SHAPES)
def test_estimate_of_odd_shapes_equals_the_walk(messages: Any) -> None:
    body = {"chatRequest": {"messages": messages, "preambleOverride": "p",
                            "tools": [{"name": "t"}]}}
    assert raw_estimate(body) == walk_estimate(body)


def test_unknown_block_fields_are_still_accepted(gateway: GatewayServer) -> None:
    r = gateway.post("/v1/messages/count_tokens", {
        "model": "grok",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "read it", "cache_control": {"type": "ephemeral"},
                 "citations": None}], "name": "ignored"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Read",
                 "input": {"file_path": "/a"}, "caller": {"type": "direct"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x" * 400,
                 "cache_control": {"type": "ephemeral"}}]},
        ],
    })
    assert r.status_code == 200, r.text
    # the session gateway's calibrator has learnt from earlier tests: only "counted" is pinned
    assert r.json()["input_tokens"] > 0


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        node = {"n": node}
    return node


def _turn(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for i, value in enumerate(inputs):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{i}", "name": "Read", "input": value}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "ok"}]})
    return {"model": "grok", "messages": messages}


def test_tool_input_depth_over_the_limit_is_refused(gateway: GatewayServer) -> None:
    flat = [{"file_path": f"/f{i}"} for i in range(50)]
    # server.max_depth defaults to 64: an input of depth 64 passes, 65 anywhere in the turn not
    ok = gateway.post("/v1/messages/count_tokens", _turn([*flat, _nested(64)]))
    assert ok.status_code == 200, ok.text
    deep = gateway.post("/v1/messages/count_tokens", _turn([*flat, _nested(65), *flat]))
    assert deep.status_code == 400
    assert deep.json()["error"]["message"] == "the request body nests deeper than 64 levels"
