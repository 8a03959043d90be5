"""Claude Code parity, tools: definitions, tool_choice, history, results, streamed tool calls.

Everything goes through real HTTP (anthropic SDK or httpx -> gateway -> OCI emulator); what the
gateway sent upstream is read from the emulator's recorded requests.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from devtools.sse_check import check_stream, parse_sse
from emulator import FakeOCI, Scenario, tool_call
from tests.harness import (
    ALICE,
    STYLE_MODELS,
    TEST_MODELS,
    GatewayServer,
    chat,
    fixture_body,
    sdk,
)

RED_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/x0F8jngAA"
           "AABJRU5ErkJggg==")
ALL_STYLES = ["llama", "openai", "grok", "gemini", "cohere"]
FAMILY_MODELS = [m for m in TEST_MODELS if m != "tiny"]

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"anyOf": [{"type": "string", "enum": ["C", "F"]}, {"type": "null"}],
                     "description": "Unit"},
            "days": {"type": "array", "description": "Which days"},
            "where": {"$ref": "#/$defs/Place"},
        },
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}}},
    },
}
READ = {"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}
BASH = {"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"},
                                     "timeout": {"type": "integer"}}, "required": ["command"]}}



def ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, r.text
    return r


def base(model: str = "grok", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 200,
            "messages": [{"role": "user", "content": "what is the weather?"}], **extra}


# --- definitions -------------------------------------------------------------------------------


def test_tools_become_sanitized_generic_function_definitions(gateway: GatewayServer,
                                                             fake: FakeOCI) -> None:
    ok(gateway.post("/v1/messages", base(tools=[WEATHER, READ])))
    tools = chat(fake)["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "Read"]
    weather = tools[0]
    assert weather["type"] == "FUNCTION" and weather["description"] == "Current weather for a city"
    params = weather["parameters"]
    assert "$schema" not in params and "$defs" not in params
    assert params["required"] == ["city"] and params["additionalProperties"] is False
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": "City name"}
    assert props["unit"] == {"type": "string", "enum": ["C", "F"], "description": "Unit"}
    assert props["days"] == {"type": "array", "description": "Which days", "items": {}}
    assert props["where"] == {"type": "object", "properties": {"lat": {"type": "number"}}}
    # gemini: additionalProperties dropped too
    ok(gateway.post("/v1/messages", base("gemini", tools=[WEATHER])))
    assert "additionalProperties" not in chat(fake)["tools"][0]["parameters"]


def test_tools_become_cohere_parameter_definitions(gateway: GatewayServer,
                                                   fake: FakeOCI) -> None:
    ok(gateway.post("/v1/messages", base("cohere", tools=[WEATHER, BASH])))
    tools = chat(fake)["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "Bash"]
    defs = tools[0]["parameterDefinitions"]
    assert defs["city"] == {"type": "str", "isRequired": True, "description": "City name"}
    assert defs["unit"]["type"] == "str" and not defs["unit"]["isRequired"]
    assert '"enum":["C","F"]' in defs["unit"]["description"]
    assert defs["days"]["type"] == "list" and defs["where"]["type"] == "dict"
    assert tools[1]["parameterDefinitions"]["timeout"] == {"type": "int", "isRequired": False}
    assert "toolChoice" not in chat(fake)  # COHERE v1 has none


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_claude_code_main_turn_is_accepted_by_every_family(gateway: GatewayServer,
                                                           fake: FakeOCI, model: str) -> None:
    """All 24 Claude Code tool schemas (cc-01) pass OCI's validation for every family."""
    body = fixture_body("cc-01-main-turn-default-model.json", model)
    assert len(body["tools"]) == 24
    r = ok(gateway.post("/v1/messages?beta=true", body))
    assert check_stream(r.text)["stop_reason"] == "end_turn"
    rec = fake.requests[-1]
    assert rec.status == 200, rec.error_message
    sent = rec.body["chatRequest"]["tools"]
    assert [t.get("function", t)["name"] for t in sent] == [t["name"] for t in body["tools"]]
    assert "$schema" not in json.dumps(sent)


