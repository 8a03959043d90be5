"""Claude Code parity on a COHERE (v1) model: text, preamble, history, tools, tool results.

Model ``cohere`` of the test config (cohere.command-a-03-2025, apiFormat COHERE). Through real
HTTP; the COHERE body the gateway sent is read from the emulator's recorded requests.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, completion_tokens, prompt_tokens, tool_call
from tests.harness import ALICE, FIXTURES, GatewayServer

WEATHER = {"name": "get_weather", "description": "Weather for a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string", "description": "City"},
                                     "days": {"type": "integer"}}, "required": ["city"]}}
ANSWER = "It is sunny in Oslo today, with a light breeze from the west."


def sdk(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=ALICE, max_retries=0)


def chat(fake: FakeOCI) -> dict[str, Any]:
    return fake.requests[-1].body["chatRequest"]


def post(gateway: GatewayServer, **body: Any) -> Any:
    r = gateway.post("/v1/messages", {"model": "cohere", "max_tokens": 300, **body})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("chunks", [1, 4, None])
def test_streamed_text_appears_exactly_once(gateway: GatewayServer, fake: FakeOCI,
                                            chunks: int | None) -> None:
    """COHERE's terminal event repeats the full text: it must not be emitted again."""
    fake.push(Scenario(text=ANSWER, chunks=chunks))
    r = post(gateway, stream=True, messages=[{"role": "user", "content": "weather?"}])
    result = check_stream(r.text)
    # text_deltas concatenate to the answer once (a re-emitted terminal text would double it)
    assert result["text"] == ANSWER
    assert [b["type"] for b in result["content"]] == ["text"]
    assert result["stop_reason"] == "end_turn"
    # usage comes from the terminal event
    assert result["usage"]["output_tokens"] == completion_tokens(ANSWER, "", [])
    assert result["usage"]["input_tokens"] == prompt_tokens(chat(fake))


def test_streamed_text_with_the_sdk(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text=ANSWER, chunks=5))
    with sdk(gateway).messages.stream(model="cohere", max_tokens=100,
                                      messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == ANSWER  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"


def test_non_streaming_text(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text=ANSWER))
    msg = sdk(gateway).messages.create(model="cohere", max_tokens=100,
                                       messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == ANSWER  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == prompt_tokens(chat(fake))
    assert "isStream" not in chat(fake)


def test_max_tokens_finish(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text="cut", finish_reason="length"))
    r = post(gateway, stream=True, messages=[{"role": "user", "content": "long"}])
    assert check_stream(r.text)["stop_reason"] == "max_tokens"


def test_preamble_history_and_message(gateway: GatewayServer, fake: FakeOCI) -> None:
    post(gateway, system=[{"type": "text", "text": "x-anthropic-billing-header: cc=1;"},
                          {"type": "text", "text": "You are terse."}],
         messages=[
             {"role": "user", "content": "first question"},
             {"role": "system", "content": "agent listing"},
             {"role": "assistant", "content": "first answer"},
             {"role": "user", "content": [{"type": "text", "text": "second"},
                                          {"type": "text", "text": "question"}]},
         ])
    req = chat(fake)
    assert req["apiFormat"] == "COHERE"
    assert req["preambleOverride"] == "You are terse.\n\nagent listing"
    assert req["chatHistory"] == [{"role": "USER", "message": "first question"},
                                  {"role": "CHATBOT", "message": "first answer"}]
    assert req["message"] == "second\n\nquestion"
    assert req["maxTokens"] == 300


def test_tools_and_streamed_tool_calls(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text="Checking.", tool_calls=[
        tool_call("get_weather", {"city": "Oslo"}),
        tool_call("get_weather", {"city": "Bergen", "days": 2})]))
    r = post(gateway, stream=True, tools=[WEATHER],
             messages=[{"role": "user", "content": "weather in Oslo and Bergen?"}])
    result = check_stream(r.text)
    assert [b["type"] for b in result["content"]] == ["text", "tool_use", "tool_use"]
    assert r.text.count("Checking.") == 1  # the terminal event's repeat is not re-emitted
    assert [b["input"] for b in result["content"][1:]] == [{"city": "Oslo"},
                                                           {"city": "Bergen", "days": 2}]
    ids = [b["id"] for b in result["content"][1:]]
    assert all(i.startswith("toolu_") for i in ids) and len(set(ids)) == 2
    assert result["stop_reason"] == "tool_use"  # COHERE says COMPLETE; tool calls say tool_use
    tools = chat(fake)["tools"]
    assert tools == [{"name": "get_weather", "description": "Weather for a city",
                      "parameterDefinitions": {
                          "city": {"type": "str", "isRequired": True, "description": "City"},
                          "days": {"type": "int", "isRequired": False}}}]


def test_non_streamed_tool_calls(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("get_weather", {"city": "Oslo"})]))
    msg = sdk(gateway).messages.create(model="cohere", max_tokens=100,
                                       tools=[WEATHER],  # type: ignore[list-item]
                                       messages=[{"role": "user", "content": "Oslo?"}])
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["tool_use"]
    assert msg.content[0].input == {"city": "Oslo"}  # type: ignore[union-attr]
    assert msg.content[0].id.startswith("toolu_")  # type: ignore[union-attr]


