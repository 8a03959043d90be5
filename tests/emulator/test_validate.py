"""Body validation and per-model rules: each 400/404 names the offending field like OCI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator import FakeOCI
from tests.emulator.wire import (
    LLAMA,
    REQUEST_ID_RE,
    WEATHER_TOOL,
    Result,
    cohere_details,
    details,
    tool_with,
)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(body: dict) -> None:
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


_DELETE = object()
INVALID_GENERIC = [
    (_set("compartmentId", _DELETE), "compartmentId: required"),
    (_set("extra", 1), "extra: unknown property"),
    (_set("servingMode.servingType", "SERVERLESS"), "servingMode.servingType"),
    (_set("servingMode.modelId", _DELETE), "servingMode.modelId: required"),
    (_set("chatRequest.apiFormat", "OPENAI"), "chatRequest.apiFormat"),
    (_set("chatRequest.foo", True), "chatRequest.foo: unknown property"),
    (_set("chatRequest.messages.0.role", "user"), "chatRequest.messages[0].role"),
    (_set("chatRequest.messages.0.content.0.type", "text"),
     "chatRequest.messages[0].content[0].type"),
    (_set("chatRequest.messages.0.content.0.cache_control", {}),
     "chatRequest.messages[0].content[0].cache_control: unknown property"),
    (_set("chatRequest.messages.0.content.0.text", 5),
     "chatRequest.messages[0].content[0].text: expected string"),
    (_set("chatRequest.maxTokens", "100"), "chatRequest.maxTokens: expected integer"),
    (_set("chatRequest.maxTokens", True), "chatRequest.maxTokens: expected integer"),
    (_set("chatRequest.stop", "END"), "chatRequest.stop: expected array"),
    (_set("chatRequest.reasoningEffort", "high"), "chatRequest.reasoningEffort"),
    (_set("chatRequest.toolChoice", "auto"), "chatRequest.toolChoice: expected object"),
    (_set("chatRequest.toolChoice", {"type": "function", "function": {"name": "x"}}),
     "chatRequest.toolChoice.type"),
    (_set("chatRequest.toolChoice", {"type": "FUNCTION"}), "chatRequest.toolChoice.name"),
    (_set("chatRequest.streamOptions", {"includeUsage": True}),
     "chatRequest.streamOptions.includeUsage: unknown property"),
    (_set("chatRequest.responseFormat", {"type": "JSON_SCHEMA", "jsonSchema": {
        "name": "x", "schema": {}, "strict": True}}),
     "chatRequest.responseFormat.jsonSchema.strict: unknown property"),
    (_set("chatRequest.tools", [{**WEATHER_TOOL, "strict": True}]),
     "chatRequest.tools[0].strict: unknown property"),
    (_set("chatRequest.tools", [{"type": "function", "function": {}}]),
     "chatRequest.tools[0].type"),
    (_set("chatRequest.tools", [tool_with({"a": {"$ref": "#/$defs/A"}})]),
     "chatRequest.tools[0].parameters.properties.a.$ref"),
    (_set("chatRequest.tools", [{**WEATHER_TOOL, "parameters": {
        "type": "object", "$defs": {}, "properties": {}}}]),
     "chatRequest.tools[0].parameters.$defs"),
    (_set("chatRequest.tools", [tool_with({"a": {"type": "object", "properties": {
        "b": {"anyOf": [{"type": "array"}, {"type": "null"}]}}}})]),
     "chatRequest.tools[0].parameters.properties.a.properties.b.anyOf[0]: array schema"),
    (_set("chatRequest.tools", [tool_with({"tags": {"type": ["array", "null"]}})]),
     "chatRequest.tools[0].parameters.properties.tags: array schema must define items"),
    (_set("chatRequest.tools", [{**WEATHER_TOOL, "parameters": {"type": "string"}}]),
     "chatRequest.tools[0].parameters.type"),
    (_set("chatRequest.messages", [
        {"role": "USER", "content": [{"type": "TEXT", "text": "hi"}]},
        {"role": "ASSISTANT", "toolCalls": [{"id": "c1", "type": "FUNCTION", "name": "f",
                                              "arguments": {"a": 1}}]}]),
     "chatRequest.messages[1].toolCalls[0].arguments: expected string"),
    (_set("chatRequest.messages", [
        {"role": "USER", "content": [{"type": "TEXT", "text": "hi"}]},
        {"role": "ASSISTANT", "toolCalls": [{"id": "c1", "type": "FUNCTION", "name": "f",
                                              "arguments": "{not json"}]}]),
     "chatRequest.messages[1].toolCalls[0].arguments: must be a string containing JSON"),
    (_set("chatRequest.messages", [
        {"role": "TOOL", "content": [{"type": "TEXT", "text": "sunny"}]}]),
     "chatRequest.messages[0].toolCallId: required"),
    (_set("chatRequest.messages", [
        {"role": "USER", "content": [{"type": "IMAGE", "imageUrl": {"uri": "x"}}]}]),
     "chatRequest.messages[0].content[0].imageUrl.uri: unknown property"),
]


@pytest.mark.parametrize(("mutate", "expected"), INVALID_GENERIC,
                         ids=[e for _, e in INVALID_GENERIC])
def test_generic_validation_errors(chat: Callable[..., Result], mutate: Callable,
                                   expected: str) -> None:
    body = details()
    mutate(body)
    result = chat(body)
    assert result.status == 400, result.raw
    assert result.json()["code"] == "400"
    assert expected in result.json()["message"]
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])


def test_valid_full_generic_request_passes(chat: Callable[..., Result]) -> None:
    # The SDK's own captured serialization (reference §5) must be accepted.
    body = details(
        "meta.llama-4-maverick-17b-128e-instruct-fp8",
        [{"role": "SYSTEM", "content": [{"type": "TEXT", "text": "be brief"}]},
         {"role": "USER", "content": [{"type": "TEXT", "text": "hi"}, {
             "type": "IMAGE", "imageUrl": {"url": "data:image/png;base64,AAAA"}}]},
         {"role": "ASSISTANT", "toolCalls": [{"id": "call_1", "type": "FUNCTION",
                                              "name": "get_weather",
                                              "arguments": "{\"city\":\"Paris\"}"}]},
         {"role": "TOOL", "content": [{"type": "TEXT", "text": "sunny"}],
          "toolCallId": "call_1"}],
        seed=7, topK=-1, topP=0.9, temperature=0.5, stop=["\n\n"], maxTokens=100,
        responseFormat={"type": "JSON_SCHEMA", "jsonSchema": {
            "name": "x", "schema": {"type": "object"}, "isStrict": True}},
        toolChoice={"type": "AUTO"}, isParallelToolCalls=False,
        tools=[tool_with({"city": {"type": "string"},
                           "days": {"type": "array", "items": {"type": "integer"}},
                           "definitions": {"type": "string"}})],  # a property, not $defs
    )
    result = chat(body)
    assert result.status == 200, result.raw


INVALID_COHERE = [
    (_set("chatRequest.message", _DELETE), "chatRequest.message: required"),
    (_set("chatRequest.toolChoice", {"type": "AUTO"}), "chatRequest.toolChoice: unknown"),
    (_set("chatRequest.chatHistory", [{"role": "USER", "text": "q"}]),
     "chatRequest.chatHistory[0].text: unknown property"),
    (_set("chatRequest.chatHistory", [{"role": "ASSISTANT", "message": "q"}]),
     "chatRequest.chatHistory[0].role"),
    (_set("chatRequest.tools", [{"name": "t", "description": "d", "parameterDefinitions": {
        "a": {"type": "List", "isRequired": True}}}]),
     "chatRequest.tools[0].parameterDefinitions.a.type"),
    (_set("chatRequest.tools", [{"name": "t", "description": "d", "parameterDefinitions": {
        "a": {"type": "str", "required": True}}}]),
     "chatRequest.tools[0].parameterDefinitions.a.required: unknown property"),
    (_set("chatRequest.toolResults", [{"call": {"name": "t", "parameters": {}}}]),
     "chatRequest.toolResults[0].outputs: required"),
    (_set("chatRequest.toolResults", [{"call": {"name": "t", "parameters": {}},
                                       "outputs": [], "id": "x"}]),
     "chatRequest.toolResults[0].id: unknown property"),
]


@pytest.mark.parametrize(("mutate", "expected"), INVALID_COHERE,
                         ids=[e for _, e in INVALID_COHERE])
def test_cohere_validation_errors(chat: Callable[..., Result], mutate: Callable,
                                  expected: str) -> None:
    body = cohere_details()
    mutate(body)
    result = chat(body)
    assert result.status == 400, result.raw
    assert expected in result.json()["message"]


def test_valid_cohere_request_passes(chat: Callable[..., Result]) -> None:
    body = cohere_details(
        "hello",
        chatHistory=[{"role": "USER", "message": "q"},
                     {"role": "CHATBOT", "message": "a",
                      "toolCalls": [{"name": "t", "parameters": {"a": 1}}]},
                     {"role": "TOOL", "toolResults": [{"call": {"name": "t", "parameters": {
                         "a": 1}}, "outputs": [{"r": 2}]}]},
                     {"role": "CHATBOT", "message": "r is 2"}],  # TOOL is followed by CHATBOT
        preambleOverride="pre", maxTokens=10,
        tools=[{"name": "t", "description": "d", "parameterDefinitions": {
            "a": {"description": "x", "type": "int", "isRequired": True}}}])
    body["servingMode"] = {"servingType": "DEDICATED",
                           "endpointId": "ocid1.generativeaiendpoint.oc1.us-chicago-1.xyz"}
    result = chat(body)
    assert result.status == 200, result.raw
    assert result.json()["chatResponse"]["apiFormat"] == "COHERE"


def test_invalid_json_body(chat: Callable[..., Result]) -> None:
    result = chat(b"{not json")
    assert result.status == 400


@pytest.mark.parametrize(("model", "fields", "messages", "expected"), [
    (LLAMA, {}, [{"role": "USER", "content": [
        {"type": "TEXT", "text": "see"},
        {"type": "IMAGE", "imageUrl": {"url": "data:image/png;base64,AAAA"}}]}],
     "chatRequest.messages[0].content[1]"),
    (LLAMA, {}, [{"role": "USER", "content": [
        {"type": "DOCUMENT", "documentUrl": {"url": "data:application/pdf;base64,AA"}}]}],
     "chatRequest.messages[0].content[0]"),
    ("xai.grok-4-fast-non-reasoning", {"reasoningEffort": "LOW"}, None,
     "Model grok-4-fast-non-reasoning does not support parameter reasoningEffort"),
    (LLAMA, {"reasoningEffort": "LOW"}, None, "chatRequest.reasoningEffort"),
    ("openai.gpt-5", {"maxTokens": 100}, None, "'maxTokens' is not supported"),
    ("cohere.command-a-03-2025", {}, None, "Chat request type does not match serving model."),
])
def test_per_model_rules(chat: Callable[..., Result], model: str, fields: dict,
                         messages: list | None, expected: str) -> None:
    result = chat(details(model, messages, **fields))
    assert result.status == 400, result.raw
    assert expected in result.json()["message"]


def test_cohere_request_to_generic_model(chat: Callable[..., Result]) -> None:
    result = chat(cohere_details("hi", model=LLAMA))
    assert result.status == 400
    assert result.json()["message"] == "Chat request type does not match serving model."


@pytest.mark.parametrize(("model", "fields", "messages"), [
    ("meta.llama-4-maverick-17b-128e-instruct-fp8", {}, [{"role": "USER", "content": [
        {"type": "IMAGE", "imageUrl": {"url": "data:image/png;base64,AAAA"}}]}]),
    ("google.gemini-2.5-pro", {"reasoningEffort": "HIGH"}, [{"role": "USER", "content": [
        {"type": "DOCUMENT", "documentUrl": {"url": "data:application/pdf;base64,AA"}}]}]),
    ("xai.grok-3-mini", {"reasoningEffort": "HIGH"}, None),
    ("openai.gpt-5", {"maxCompletionTokens": 100, "reasoningEffort": "MINIMAL"}, None),
    ("openai.gpt-oss-120b", {"maxTokens": 100, "reasoningEffort": "LOW"}, None),
])
def test_per_model_rules_accept(chat: Callable[..., Result], model: str, fields: dict,
                                messages: list | None) -> None:
    assert chat(details(model, messages, **fields)).status == 200


def test_unknown_model_is_404(chat: Callable[..., Result]) -> None:
    result = chat(details("meta.llama-99-imaginary"))
    assert result.status == 404
    assert result.json() == {"code": "404",
                             "message": "Authorization failed or requested resource not found."}
    assert result.headers["content-type"] == "application/json"


def test_dedicated_endpoints(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    body = details(stream=True)
    body["servingMode"] = {"servingType": "DEDICATED",
                           "endpointId": "ocid1.generativeaiendpoint.oc1.us-chicago-1.aaa"}
    assert chat(body).events()[-1] == "[DONE]"  # default: Llama style
    fake.catalog.register_endpoint("ocid1.generativeaiendpoint.oc1.us-chicago-1.gem",
                                   "google.gemini-2.5-flash")
    body["servingMode"]["endpointId"] = "ocid1.generativeaiendpoint.oc1.us-chicago-1.gem"
    events = chat(body).events()
    assert events[-1] != "[DONE]" and events[0]["message"]["content"] == [{"type": "TEXT"}]
    body["servingMode"]["endpointId"] = "ocid1.somethingelse.oc1..x"
    assert chat(body).status == 404