# --- tool_choice ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, {"type": "AUTO"}),
    ({"type": "any"}, {"type": "REQUIRED"}),
    ({"type": "tool", "name": "Read"}, {"type": "FUNCTION", "name": "Read"}),
    ({"type": "none"}, {"type": "NONE"}),
])
@pytest.mark.parametrize("no_parallel", [None, True])
def test_tool_choice_mapping(gateway: GatewayServer, fake: FakeOCI, choice: dict[str, Any],
                             expected: dict[str, str], no_parallel: bool | None) -> None:
    if no_parallel and choice["type"] != "none":
        choice = {**choice, "disable_parallel_tool_use": True}
    ok(gateway.post("/v1/messages", base(tools=[READ, BASH], tool_choice=choice)))
    req = chat(fake)
    assert req["toolChoice"] == expected
    if "disable_parallel_tool_use" in choice:
        assert req["isParallelToolCalls"] is False
    else:
        assert "isParallelToolCalls" not in req


def test_no_tool_choice_sends_none(gateway: GatewayServer, fake: FakeOCI) -> None:
    ok(gateway.post("/v1/messages", base(tools=[READ])))
    assert "toolChoice" not in chat(fake) and "isParallelToolCalls" not in chat(fake)


def test_server_and_typed_tools_are_left_out(gateway: GatewayServer, fake: FakeOCI) -> None:
    tools = [
        READ,
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 8},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "some_future_tool_2099", "name": "future", "input_schema": {"type": "object"}},
        {**BASH, "type": "custom", "eager_input_streaming": True, "cache_control": {
            "type": "ephemeral"}, "strict": True},
    ]
    # the web_search server tool becomes the gateway's own function (tests/test_web_search.py)
    ok(gateway.post("/v1/messages", base(tools=tools,
                                         tool_choice={"type": "tool", "name": "web_search"})))
    req = chat(fake)
    assert [t["name"] for t in req["tools"]] == ["Read", "web_search", "Bash"]
    assert req["toolChoice"] == {"type": "FUNCTION", "name": "web_search"}
    # forcing a tool that was left out: the model answers freely instead of a 400
    ok(gateway.post("/v1/messages", base(tools=tools,
                                         tool_choice={"type": "tool", "name": "bash"})))
    assert chat(fake)["toolChoice"] == {"type": "AUTO"}


@pytest.mark.parametrize("model", ["grok", "cohere"])
def test_websearch_sub_request_cc25(gateway: GatewayServer, fake: FakeOCI, model: str) -> None:
    body = fixture_body("cc-25-websearch-server-tool.json", model)
    assert body["tool_choice"] == {"type": "tool", "name": "web_search"}
    fake.push(Scenario(text="Paris: 18C and sunny."))
    r = ok(gateway.post("/v1/messages?beta=true", body))
    result = check_stream(r.text)
    assert result["text"] == "Paris: 18C and sunny." and result["stop_reason"] == "end_turn"
    req = chat(fake)  # the gateway runs the search (tests/test_web_search.py)
    assert len(req["tools"]) == 1 and "web_search" in json.dumps(req["tools"])


# --- history: tool_use and tool_result ---------------------------------------------------------


