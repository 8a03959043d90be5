"""Tool search over ``defer_loading`` tools, run by the gateway (app/service/tool_search.py).

Through HTTP with the SDK as client and the emulator as OCI, scripted to call the search
function: deferred tools are not sent to OCI until loaded; Anthropic's regex and BM25 tool
search tools are answered with ``server_tool_use`` + ``tool_search_tool_result`` blocks (JSON and
SSE), the picked tools are sent inline on the next turn, an invalid regex is an error result
(not an HTTP 400), echoed history becomes a tool call + result on every family, the client-side
variant (``tool_reference`` in a ``tool_result``) loads a tool, the gateway's own search is
offered without a search tool, and count_tokens counts what would be sent; the tokens sent with
and without tool search (scripts/tool_search_tokens) on cc-27 (recorded from the real Claude Code
CLI with a 100-tool MCP server, tests/e2e/test_claude_code_toolsearch.py) and on cc-26 (cc-17
plus 100 MCP tools, synthesised).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.conformance.stream_check import check_message, check_stream
from app.translate.tokens import raw_estimate
from emulator import FakeOCI, Scenario, tool_call
from tests.harness import TEST_MODELS, GatewayServer, fixture_body, sdk

REGEX = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
BM25 = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}


def _tool(name: str, description: str, defer: bool = True) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "name": name, "description": description,
        "input_schema": {"type": "object", "properties": {"city": {"type": "string",
                                                                   "description": "City"}}}}
    if defer:
        tool["defer_loading"] = True
    return tool


TOOLS = [
    _tool("Read", "Read a file", defer=False),
    _tool("get_weather", "Get the current weather forecast for a city"),
    _tool("send_slack_message", "Post a message to a Slack channel"),
    _tool("create_github_issue", "Create an issue in a GitHub repository"),
]


def _body(search: dict[str, Any] | None = REGEX, **kw: Any) -> dict[str, Any]:
    tools = ([search] if search else []) + copy.deepcopy(TOOLS)
    return {"model": "grok", "max_tokens": 200, "tools": tools,
            "messages": [{"role": "user", "content": "Weather in Paris?"}], **kw}


def _names(chat_request: dict[str, Any]) -> list[str]:
    return [t.get("name") or t.get("function", {}).get("name")
            for t in chat_request.get("tools") or []]


def _types(content: list[Any]) -> list[str]:
    return [b["type"] if isinstance(b, dict) else b.type for b in content]


def test_regex_search_loads_the_tool_for_the_next_turn(gateway: GatewayServer,
                                                        fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("tool_search_tool_regex", {"query": "weather"})]))
    fake.push(Scenario(tool_calls=[tool_call("get_weather", {"city": "Paris"})]))
    message = sdk(gateway).messages.create(**_body())
    check_message(message.model_dump())
    assert _types(message.content) == ["server_tool_use", "tool_search_tool_result", "tool_use"]
    use, result, call = message.content
    assert use.name == "tool_search_tool_regex" and use.input == {"query": "weather"}
    assert use.id.startswith("srvtoolu_") and result.tool_use_id == use.id
    dumped = result.model_dump()
    assert dumped["content"] == {"type": "tool_search_tool_search_result", "tool_references": [
        {"type": "tool_reference", "tool_name": "get_weather"}]}
    assert call.name == "get_weather" and message.stop_reason == "tool_use"
    assert message.model_dump()["usage"]["server_tool_use"]["tool_search_requests"] == 1
    first, second = (r.chat_request for r in fake.requests)
    assert _names(first) == ["tool_search_tool_regex", "Read"]  # deferred tools not sent
    assert _names(second) == ["tool_search_tool_regex", "Read", "get_weather"]
    tool_msgs = [m for m in second["messages"] if m["role"] == "TOOL"]
    assert "get_weather" in json.dumps(tool_msgs)


def test_bm25_search_streams_and_the_answer_arrives_token_by_token(
    gateway: GatewayServer, fake: FakeOCI
) -> None:
    fake.push(Scenario(tool_calls=[tool_call("tool_search_tool_bm25",
                                             {"query": "post a message to slack"})]))
    fake.push(Scenario(text="I can post it to Slack for you now.", chunks=6))
    resp = gateway.post("/v1/messages", _body(BM25, stream=True))
    assert resp.status_code == 200, resp.text
    checked = check_stream(resp.text)
    assert _types(checked["content"]) == ["server_tool_use", "tool_search_tool_result", "text"]
    refs = checked["content"][1]["content"]["tool_references"]
    assert refs[0] == {"type": "tool_reference", "tool_name": "send_slack_message"}
    assert checked["text"] == "I can post it to Slack for you now."
    assert resp.text.count('"text_delta"') >= 3  # streamed as it came, not in one delta
    assert all(r.chat_request.get("isStream") for r in fake.requests)
    assert "send_slack_message" in _names(fake.requests[1].chat_request)
    with sdk(gateway).messages.stream(**_body(BM25)) as stream:
        fake.push(Scenario(text="ok"))
        final = stream.get_final_message()
    assert final.content[-1].type == "text"


def test_a_backtracking_regex_is_cut_off_not_a_stalled_worker(gateway: GatewayServer,
                                                              fake: FakeOCI) -> None:
    # (a|aa)+b over 40 a's: ~10^8 steps for Python's re (the worker's loop held for seconds)
    body = _body()
    body["tools"].append(_tool("spinner", "a" * 40))
    fake.push(Scenario(tool_calls=[tool_call("tool_search_tool_regex", {"query": "(a|aa)+b"})]))
    fake.push(Scenario(text="No such tool."))
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    result = check_message(resp.json())["content"][1]["content"]
    assert result["type"] == "tool_search_tool_result_error"
    assert result["error_code"] == "invalid_tool_input"
    # the model was told why (the error is its tool result)
    assert "simpler pattern" in str(fake.requests[1].chat_request["messages"])


def test_an_invalid_regex_is_an_error_result_not_a_400(gateway: GatewayServer,
                                                        fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("tool_search_tool_regex", {"query": "weather(["})]))
    fake.push(Scenario(tool_calls=[tool_call("tool_search_tool_regex", {"query": "x" * 201})]))
    fake.push(Scenario(text="No such tool."))
    resp = gateway.post("/v1/messages", _body())
    assert resp.status_code == 200, resp.text
    content = check_message(resp.json())["content"]
    assert _types(content) == ["server_tool_use", "tool_search_tool_result"] * 2 + ["text"]
    for result in (content[1], content[3]):
        assert result["content"]["type"] == "tool_search_tool_result_error"
        assert result["content"]["error_code"] == "invalid_tool_input"
    assert "200 characters" in content[3]["content"]["error_message"]
    assert "get_weather" not in _names(fake.requests[-1].chat_request)


@pytest.mark.parametrize("model", [m for m in TEST_MODELS if m != "tiny"])
def test_history_round_trips_on_every_family(gateway: GatewayServer, fake: FakeOCI,
                                             model: str) -> None:
    body = _body(model=model)
    body["messages"] += [
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "tool_search_tool_regex",
             "input": {"query": "weather"}},
            {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_1", "content": {
                "type": "tool_search_tool_search_result",
                "tool_references": [{"type": "tool_reference", "tool_name": "get_weather"}]}},
            {"type": "text", "text": "Found it."}]},
        {"role": "user", "content": "Go on."},
    ]
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    sent = json.dumps(fake.requests[-1].body)
    assert "Tools loaded (now callable): get_weather" in sent  # the tool result
    assert "srvtoolu_1" in sent or "tool_search_tool_regex" in sent  # the tool call
    assert "Get the current weather forecast" in sent  # loaded earlier: sent inline
    assert "Post a message to a Slack channel" not in sent  # still deferred


def test_client_side_tool_reference_loads_the_tool(gateway: GatewayServer,
                                                   fake: FakeOCI) -> None:
    finder = _tool("find_tools", "Find tools", defer=False)
    body = _body(search=None)
    body["tools"] += [finder]
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                           "name": "find_tools", "input": {"city": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "tool_reference",
                                                   "tool_name": "create_github_issue"}]}]},
    ]
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    chat = fake.requests[-1].chat_request
    assert "Tool loaded: create_github_issue" in json.dumps(chat["messages"])
    names = _names(chat)
    assert "create_github_issue" in names and "get_weather" not in names
    assert "tool_search" in names  # the gateway's own search (no search tool in the request)


def test_claude_code_tool_search_request(gateway: GatewayServer, fake: FakeOCI) -> None:
    body = fixture_body("cc-26-mcp-tool-search.json", "grok")
    body = {**body, "model": "grok", "stream": False}
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    names = _names(fake.requests[-1].chat_request)
    # Claude Code brings its own ToolSearch: no gateway search, the 100 MCP tools held back
    assert len(names) == 28 and "ToolSearch" in names and "tool_search" not in names
    assert not any(n.startswith("mcp__") for n in names)


def test_count_tokens_counts_what_would_be_sent(gateway: GatewayServer) -> None:
    body = fixture_body("cc-26-mcp-tool-search.json", "grok")
    body = {k: body[k] for k in ("model", "messages", "system", "tools")} | {"model": "grok"}
    inline = copy.deepcopy(body)
    inline["tools"] = [{k: v for k, v in t.items() if k != "defer_loading"}
                       for t in inline["tools"] if t["name"] != "ToolSearch"]
    deferred = gateway.post("/v1/messages/count_tokens", body).json()["input_tokens"]
    full = gateway.post("/v1/messages/count_tokens", inline).json()["input_tokens"]
    assert deferred * 2 < full
    searched = gateway.post("/v1/messages/count_tokens", _body()).json()["input_tokens"]
    unsearched = _body()
    for t in unsearched["tools"]:
        t.pop("defer_loading", None)
    assert searched < gateway.post("/v1/messages/count_tokens",
                                   unsearched).json()["input_tokens"]


def _inline(body: dict[str, Any]) -> dict[str, Any]:
    """The same turn as Claude Code sends it with tool search off."""
    out = copy.deepcopy(body)
    out["tools"] = [{k: v for k, v in t.items() if k != "defer_loading"}
                    for t in out["tools"] if t.get("name") != "ToolSearch"]
    return out


CC27_ON = "cc-27-mcp-tool-search-recorded.json"
CC27_OFF = "cc-27-mcp-tool-search-off-recorded.json"


def test_recorded_claude_code_tool_search_request(gateway: GatewayServer, fake: FakeOCI) -> None:
    """cc-27, recorded from the real CLI: Claude Code 2.1.197 keeps its deferred tools out of
    `tools` altogether (names only, in a mid-conversation system message), so nothing is held
    back by the gateway and its own search is not offered (ToolSearch is there)."""
    body = {**fixture_body(CC27_ON, "grok"), "stream": False}
    assert not any(t.get("defer_loading") for t in body["tools"])
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    chat = fake.requests[-1].chat_request
    names = _names(chat)
    assert "ToolSearch" in names and "tool_search" not in names and len(names) == 9
    assert "available via ToolSearch" in json.dumps(chat["messages"])  # the role-system message


def test_recorded_claude_code_turn_after_tool_search(gateway: GatewayServer,
                                                    fake: FakeOCI) -> None:
    """cc-27's second turn: the found tools arrive with defer_loading: true and are referenced
    by the ToolSearch tool_result, so they are sent inline and nothing else is held back."""
    body = {**fixture_body("cc-27-mcp-tool-search-loaded-recorded.json", "grok"),
            "stream": False}
    deferred = {t["name"] for t in body["tools"] if t.get("defer_loading")}
    assert deferred == {"mcp__inv__inventory_lookup_warehouse_bin",
                        "mcp__inv__inventory_list_stock_levels"}
    resp = gateway.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    chat = fake.requests[-1].chat_request
    assert deferred <= set(_names(chat)) and len(_names(chat)) == 11
    assert "Tool loaded: mcp__inv__inventory_lookup_warehouse_bin" in json.dumps(chat["messages"])


def _measure(gateway: GatewayServer, fake: FakeOCI, body: dict[str, Any]) -> tuple[int, int, int]:
    fake.clear_requests()
    resp = gateway.post("/v1/messages", {**body, "stream": False})
    assert resp.status_code == 200, resp.text
    details = fake.requests[-1].body
    return (len(details["chatRequest"].get("tools") or []), raw_estimate(details),
            len(json.dumps(details)))


def test_the_measurement_reports_the_saving(gateway: GatewayServer, fake: FakeOCI) -> None:
    """scripts/tool_search_tokens.py runs this; the README's figures are its output.

    cc-27 (RECORDED): Claude Code's first main turn with tool search off and on, both recorded
    from the real CLI with the same 100-tool MCP server; cc-26 (SYNTHESISED): cc-17 plus 100
    deferred MCP tools, and the same turn with every tool inline."""
    synthesised = fixture_body("cc-26-mcp-tool-search.json", "grok")
    cases = {
        "cc-27 recorded": (fixture_body(CC27_OFF, "grok"), fixture_body(CC27_ON, "grok")),
        "cc-26 synthesised": (_inline(synthesised), synthesised),
    }
    figures = {}
    for case, (off, on) in cases.items():
        figures[case] = (_measure(gateway, fake, off), _measure(gateway, fake, on))
    for case, rows in figures.items():
        for label, (tools, tokens, size) in zip(("tool search off", "tool search on"), rows,
                                                strict=True):
            print(f"\n{case:>17} {label:>15}: {tools:3d} tools, ~{tokens:6d} input tokens, "
                  f"{size:7d} bytes of ChatDetails")
        (_, off_tokens, _), (_, on_tokens, _) = rows
        print(f"{case:>17} saving: ~{off_tokens - on_tokens} tokens "
              f"({100 * (off_tokens - on_tokens) / off_tokens:.0f}%)")
    off, on = figures["cc-26 synthesised"]
    assert off[0] == 127 and on[0] == 28
    assert on[1] * 3 < off[1]
    off, on = figures["cc-27 recorded"]
    # of the saving, the 100 MCP schemas alone (the rest: 15 built-in tools Claude Code defers too)
    recorded_off = fixture_body(CC27_OFF, "grok")
    no_mcp = {**recorded_off, "tools": [t for t in recorded_off["tools"]
                                        if not t["name"].startswith("mcp__")]}
    mcp_tokens = off[1] - _measure(gateway, fake, no_mcp)[1]
    print(f"   cc-27 recorded the 100 MCP schemas alone: ~{mcp_tokens} tokens")
    assert off[0] == 124 and on[0] == 9
    assert on[1] * 2 < off[1]