def conversation() -> list[dict[str, Any]]:
    """Two tool rounds: the first answered in history, the second in the current turn."""
    return [
        {"role": "user", "content": "weather in Oslo, then Bergen"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Oslo first."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "now Bergen", "signature": ""},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
             "input": {"city": "Bergen", "days": 1}},
            {"type": "tool_use", "id": "toolu_3", "name": "get_weather",
             "input": {"city": "Bergen", "days": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_2",
             "content": [{"type": "text", "text": "rain"}]},
            {"type": "tool_result", "tool_use_id": "toolu_3", "content": "no data",
             "is_error": True}]},
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_results_current_turn_and_history(gateway: GatewayServer, fake: FakeOCI,
                                               stream: bool) -> None:
    fake.push(Scenario(text="Oslo is sunny; Bergen rainy."))
    r = post(gateway, stream=stream, tools=[WEATHER], messages=conversation())
    text = check_stream(r.text)["text"] if stream else r.json()["content"][0]["text"]
    assert text == "Oslo is sunny; Bergen rainy."
    req = chat(fake)
    oslo = {"name": "get_weather", "parameters": {"city": "Oslo"}}
    bergen1 = {"name": "get_weather", "parameters": {"city": "Bergen", "days": 1}}
    bergen2 = {"name": "get_weather", "parameters": {"city": "Bergen", "days": 2}}
    assert req["chatHistory"] == [
        {"role": "USER", "message": "weather in Oslo, then Bergen"},
        {"role": "CHATBOT", "message": "Oslo first.", "toolCalls": [oslo]},
        {"role": "TOOL", "toolResults": [{"call": oslo, "outputs": [{"output": "sunny"}]}]},
        {"role": "CHATBOT", "message": "", "toolCalls": [bergen1, bergen2]},
    ]
    assert req["message"] == ""
    results = req["toolResults"]
    assert [r["call"] for r in results] == [bergen1, bergen2]
    assert results[0]["outputs"] == [{"output": "rain"}]
    assert "[tool error]" in results[1]["outputs"][0]["output"]
    assert "no data" in results[1]["outputs"][0]["output"]


def test_tool_result_with_text_after_it(gateway: GatewayServer, fake: FakeOCI) -> None:
    messages = conversation()[:3]
    messages[2]["content"].append({"type": "text", "text": "Now compact the conversation."})
    post(gateway, tools=[WEATHER], messages=messages)
    req = chat(fake)
    assert req["message"] == "Now compact the conversation."
    assert req["toolResults"][0]["outputs"] == [{"output": "sunny"}]


def test_tool_result_for_an_unknown_call_is_a_400(gateway: GatewayServer,
                                                  fake: FakeOCI) -> None:
    r = gateway.post("/v1/messages", {"model": "cohere", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nope",
                                      "content": "x"}]}]})
    assert r.status_code == 400 and "toolu_nope" in r.json()["error"]["message"]
    assert not fake.requests


def test_streamed_tool_round_trip_through_the_sdk(gateway: GatewayServer,
                                                  fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("get_weather", {"city": "Oslo"})]))
    client = sdk(gateway)
    first = [{"role": "user", "content": "Oslo?"}]
    with client.messages.stream(model="cohere", max_tokens=100,
                                tools=[WEATHER], messages=first) as s:  # type: ignore[list-item,arg-type]
        turn = s.get_final_message()
    use = turn.content[0]
    fake.push(Scenario(text="Sunny."))
    with client.messages.stream(
        model="cohere", max_tokens=100, tools=[WEATHER],  # type: ignore[list-item]
        messages=[*first, {"role": "assistant", "content": turn.content},  # type: ignore[list-item]
                  {"role": "user", "content": [{"type": "tool_result",
                                                "tool_use_id": use.id,  # type: ignore[union-attr]
                                                "content": "sunny"}]}],
    ) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Sunny."  # type: ignore[union-attr]
    req = chat(fake)
    call = {"name": "get_weather", "parameters": {"city": "Oslo"}}
    assert req["chatHistory"][-1] == {"role": "CHATBOT", "message": "", "toolCalls": [call]}
    assert req["toolResults"] == [{"call": call, "outputs": [{"output": "sunny"}]}]


@pytest.mark.parametrize("fixture", ["cc-01-main-turn-default-model.json",
                                     "cc-06-tool-result-followup.json",
                                     "cc-11-parallel-tool-results.json",
                                     "cc-18-interactive-compact.json",
                                     "cc-12-image-tool-result.json"])
def test_claude_code_requests_on_cohere(gateway: GatewayServer, fake: FakeOCI,
                                        fixture: str) -> None:
    body = {**json.loads((FIXTURES / fixture).read_text())["body"], "model": "cohere"}
    fake.push(Scenario(text=ANSWER, chunks=4))
    r = gateway.post("/v1/messages?beta=true", body)
    assert r.status_code == 200, r.text
    assert check_stream(r.text)["text"] == ANSWER  # once: not repeated from the terminal event
    rec = fake.requests[-1]
    assert rec.status == 200 and rec.chat_request["apiFormat"] == "COHERE"
    results = [b for m in body["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]
    assert len(rec.chat_request.get("toolResults", [])) == len(results)


@pytest.mark.parametrize(("choice", "offered"), [
    (None, True), ({"type": "auto"}, True), ({"type": "any"}, True),
    ({"type": "tool", "name": "get_weather"}, True), ({"type": "none"}, False)])
def test_tool_choice_on_cohere(gateway: GatewayServer, fake: FakeOCI, choice: Any,
                               offered: bool) -> None:
    """COHERE v1 has no toolChoice: ``none`` is said by not offering the tools."""
    extra = {"tool_choice": choice} if choice else {}
    post(gateway, tools=[WEATHER], messages=conversation(), **extra)
    req = chat(fake)
    assert ("tools" in req) is offered and "toolChoice" not in req
    assert len(req["toolResults"]) == 2  # the history's calls and results stay either way