def test_tool_history_and_results_generic(gateway: GatewayServer, fake: FakeOCI) -> None:
    messages = [
        {"role": "user", "content": "look at both"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "I'll check."},
            {"type": "tool_use", "id": "toolu_A", "name": "Read",
             "input": {"file_path": "/a", "opts": {"n": [1, 2]}}},
            {"type": "tool_use", "id": "toolu_B", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "toolu_C", "name": "Bash", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A", "content": "file text"},
            {"type": "tool_result", "tool_use_id": "toolu_B", "is_error": True,
             "content": [{"type": "text", "text": "permission denied"},
                         {"type": "text", "text": "second line"}],
             "cache_control": {"type": "ephemeral"}},
            {"type": "tool_result", "tool_use_id": "toolu_C"},
            {"type": "text", "text": "now summarise"},
        ]},
    ]
    ok(gateway.post("/v1/messages", base(tools=[READ, BASH], messages=messages)))
    msgs = chat(fake)["messages"]
    assert [m["role"] for m in msgs] == ["USER", "ASSISTANT", "TOOL", "TOOL", "TOOL", "USER"]
    assistant = msgs[1]
    assert assistant["content"] == [{"type": "TEXT", "text": "I'll check."}]
    assert "reasoningContent" not in assistant  # thinking is not forwarded
    calls = assistant["toolCalls"]
    assert [(c["id"], c["type"], c["name"]) for c in calls] == [
        ("toolu_A", "FUNCTION", "Read"), ("toolu_B", "FUNCTION", "Bash"),
        ("toolu_C", "FUNCTION", "Bash")]
    assert all(isinstance(c["arguments"], str) for c in calls)
    assert json.loads(calls[0]["arguments"]) == {"file_path": "/a", "opts": {"n": [1, 2]}}
    assert json.loads(calls[2]["arguments"]) == {}
    assert msgs[2] == {"role": "TOOL", "toolCallId": "toolu_A",
                       "content": [{"type": "TEXT", "text": "file text"}]}
    assert msgs[3]["toolCallId"] == "toolu_B"
    error_text = msgs[3]["content"][0]["text"]
    assert "error" in error_text.lower() and "permission denied\nsecond line" in error_text
    assert msgs[4]["toolCallId"] == "toolu_C" and msgs[4]["content"][0]["text"]
    assert msgs[5] == {"role": "USER", "content": [{"type": "TEXT", "text": "now summarise"}]}


def test_tool_result_with_documents_and_search_results(gateway: GatewayServer,
                                                       fake: FakeOCI) -> None:
    messages = [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_S", "name": "Read",
                                           "input": {"file_path": "q"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_S",
                                      "content": [
            {"type": "text", "text": "intro"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "doc body"}},
            {"type": "search_result", "source": "https://example.com", "title": "Ex",
             "content": [{"type": "text", "text": "snippet one"}]},
            {"type": "future_block_type", "x": 1}]}]},
    ]
    ok(gateway.post("/v1/messages", base(tools=[READ], messages=messages)))
    tool = [m for m in chat(fake)["messages"] if m["role"] == "TOOL"]
    assert tool == [{"role": "TOOL", "toolCallId": "toolu_S", "content": [
        {"type": "TEXT", "text": "intro\ndoc body\nsnippet one"}]}]


@pytest.mark.parametrize("fixture", ["cc-06-tool-result-followup.json",
                                     "cc-07-tool-result-is-error.json",
                                     "cc-11-parallel-tool-results.json",
                                     "cc-18-interactive-compact.json"])
def test_claude_code_tool_result_followups(gateway: GatewayServer, fake: FakeOCI,
                                           fixture: str) -> None:
    body = fixture_body(fixture, "grok")
    r = ok(gateway.post("/v1/messages?beta=true", body))
    check_stream(r.text)
    msgs = chat(fake)["messages"]
    uses = [b for m in body["messages"] if m["role"] == "assistant"
            for b in m["content"] if b["type"] == "tool_use"]
    results = [b for m in body["messages"] if m["role"] == "user" and isinstance(
        m["content"], list) for b in m["content"] if b["type"] == "tool_result"]
    sent_calls = [c for m in msgs if m["role"] == "ASSISTANT" for c in m.get("toolCalls", [])]
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in sent_calls] == [
        (u["id"], u["name"], u["input"]) for u in uses]
    tool_msgs = [m for m in msgs if m["role"] == "TOOL"]
    assert [m["toolCallId"] for m in tool_msgs] == [r["tool_use_id"] for r in results]
    for sent, res in zip(tool_msgs, results, strict=True):
        assert res["content"] in sent["content"][0]["text"]
        assert ("[tool error]" in sent["content"][0]["text"]) == bool(res.get("is_error"))
    # every TOOL message directly follows the assistant turn that made the calls
    first_tool = msgs.index(tool_msgs[0])
    assert msgs[first_tool - 1]["role"] == "ASSISTANT" and msgs[first_tool - 1]["toolCalls"]


