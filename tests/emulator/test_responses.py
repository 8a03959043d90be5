"""Non-streaming answers (GENERIC and COHERE ChatResult) and the prompt-token rule."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from emulator import FakeOCI, Scenario, tool_call
from emulator.tokens import ceil4
from tests.emulator.wire import Result, cohere_details, details, tool_scenario, tool_with


def test_generic_json_response_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(tool_scenario())
    result = chat(details("openai.gpt-oss-120b"))
    assert result.headers["content-type"] == "application/json"
    body = result.json()
    assert body["modelId"] == "openai.gpt-oss-120b" and body["modelVersion"]
    response = body["chatResponse"]
    assert response["apiFormat"] == "GENERIC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", response["timeCreated"])
    choice = response["choices"][0]
    assert choice["index"] == 0 and choice["finishReason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "ASSISTANT"
    assert message["content"] == [{"type": "TEXT", "text": "Let me check."}]
    assert message["reasoningContent"] == "The user wants weather data."
    assert [c["name"] for c in message["toolCalls"]] == ["get_weather", "get_time"]
    assert json.loads(message["toolCalls"][0]["arguments"]) == {"city": "Paris", "unit": "C"}
    usage = response["usage"]
    assert usage["completionTokensDetails"]["reasoningTokens"] == ceil4(
        "The user wants weather data.")
    assert usage["promptTokensDetails"] == {"cachedTokens": 0}
    expected = ceil4("Let me check." + "The user wants weather data."
                     + '{"city":"Paris","unit":"C"}' + '{"tz":"Europe/Paris"}')
    assert usage["completionTokens"] == expected


def test_gemini_json_tool_calls_have_no_id(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(tool_calls=[tool_call("f", {"a": 1})]))
    message = chat(details("google.gemini-2.5-flash")).json()["chatResponse"]["choices"][0][
        "message"]
    assert "content" not in message
    assert message["toolCalls"] == [{"type": "FUNCTION", "name": "f", "arguments": '{"a":1}'}]


def test_cohere_json_response_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="It is sunny", tool_calls=[tool_call("t", {"a": 1})]))
    body = chat(cohere_details("q?", chatHistory=[{"role": "USER", "message": "earlier"}])
                ).json()
    response = body["chatResponse"]
    assert body["modelId"] == "cohere.command-a-03-2025"
    assert response["apiFormat"] == "COHERE"
    assert response["text"] == "It is sunny"
    assert response["finishReason"] == "COMPLETE"
    assert response["toolCalls"] == [{"name": "t", "parameters": {"a": 1}}]
    assert response["chatHistory"][0] == {"role": "USER", "message": "earlier"}
    assert response["usage"]["promptTokens"] == (4 + ceil4("q?")) + (4 + ceil4("earlier"))


def test_prompt_token_rule(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    tool = tool_with({"city": {"type": "string"}})
    messages = [
        {"role": "SYSTEM", "content": [{"type": "TEXT", "text": "be brief"}]},
        {"role": "USER", "content": [{"type": "TEXT", "text": "what is this?"}, {
            "type": "IMAGE", "imageUrl": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "ASSISTANT", "toolCalls": [{"id": "c1", "type": "FUNCTION", "name": "f",
                                             "arguments": '{"q": "x"}'}]},
        {"role": "TOOL", "toolCallId": "c1", "content": [{"type": "TEXT", "text": "result!"}]},
    ]
    body = chat(details("xai.grok-4", messages, tools=[tool])).json()
    compact_tool = json.dumps(tool, separators=(",", ":"), ensure_ascii=False)
    expected = (4 * 4 + ceil4("be brief") + ceil4("what is this?") + 85
                + ceil4('{"q": "x"}') + ceil4("result!") + ceil4(compact_tool))
    assert body["chatResponse"]["usage"]["promptTokens"] == expected
