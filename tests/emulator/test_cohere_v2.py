"""COHEREV2 (CohereChatRequestV2 / CohereChatResponseV2) for Command A Vision and Reasoning.

RW §2: those models take COHEREV2, GENERIC is refused with "Chat request type does not match
serving model.", v1 reaches Vision (which then ignores images) but not Reasoning. Requests are
validated against the SDK 2.189.0 schema; answers are checked against the SDK's own model
classes (deserialised by the real client) as well as field by field.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import oci
import pytest

from emulator import FakeOCI, Scenario, TestKey, inline_marker, tool_call
from emulator.tokens import ceil4
from tests.emulator.wire import (
    REASONING_V2,
    VISION_V2,
    Result,
    assert_padded,
    cohere_details,
    details,
    v2_details,
    v2_text,
)

V2_TOOL = {"type": "FUNCTION", "function": {
    "name": "get_weather", "description": "w",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
IMAGE = {"type": "IMAGE_URL", "imageUrl": {"url": "data:image/png;base64,AAAA", "detail": "AUTO"}}


def full_history() -> list[dict[str, Any]]:
    call = {"id": "get_weather_abc123def456", "type": "FUNCTION",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    return [
        {"role": "SYSTEM", "content": v2_text("be brief")},
        {"role": "USER", "content": [*v2_text("what is this?"), IMAGE,
                                     {"type": "IMAGE_URL", "imageUrl": {
                                         "url": "https://example.com/cat.png"}}]},
        {"role": "ASSISTANT", "content": [], "toolPlan": "I will look up the weather.",
         "toolCalls": [call]},
        {"role": "TOOL", "toolCallId": call["id"], "content": [
            *v2_text("sunny"), {"type": "DOCUMENT", "document": {"data": "22C"}}]},
        {"role": "ASSISTANT", "content": [{"type": "THINKING", "thinking": "ok"},
                                          *v2_text("Sunny.")]},
        {"role": "USER", "content": v2_text("thanks, and tomorrow?")},
    ]


def test_full_v2_request_is_accepted(chat: Callable[..., Result]) -> None:
    body = v2_details(VISION_V2, full_history(), tools=[V2_TOOL], toolsChoice="NONE",
                      maxTokens=500, temperature=0.3, topP=0.9, topK=40, seed=7,
                      stopSequences=["END"], frequencyPenalty=0.1, presencePenalty=0.1,
                      isStrictToolsEnabled=True, citationOptions={"mode": "FAST"},
                      safetyMode="CONTEXTUAL", priority=0, documents=[{"text": "doc"}],
                      responseFormat={"type": "TEXT"}, streamOptions={"isIncludeUsage": True})
    result = chat(body)
    assert result.status == 200, result.raw
    assert result.json()["chatResponse"]["apiFormat"] == "COHEREV2"
    thinking = v2_details(REASONING_V2, thinking={"type": "ENABLED", "tokenBudget": 2000})
    assert chat(thinking).status == 200


def _mutated(path: str, value: Any) -> dict:
    body = copy.deepcopy(v2_details(VISION_V2, full_history(), tools=[V2_TOOL]))
    node: Any = body["chatRequest"]
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    slot: Any = int(last) if last.isdigit() else last
    if value is None:
        del node[slot]
    else:
        node[slot] = value
    return body


INVALID_V2 = [
    ("messages", None, "chatRequest.messages: required"),
    ("message", "hi", "chatRequest.message: unknown property"),
    ("messages.0.role", "CHATBOT", "chatRequest.messages[0].role"),
    ("messages.0.content", None, "chatRequest.messages[0].content: required"),
    ("messages.1.content.1.type", "IMAGE", "chatRequest.messages[1].content[1].type"),
    ("messages.1.content.1.image_url", {}, "image_url: unknown property"),
    ("messages.2.toolCalls.0.name", "x", "chatRequest.messages[2].toolCalls[0].name: unknown"),
    ("messages.2.toolCalls.0.function.arguments", {"city": "Paris"},
     "toolCalls[0].function.arguments: expected string"),
    ("messages.3.toolCallId", None, "chatRequest.messages[3].toolCallId: required"),
    ("tools.0", {"type": "FUNCTION", "name": "get_weather", "parameters": {}},
     "chatRequest.tools[0].name: unknown property"),
    ("tools.0.function.parameters", None, "chatRequest.tools[0].function.parameters: required"),
    ("toolsChoice", "AUTO", "chatRequest.toolsChoice: invalid value"),
    ("toolChoice", {"type": "AUTO"}, "chatRequest.toolChoice: unknown property"),
    ("thinking", {"type": "enabled"}, "chatRequest.thinking.type: invalid value"),
    ("thinking", {"tokenBudget": 100}, "chatRequest.thinking.type: required"),
    ("reasoningEffort", "LOW", "chatRequest.reasoningEffort: unknown property"),
]


@pytest.mark.parametrize(("path", "value", "expected"), INVALID_V2,
                         ids=[e for *_, e in INVALID_V2])
def test_v2_validation_errors(chat: Callable[..., Result], path: str, value: Any,
                              expected: str) -> None:
    result = chat(_mutated(path, value))
    assert result.status == 400, result.raw
    assert expected in result.json()["message"]


def test_tools_choice_required_needs_tools(chat: Callable[..., Result]) -> None:
    result = chat(v2_details(toolsChoice="REQUIRED"))
    assert result.status == 400
    assert result.json()["message"].startswith("chatRequest.toolsChoice:")
    assert chat(v2_details(toolsChoice="REQUIRED", tools=[V2_TOOL])).status == 200


MISMATCH = "Chat request type does not match serving model."


@pytest.mark.parametrize(("body", "status"), [
    (details(VISION_V2), 400),
    (details(REASONING_V2), 400),
    (cohere_details("hi", model=REASONING_V2), 400),
    (cohere_details("hi", model=VISION_V2), 200),  # v1 reaches Vision, without images
    (v2_details("cohere.command-a-03-2025"), 400),
    (v2_details("meta.llama-3.3-70b-instruct"), 400),
])
def test_api_format_per_model(chat: Callable[..., Result], body: dict, status: int) -> None:
    result = chat(body)
    assert result.status == status, result.raw
    if status == 400:
        assert result.json() == {"code": "400", "message": MISMATCH}


def test_images_need_the_vision_model(chat: Callable[..., Result]) -> None:
    messages = [{"role": "USER", "content": [*v2_text("see"), IMAGE]}]
    result = chat(v2_details(REASONING_V2, messages))
    assert result.status == 400
    assert result.json()["message"].startswith("chatRequest.messages[0].content[1]: model")


def test_dedicated_endpoint_defaults_to_a_v2_model(chat: Callable[..., Result]) -> None:
    body = v2_details()
    body["servingMode"] = {"servingType": "DEDICATED",
                           "endpointId": "ocid1.generativeaiendpoint.oc1.us-chicago-1.v2"}
    assert chat(body).json()["modelId"] == VISION_V2


# --- answers ------------------------------------------------------------------------------

def _response(result: Result) -> dict:
    assert result.status == 200, result.raw
    assert result.headers["content-type"] == "application/json"
    return result.json()["chatResponse"]


def test_json_text_and_thinking(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="It is sunny.", reasoning="Check the forecast."))
    response = _response(chat(v2_details(REASONING_V2)))
    assert response["apiFormat"] == "COHEREV2"
    assert re.fullmatch(r"[0-9a-f-]{36}", response["id"])
    assert response["message"] == {"role": "ASSISTANT", "content": [
        {"type": "THINKING", "thinking": "Check the forecast."},
        {"type": "TEXT", "text": "It is sunny."}]}
    assert response["finishReason"] == "COMPLETE"
    assert response["usage"] == {"promptTokens": 4 + ceil4("hello there"),
                                 "completionTokens": ceil4("It is sunny.Check the forecast."),
                                 "totalTokens": 4 + ceil4("hello there")
                                 + ceil4("It is sunny.Check the forecast.")}


def test_json_tool_calls(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(tool_plan="I will check the weather.",
                       tool_calls=[tool_call("get_weather", {"city": "Paris"}),
                                   tool_call("get_weather", {"city": "Rome"}, id="mine")]))
    response = _response(chat(v2_details(tools=[V2_TOOL])))
    message = response["message"]
    assert message["content"] == [] and message["toolPlan"] == "I will check the weather."
    first, second = message["toolCalls"]
    assert re.fullmatch(r"get_weather_[a-z0-9]{12}", first["id"])
    assert first["type"] == "FUNCTION"
    assert first["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert second["id"] == "mine"
    assert response["finishReason"] == "TOOL_CALL"
    assert response["usage"]["completionTokens"] == ceil4(
        'I will check the weather.{"city":"Paris"}{"city":"Rome"}')


@pytest.mark.parametrize(("scenario", "finish"), [
    (Scenario(text="one two END three", stop_sequence_hit="END"), "STOP_SEQUENCE"),
    (Scenario(text="partial", finish_reason="length"), "MAX_TOKENS"),
    (Scenario(text="bad", finish_reason="error"), "ERROR"),
])
def test_json_finish_reasons(fake: FakeOCI, chat: Callable[..., Result], scenario: Scenario,
                             finish: str) -> None:
    fake.push(scenario)
    response = _response(chat(v2_details(stopSequences=["END"])))
    assert response["finishReason"] == finish
    if finish == "STOP_SEQUENCE":
        assert response["message"]["content"] == v2_text("one two ")


def test_stream(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="Sunny in Paris.", reasoning="Let me think about it.",
                       tool_plan="Look it up.",
                       tool_calls=[tool_call("get_weather", {"city": "Paris"})]))
    result = chat(v2_details(REASONING_V2, stream=True, tools=[V2_TOOL],
                             streamOptions={"isIncludeUsage": True}))
    assert result.status == 200 and result.headers["content-type"] == "text/event-stream"
    events = result.events()
    assert_padded(events)
    assert "[DONE]" not in events
    assert all(e["apiFormat"] == "COHEREV2" and e["message"]["role"] == "ASSISTANT"
               for e in events)
    *deltas, terminal = events
    parts = [p for e in deltas for p in e["message"].get("content", [])]
    thinking = [p["thinking"] for p in parts if p["type"] == "THINKING"]
    texts = [p["text"] for p in parts if p["type"] == "TEXT"]
    assert len(thinking) >= 2 and "".join(thinking) == "Let me think about it."
    assert "".join(texts) == "Sunny in Paris."
    assert "".join(e["message"].get("toolPlan", "") for e in deltas) == "Look it up."
    kinds = [e["message"]["content"][0]["type"] if "content" in e["message"]
             else next(iter(set(e["message"]) - {"role"})) for e in deltas]
    assert [k for i, k in enumerate(kinds) if k not in kinds[:i]] == [
        "THINKING", "toolPlan", "TEXT", "toolCalls"]  # each kind in one run, in this order
    assert kinds == sorted(kinds, key=["THINKING", "toolPlan", "TEXT", "toolCalls"].index)
    calls = [c for e in deltas for c in e["message"].get("toolCalls", [])]
    start, *fragments = calls
    assert re.fullmatch(r"get_weather_[a-z0-9]{12}", start["id"])
    assert start["function"] == {"name": "get_weather", "arguments": ""}
    assert all(set(f) == {"type", "function"} for f in fragments) and len(fragments) >= 2
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {
        "city": "Paris"}
    assert terminal["message"] == {"role": "ASSISTANT"}
    assert terminal["finishReason"] == "TOOL_CALL"
    assert terminal["usage"]["completionTokens"] == ceil4(
        'Sunny in Paris.Let me think about it.Look it up.{"city":"Paris"}')


def test_stream_text_only(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="abcdefghij", chunks=5, include_usage_event=False))
    events = chat(v2_details(stream=True)).events()
    texts = [p["text"] for e in events for p in e["message"].get("content", [])]
    assert texts == ["ab", "cd", "ef", "gh", "ij"]
    assert events[-1]["finishReason"] == "COMPLETE" and "usage" not in events[-1]


def test_prompt_token_rule(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    tools = [V2_TOOL]
    body = chat(v2_details(VISION_V2, full_history(), tools=tools)).json()
    compact = json.dumps(V2_TOOL, separators=(",", ":"), ensure_ascii=False)
    expected = (6 * 4 + ceil4("be brief") + ceil4("what is this?") + 2 * 85
                + ceil4("I will look up the weather.") + ceil4('{"city": "Paris"}')
                + ceil4("sunny") + ceil4('{"data":"22C"}') + ceil4("ok") + ceil4("Sunny.")
                + ceil4("thanks, and tomorrow?") + ceil4(compact))
    assert body["chatResponse"]["usage"]["promptTokens"] == expected


def test_scripting_routes_on_v2_user_text(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="matched", match="needle"))
    body = chat(v2_details(text="find the needle")).json()
    assert body["chatResponse"]["message"]["content"] == v2_text("matched")
    marker = inline_marker({"text": "inline v2"})
    body = chat(v2_details(text=f"go {marker}")).json()
    assert body["chatResponse"]["message"]["content"] == v2_text("inline v2")
    default = chat(v2_details(text="plain")).json()["chatResponse"]["message"]["content"]
    assert default == v2_text(f"Hello from {VISION_V2}: plain")


def test_real_sdk_client_reads_v2_answers(fake: FakeOCI, key: TestKey) -> None:
    config = oci.config.from_file(str(key.config_path))
    client = oci.generative_ai_inference.GenerativeAiInferenceClient(
        config, service_endpoint=fake.url, retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    models = oci.generative_ai_inference.models
    request = models.CohereChatRequestV2(
        messages=[models.CohereUserMessageV2(content=[models.CohereTextContentV2(text="hi")])],
        tools=[models.CohereToolV2(type="FUNCTION", function=models.Function(
            name="get_weather", parameters={"type": "object"}))],
        thinking=models.CohereThinkingV2(type="ENABLED", token_budget=100),
        max_tokens=100, is_stream=False)
    chat_details = models.ChatDetails(
        compartment_id="ocid1.compartment.oc1..test", chat_request=request,
        serving_mode=models.OnDemandServingMode(model_id=REASONING_V2))
    fake.push(Scenario(text="from v2", reasoning="thought",
                       tool_calls=[tool_call("get_weather", {"city": "Oslo"})]))
    result = client.chat(chat_details).data
    response = result.chat_response
    assert isinstance(response, models.CohereChatResponseV2)
    assert response.finish_reason == "TOOL_CALL"
    assert [type(c).__name__ for c in response.message.content] == [
        "CohereThinkingContentV2", "CohereTextContentV2"]
    assert response.message.content[1].text == "from v2"
    assert response.message.tool_calls[0].function == {"name": "get_weather",
                                                       "arguments": '{"city":"Oslo"}'}
    assert response.usage.total_tokens > 0