# --- images inside tool results ----------------------------------------------------------------


def image_result_messages(extra_text: str | None = None) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "tool_result", "tool_use_id": "toolu_img",
                                      "content": [
                                          {"type": "text", "text": "red.png (4x4)"},
                                          {"type": "image", "source": {
                                              "type": "base64", "media_type": "image/png",
                                              "data": RED_PNG}}]}]
    if extra_text:
        content.append({"type": "text", "text": extra_text})
    return [
        {"role": "user", "content": "look at red.png"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_img",
                                           "name": "Read", "input": {"file_path": "red.png"}}]},
        {"role": "user", "content": content},
    ]


@pytest.mark.parametrize("model", ["grok", "gemini", "gpt5"])
def test_tool_result_image_reaches_vision_model(gateway: GatewayServer, fake: FakeOCI,
                                                model: str) -> None:
    ok(gateway.post("/v1/messages", base(model, tools=[READ],
                                         messages=image_result_messages("what colour?"))))
    msgs = chat(fake)["messages"]
    assert [m["role"] for m in msgs] == ["USER", "ASSISTANT", "TOOL", "USER"]
    assert "red.png (4x4)" in msgs[2]["content"][0]["text"]
    parts = msgs[3]["content"]
    images = [p for p in parts if p["type"] == "IMAGE"]
    assert images == [{"type": "IMAGE", "imageUrl": {"url": f"data:image/png;base64,{RED_PNG}"}}]
    assert parts[-1] == {"type": "TEXT", "text": "what colour?"}  # the user's text after it


@pytest.mark.parametrize("model", ["llama", "grok-fast", "cohere"])
def test_tool_result_image_on_text_only_model_is_a_placeholder(gateway: GatewayServer,
                                                               fake: FakeOCI,
                                                               model: str) -> None:
    r = gateway.post("/v1/messages", base(model, tools=[READ], messages=image_result_messages()))
    assert r.status_code == 200, r.text
    raw = json.dumps(fake.requests[-1].body)
    assert "IMAGE" not in raw and RED_PNG not in raw
    assert f"omitted: {model} cannot view images" in raw
    assert "red.png (4x4)" in raw


@pytest.mark.parametrize(("model", "vision"), [("grok", True), ("llama", False)])
def test_claude_code_image_tool_result_cc12(gateway: GatewayServer, fake: FakeOCI, model: str,
                                            vision: bool) -> None:
    r = ok(gateway.post("/v1/messages?beta=true",
                        fixture_body("cc-12-image-tool-result.json", model)))
    check_stream(r.text)
    parts = [p for m in chat(fake)["messages"] for p in m.get("content") or []]
    assert any(p["type"] == "IMAGE" for p in parts) is vision


# --- streamed tool calls, every family style -----------------------------------------------------

CALLS = [
    ("Read", {"file_path": "/home/user/project/hello.txt"}),
    ("Bash", {"command": "echo 'héllo wörld' && ls -la | head -n 3", "timeout": 5000,
              "env": {"A": [1, 2.5, None, True]}}),
]


def expected_arguments(style: str, args: dict[str, Any]) -> str:
    # the scenario's arguments string; COHERE re-serialises parameters compactly
    return json.dumps(args, separators=(",", ":"), ensure_ascii=False)


def tool_scenario(style: str, **kw: Any) -> Scenario:
    return Scenario(text="Let me check both.", chunks=3,
                    tool_calls=[tool_call(name, args) for name, args in CALLS], **kw)


ID_PREFIX = {"llama": "chatcmpl-tool-", "openai": "call_", "grok": "call_",
             "gemini": "toolu_", "cohere": "toolu_"}


