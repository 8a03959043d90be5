"""Texts kept as the client's JSON bytes reach OCI as the same text, and count the same.

What is pinned (app/anthropic/models.py, "text passed through"): a text block's text and a tool
result's string content are forwarded as the client encoded them when they are ASCII without
``\\u`` escapes, and decoded otherwise; either way OCI (the emulator, decoding the body it got)
receives exactly the client's text, for every escape JSON has, control characters, non-ASCII
sent raw (as JavaScript's ``JSON.stringify`` does, Claude Code) or ``\\u``-escaped (as Python's
``json.dumps`` does, the ``anthropic`` SDK), and surrogate pairs; the token estimate counts a
kept text as written.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.anthropic.decode import decode_request
from app.anthropic.models import CountTokensRequest, JsonText
from tests.harness import ALICE, GatewayServer

TEXTS = [
    'plain ASCII source:\n\tdef f(x):\n\t\treturn "x\\\\y"  # /slash/',
    "quotes \" and backslashes \\ \\\\ and \\n written out, \b\f\r and \x00\x01\x1f",
    "non-ASCII: café, naïve, 東京, → — …",
    "emoji outside the BMP: 😀 🧪 and \U0001d518\U0001d52b",
    "",
]
HEADERS = {"x-api-key": ALICE, "content-type": "application/json"}


def _body(text: str, model: str = "grok") -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 20,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read the file"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": text or "."},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "a"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": text},
                {"type": "text", "text": text + " (again)"}]},
        ],
        "tools": [{"name": "Read", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}}],
    }


def _encodings(body: dict[str, Any]) -> list[bytes]:
    """The same body as Claude Code (UTF-8 as is) and the Python SDK (``\\u`` escapes) send."""
    return [json.dumps(body, ensure_ascii=False).encode(), json.dumps(body).encode()]


def _texts(oci_body: dict[str, Any]) -> list[str]:
    return [part["text"] for m in oci_body["chatRequest"]["messages"]
            for part in m.get("content") or () if part.get("type") == "TEXT"]


@pytest.mark.parametrize("text", TEXTS)
def test_oci_receives_the_clients_text_exactly(gateway: GatewayServer, fake: Any,
                                               text: str) -> None:
    for raw in _encodings(_body(text)):
        r = httpx.post(gateway.url + "/v1/messages", content=raw, headers=HEADERS, timeout=30)
        assert r.status_code == 200, r.text
        sent = fake.requests[-1].body
        # the assistant's text, the tool result, the user's text
        assert _texts(sent)[-3:] == [text or ".", text or "(no output)", text + " (again)"]


@pytest.mark.parametrize("text", TEXTS)
def test_kept_texts_count_as_written(text: str) -> None:
    """A kept text is the client's bytes, and the estimate counts it as written: an escape
    counts as its characters (``chars``, measured without decoding the text)."""
    for encoded in (json.dumps(text), json.dumps(text, ensure_ascii=False)):
        req = decode_request(
            ('{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":'
             + encoded + '}]}]}').encode(), CountTokensRequest)
        kept = req.messages[0].content[0].text
        assert isinstance(kept, JsonText) and kept.chars == len(encoded) - 2
        assert bytes(kept.data) == encoded.encode()  # as sent, not re-encoded


def test_tool_result_text_blocks_are_joined_as_text(gateway: GatewayServer, fake: Any) -> None:
    """A list result of text blocks is joined with newlines without decoding them."""
    body = _body("x")
    body["messages"][2]["content"][0]["content"] = [
        {"type": "text", "text": 'line "one"\\'}, {"type": "text", "text": "line two\t"}]
    r = httpx.post(gateway.url + "/v1/messages", content=json.dumps(body).encode(),
                   headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    assert 'line "one"\\\nline two\t' in _texts(fake.requests[-1].body)


def test_unknown_block_types_are_still_accepted(gateway: GatewayServer, fake: Any) -> None:
    """A block type the models do not know (msgspec has no catch-all tag) takes the second
    pass and is dropped by the translator, in a message and inside a tool result."""
    body = _body("x")
    body["messages"][0]["content"].append({"type": "future_block", "payload": {"a": 1}})
    body["messages"][2]["content"][0]["content"] = [
        {"type": "text", "text": "ok"}, {"type": "future_inner", "z": [1]}]
    r = httpx.post(gateway.url + "/v1/messages", content=json.dumps(body).encode(),
                   headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    assert "ok" in _texts(fake.requests[-1].body)