@pytest.mark.parametrize("style", ALL_STYLES)
def test_streamed_tool_calls_every_style(gateway: GatewayServer, fake: FakeOCI,
                                         style: str) -> None:
    fake.push(tool_scenario(style))
    r = ok(gateway.post("/v1/messages?beta=true", {
        "model": STYLE_MODELS[style], "max_tokens": 500, "stream": True, "tools": [READ, BASH],
        "messages": [{"role": "user", "content": "read and run"}]}))
    result = check_stream(r.text)
    blocks = result["content"]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "tool_use"]
    assert blocks[0]["text"] == "Let me check both."
    assert result["stop_reason"] == "tool_use"
    starts = [d for n, d in result["events"] if n == "content_block_start"
              and d["content_block"]["type"] == "tool_use"]
    for start, (name, args), block in zip(starts, CALLS, blocks[1:], strict=True):
        cb = start["content_block"]
        assert cb["name"] == name and cb["input"] == {}
        assert cb["id"].startswith(ID_PREFIX[style])
        assert block["partial_json"] == expected_arguments(style, args)
        assert block["input"] == args
    assert blocks[1]["id"] != blocks[2]["id"]
    fragments = [d for n, d in result["events"] if n == "content_block_delta"
                 and d["delta"]["type"] == "input_json_delta" and d["index"] == 2]
    if style in ("llama", "openai"):  # incremental families: several fragments, as received
        assert len([f for f in fragments if f["delta"]["partial_json"]]) > 2
    # the emulator's tool ids are passed through for families that have them
    if style in ("llama", "openai", "grok"):
        assert blocks[1]["id"] not in (None, "")


@pytest.mark.parametrize("style", ALL_STYLES)
def test_streamed_tool_calls_with_the_sdk(gateway: GatewayServer, fake: FakeOCI,
                                          style: str) -> None:
    fake.push(tool_scenario(style))
    with sdk(gateway).messages.stream(
        model=STYLE_MODELS[style], max_tokens=500, tools=[READ, BASH],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "read and run"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert [(b.name, b.input) for b in final.content[1:]] == CALLS  # type: ignore[union-attr]


@pytest.mark.parametrize("style", ALL_STYLES)
def test_non_streamed_tool_calls_every_style(gateway: GatewayServer, fake: FakeOCI,
                                             style: str) -> None:
    fake.push(tool_scenario(style))
    msg = sdk(gateway).messages.create(
        model=STYLE_MODELS[style], max_tokens=500, tools=[READ, BASH],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "read and run"}])
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    uses = msg.content[1:]
    assert [(b.name, b.input) for b in uses] == CALLS  # type: ignore[union-attr]
    assert all(b.id.startswith(ID_PREFIX[style]) for b in uses)  # type: ignore[union-attr]


@pytest.mark.parametrize("style", ALL_STYLES)
def test_tool_only_answer_without_text(gateway: GatewayServer, fake: FakeOCI,
                                       style: str) -> None:
    fake.push(Scenario(tool_calls=[tool_call("Read", {"file_path": "/x"})]))
    r = ok(gateway.post("/v1/messages", {
        "model": STYLE_MODELS[style], "max_tokens": 100, "stream": True, "tools": [READ],
        "messages": [{"role": "user", "content": "read"}]}))
    result = check_stream(r.text)
    assert [b["type"] for b in result["content"]] == ["tool_use"]
    assert result["content"][0]["input"] == {"file_path": "/x"}
    assert result["stop_reason"] == "tool_use"


@pytest.mark.parametrize("style", ALL_STYLES)
def test_tool_ids_round_trip(gateway: GatewayServer, fake: FakeOCI, style: str) -> None:
    """A follow-up carrying the streamed tool_use ids + tool_results is accepted and the ids
    the emulator sees are consistent (minted ``toolu_`` ids for Gemini/Cohere included)."""
    model = STYLE_MODELS[style]
    fake.push(tool_scenario(style))
    client = sdk(gateway)
    first = [{"role": "user", "content": "read and run"}]
    with client.messages.stream(model=model, max_tokens=500, tools=[READ, BASH],  # type: ignore[list-item]
                                messages=first) as stream:  # type: ignore[arg-type]
        turn = stream.get_final_message()
    uses = [b for b in turn.content if b.type == "tool_use"]
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": f"output of {u.name}"}
               for u in uses]
    fake.push(Scenario(text="Both done."))
    follow = client.messages.create(
        model=model, max_tokens=500, tools=[READ, BASH],  # type: ignore[list-item]
        messages=[*first, {"role": "assistant", "content": turn.content},  # type: ignore[list-item]
                  {"role": "user", "content": results}])  # type: ignore[typeddict-item]
    assert follow.content[0].text == "Both done."  # type: ignore[union-attr]
    rec = fake.requests[-1]
    assert rec.status == 200
    req = rec.chat_request
    if style == "cohere":
        chatbot = req["chatHistory"][-1]
        assert chatbot["role"] == "CHATBOT"
        assert chatbot["toolCalls"] == [{"name": n, "parameters": a} for n, a in CALLS]
        assert req["message"] == ""
        assert [(t["call"], t["outputs"]) for t in req["toolResults"]] == [
            ({"name": n, "parameters": a}, [{"output": f"output of {n}"}]) for n, a in CALLS]
        return
    msgs = req["messages"]
    assistant = next(m for m in msgs if m["role"] == "ASSISTANT")
    # Gemini's calls come one per ASSISTANT message (1:1 pairs, RW §4)
    ids = [c["id"] for m in msgs if m["role"] == "ASSISTANT" for c in m.get("toolCalls", [])]
    assert ids == [u.id for u in uses] and len(set(ids)) == 2
    assert [m["toolCallId"] for m in msgs if m["role"] == "TOOL"] == ids
    assert assistant["content"] == [{"type": "TEXT", "text": "Let me check both."}]


def test_tool_fragments_are_forwarded_as_they_arrive(gateway: GatewayServer,
                                                     fake: FakeOCI) -> None:
    """OpenAI-style incremental arguments, 0.1 s apart: the first input_json_delta reaches the
    client long before the stream ends (nothing is buffered until the call is complete)."""
    args = {"command": "x" * 120}
    fake.push(Scenario(tool_calls=[tool_call("Bash", args)], style="openai",
                       delay_between=0.1))
    seen: list[tuple[float, str]] = []  # (arrival time, event or delta type)
    body = ""
    with httpx.stream("POST", gateway.url + "/v1/messages", timeout=30, json={
        "model": "gpt-oss", "max_tokens": 300, "stream": True, "tools": [BASH],
        "messages": [{"role": "user", "content": "run"}]},
        headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200
        t0 = time.monotonic()
        pending = ""
        for chunk in r.iter_text():
            now = time.monotonic() - t0
            body += chunk
            pending += chunk
            *complete, pending = pending.split("\n\n")
            for name, data in parse_sse("\n\n".join(complete)):
                seen.append((now, data.get("delta", {}).get("type", name)))
    events = [k for _, k in seen]
    assert "input_json_delta" in events and events[-1] == "message_stop"
    first_fragment = next(t for t, k in seen if k == "input_json_delta")
    end = seen[-1][0]
    # 16 fragments 0.1 s apart: the first must not wait for the last
    assert end - first_fragment > 0.8, seen
    result = check_stream(body)
    assert result["content"][0]["input"] == args
    frags = [d for n, d in result["events"] if n == "content_block_delta"]
    assert len(frags) > 10


def test_parallel_results_follow_the_call_order(gateway: GatewayServer, fake: FakeOCI) -> None:
    # Claude Code sends results in the order the tools finished (here: second call first)
    gateway.post("/v1/messages", {
        "model": "gemini", "max_tokens": 20,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "run two"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_A", "name": "Bash", "input": {"c": "a"}},
                {"type": "tool_use", "id": "toolu_B", "name": "Bash", "input": {"c": "b"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_B", "content": "out b"},
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": "out a"},
                {"type": "text", "text": "go on"}]}]})
    msgs = fake.requests[-1].body["chatRequest"]["messages"]
    tools = [m["toolCallId"] for m in msgs if m["role"] == "TOOL"]
    assert tools == ["toolu_A", "toolu_B"]
    assert msgs[-1]["role"] == "USER" and msgs[-1]["content"][0]["text"] == "go on"
