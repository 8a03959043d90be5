"""Tests of the OCI GenAI emulator (emulator/) through real HTTP.

Requests are signed with the real ``oci.signer.Signer`` (duck-typed request object, as the
gateway does it) and sent with aiohttp, so these tests also pin down the wire contract the
gateway's own tests rely on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import oci
import pytest

from devtools.procs import EmulatorProcess, wait_until
from emulator import (
    CHAT_PATH,
    FakeOCI,
    Scenario,
    TestKey,
    error_scenario,
    inline_marker,
    make_test_key,
    tool_call,
)
from emulator.tokens import ceil4

LLAMA = "meta.llama-3.3-70b-instruct"
NOT_AUTHENTICATED = {
    "code": "NotAuthenticated",
    "message": "The required information to complete authentication was not provided or was "
    "incorrect.",
}
REQUEST_ID_RE = re.compile(r"^[^/]+/[0-9A-F]{32}/[0-9A-F]{32}$")


# --- signing and HTTP helpers ---------------------------------------------------------------


class SignTarget:
    """What an oci signer reads and mutates (a duck-typed requests.PreparedRequest)."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.url, self.body = method, url, body
        self.headers = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(url)
        self.path_url = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def make_signer(key: TestKey) -> oci.signer.Signer:
    return oci.signer.Signer(key.tenancy, key.user, key.fingerprint,
                             private_key_file_location=str(key.private_key_path))


def signed_headers(signer: Any, url: str, body: bytes,
                   extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "content-length": str(len(body)),
               **(extra or {})}
    target = SignTarget("POST", url, headers, body)
    signer(target)
    return target.headers


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def events(self) -> list[Any]:
        return parse_sse(self.raw)


def parse_sse(raw: bytes) -> list[Any]:
    """Each ``data:`` line is one event (JSON, or the string ``[DONE]``)."""
    events: list[Any] = []
    for line in raw.decode("utf-8").split("\n"):
        if not line.startswith("data:"):
            assert line == "", f"unexpected SSE line {line!r}"
            continue
        data = line[len("data:"):].strip()
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def _send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Result:
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=body, headers=headers
    ) as resp:
        raw = await resp.read()
        return Result(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw)


def send(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Result:
    return asyncio.run(_send(method, url, body, headers or {}))


def details(model: str = LLAMA, messages: list[dict] | None = None, *, stream: bool = False,
            include_usage: bool = False, text: str = "hello there", **fields: Any) -> dict:
    chat: dict[str, Any] = {
        "apiFormat": "GENERIC",
        "messages": messages or [{"role": "USER", "content": [{"type": "TEXT", "text": text}]}],
        "isStream": stream,
    }
    if include_usage:
        chat["streamOptions"] = {"isIncludeUsage": True}
    chat.update(fields)
    return {"compartmentId": "ocid1.compartment.oc1..test",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": model},
            "chatRequest": chat}


def cohere_details(message: str = "hello", *, stream: bool = False, model: str =
                   "cohere.command-a-03-2025", **fields: Any) -> dict:
    chat = {"apiFormat": "COHERE", "message": message, "isStream": stream, **fields}
    return {"compartmentId": "ocid1.compartment.oc1..test",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": model},
            "chatRequest": chat}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    return make_test_key(tmp_path_factory.mktemp("oci-key"))


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    return make_test_key(tmp_path_factory.mktemp("other-key"))


@pytest.fixture(scope="module")
def signer(key: TestKey) -> Any:
    return make_signer(key)


@pytest.fixture(scope="module")
def server(key: TestKey):
    with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOCI) -> FakeOCI:
    server.reset()
    return server


@pytest.fixture
def chat(fake: FakeOCI, signer: Any) -> Callable[..., Result]:
    """POST a signed ChatDetails dict to the fake's chat endpoint."""

    def post(body: dict | bytes, extra_headers: dict[str, str] | None = None) -> Result:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = fake.url + CHAT_PATH
        return send("POST", url, raw, signed_headers(signer, url, raw, extra_headers))

    return post


def text_of(events: list[Any]) -> str:
    """Concatenate GENERIC text the way a correct client does (finish event included)."""
    out = []
    for event in events:
        if isinstance(event, dict):
            for part in event.get("message", {}).get("content", []) or []:
                out.append(part.get("text", ""))
    return "".join(out)


def assert_padded(events: list[Any]) -> None:
    for event in events:
        if isinstance(event, dict):
            assert re.fullmatch("a+", event["pad"]), event


# --- keys and signatures --------------------------------------------------------------------


def test_make_test_key_writes_usable_oci_config(key: TestKey) -> None:
    config = oci.config.from_file(str(key.config_path))
    oci.config.validate_config(config)
    assert config["fingerprint"] == key.fingerprint
    assert key.key_id == f"{key.tenancy}/{key.user}/{key.fingerprint}"
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", key.fingerprint)
    assert key.private_key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key.public_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_good_signature_passes(chat: Callable[..., Result]) -> None:
    result = chat(details(), {"opc-request-id": "CLIENTREQ1"})
    assert result.status == 200, result.raw
    assert result.headers["content-type"] == "application/json"
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])
    assert result.headers["opc-request-id"].startswith("CLIENTREQ1/")


def test_wrong_key_is_rejected(fake: FakeOCI, key: TestKey, other_key: TestKey) -> None:
    # Same keyId as the registered key, but signed with a different private key.
    forger = oci.signer.Signer(key.tenancy, key.user, key.fingerprint,
                               private_key_file_location=str(other_key.private_key_path))
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    result = send("POST", url, body, signed_headers(forger, url, body, {"opc-request-id": "X1"}))
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED
    assert result.headers["content-type"] == "application/json"
    assert result.headers["opc-request-id"].startswith("X1/")
    assert fake.requests[-1].status == 401  # rejected requests are recorded too


def test_unknown_key_id_is_rejected(fake: FakeOCI, other_key: TestKey) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    result = send("POST", url, body, signed_headers(make_signer(other_key), url, body))
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED


def test_tampered_body_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details(text="hello")).encode()
    headers = signed_headers(signer, url, body)
    tampered = body.replace(b"hello", b"HELLO")
    assert send("POST", url, tampered, headers).status == 401


def test_tampered_sha_header_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details(text="hello")).encode()
    headers = signed_headers(signer, url, body)
    tampered = body.replace(b"hello", b"HELLO")
    headers["x-content-sha256"] = base64.b64encode(hashlib.sha256(tampered).digest()).decode()
    assert send("POST", url, tampered, headers).status == 401


@pytest.mark.parametrize("header", ["date", "x-content-sha256", "authorization", "content-type"])
def test_missing_header_is_rejected(fake: FakeOCI, signer: Any, header: str) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    headers = signed_headers(signer, url, body)
    del headers[header]
    if header == "content-type":
        headers["content-type"] = "text/plain"  # aiohttp would add its own otherwise
    result = send("POST", url, body, headers)
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED


def test_signature_without_body_headers_is_rejected(fake: FakeOCI, key: TestKey) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    target = SignTarget("POST", url, {"content-type": "application/json"}, body)
    make_signer(key).without_content_headers(target)  # signs only date, target, host
    assert 'headers="date (request-target) host"' in target.headers["authorization"]
    assert send("POST", url, body, target.headers).status == 401


def test_stale_date_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    stale = formatdate(time.time() - 600, usegmt=True)
    headers = signed_headers(signer, url, body, {"date": stale})
    assert headers["date"] == stale
    assert send("POST", url, body, headers).status == 401


def test_accept_any_key_and_no_verify_modes(key: TestKey, other_key: TestKey) -> None:
    body = json.dumps(details()).encode()
    with FakeOCI(accept_any_key_pem=other_key.public_pem) as fake:
        url = fake.url + CHAT_PATH
        assert send("POST", url, body, signed_headers(make_signer(other_key), url, body)
                    ).status == 200
        assert send("POST", url, body, signed_headers(make_signer(key), url, body)
                    ).status == 401
    with FakeOCI(verify_signatures=False) as fake:
        assert send("POST", fake.url + CHAT_PATH, body,
                    {"content-type": "application/json"}).status == 200


def test_other_paths_answer_oci_404(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + "/20231130/actions/embedText"
    body = b"{}"
    result = send("POST", url, body, signed_headers(signer, url, body))
    assert result.status == 404
    assert result.json()["code"] == "NotAuthorizedOrNotFound"


# --- validation -----------------------------------------------------------------------------


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
WEATHER_TOOL = {"type": "FUNCTION", "name": "get_weather", "description": "w",
                "parameters": {"type": "object",
                               "properties": {"city": {"type": "string"}}}}


def _tool_with(schema_props: dict) -> dict:
    return {**WEATHER_TOOL, "parameters": {"type": "object", "properties": schema_props}}


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
    (_set("chatRequest.tools", [_tool_with({"a": {"$ref": "#/$defs/A"}})]),
     "chatRequest.tools[0].parameters.properties.a.$ref"),
    (_set("chatRequest.tools", [{**WEATHER_TOOL, "parameters": {
        "type": "object", "$defs": {}, "properties": {}}}]),
     "chatRequest.tools[0].parameters.$defs"),
    (_set("chatRequest.tools", [_tool_with({"a": {"type": "object", "properties": {
        "b": {"anyOf": [{"type": "array"}, {"type": "null"}]}}}})]),
     "chatRequest.tools[0].parameters.properties.a.properties.b.anyOf[0]: array schema"),
    (_set("chatRequest.tools", [_tool_with({"tags": {"type": ["array", "null"]}})]),
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
        tools=[_tool_with({"city": {"type": "string"},
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
                         "a": 1}}, "outputs": [{"r": 2}]}]}],
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
     "chatRequest.reasoningEffort"),
    (LLAMA, {"reasoningEffort": "LOW"}, None, "chatRequest.reasoningEffort"),
    ("openai.gpt-5", {"maxTokens": 100}, None, "chatRequest.maxTokens"),
    ("cohere.command-a-03-2025", {}, None, "chatRequest.apiFormat"),
])
def test_per_model_rules(chat: Callable[..., Result], model: str, fields: dict,
                         messages: list | None, expected: str) -> None:
    result = chat(details(model, messages, **fields))
    assert result.status == 400, result.raw
    assert expected in result.json()["message"]


def test_cohere_request_to_generic_model(chat: Callable[..., Result]) -> None:
    result = chat(cohere_details("hi", model=LLAMA))
    assert result.status == 400
    assert "chatRequest.apiFormat" in result.json()["message"]


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


# --- streaming styles -----------------------------------------------------------------------


def _tool_scenario(**kwargs: Any) -> Scenario:
    return Scenario(text="Let me check.", reasoning="The user wants weather data.",
                    tool_calls=[tool_call("get_weather", {"city": "Paris", "unit": "C"}),
                                tool_call("get_time", {"tz": "Europe/Paris"})], **kwargs)


def _stream(fake: FakeOCI, chat: Callable[..., Result], model: str, scenario: Scenario,
            include_usage: bool = True) -> Result:
    fake.push(scenario)
    effort = {"reasoningEffort": "LOW"} if model != LLAMA else {}
    result = chat(details(model, stream=True, include_usage=include_usage, **effort))
    assert result.status == 200, result.raw
    assert result.headers["content-type"] == "text/event-stream"
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])
    assert result.raw.endswith(b"\n")
    return result


def test_llama_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, LLAMA, _tool_scenario()).events()
    assert_padded(events)
    assert events[0]["message"]["content"] == [{"type": "TEXT", "text": ""}]
    assert events[-1] == "[DONE]"
    usage, finish = events[-2], events[-3]
    assert set(usage) == {"usage", "pad"}
    assert finish["finishReason"] == "tool_calls" and "index" not in finish
    assert finish["message"]["toolCalls"] == [{"type": "FUNCTION", "arguments": ""}]
    calls: list[dict] = []
    for event in events[1:-3]:
        assert event["index"] == 0
        for call in event["message"].get("toolCalls", []):
            if "id" in call:
                assert re.fullmatch(r"chatcmpl-tool-[0-9a-f]+", call["id"])
                assert "arguments" not in call
                calls.append({"name": call["name"], "fragments": []})
            else:
                assert set(call) == {"type", "arguments"}
                calls[-1]["fragments"].append(call["arguments"])
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads("".join(calls[0]["fragments"])) == {"city": "Paris", "unit": "C"}
    assert all(len([f for f in c["fragments"] if f]) >= 2 for c in calls)
    assert "" in calls[0]["fragments"]  # an empty fragment event
    assert text_of(events) == "Let me check."


def test_llama_text_finish_form(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, LLAMA, Scenario(text="Hello, world"), False).events()
    assert events[-1] == "[DONE]"
    assert events[-2]["message"] == {"role": "ASSISTANT",
                                     "content": [{"type": "TEXT", "text": ""}]}
    assert events[-2]["finishReason"] == "stop"
    assert not any("usage" in e for e in events if isinstance(e, dict))


def test_openai_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, "openai.gpt-oss-120b", _tool_scenario()).events()
    assert_padded(events)
    assert "[DONE]" not in events
    reasoning = "".join(e["message"].get("reasoningContent", "") for e in events
                        if "message" in e)
    assert reasoning == "The user wants weather data."
    assert len([e for e in events if "reasoningContent" in e.get("message", {})]) >= 2
    first_text = next(i for i, e in enumerate(events) if e.get("message", {}).get("content"))
    first_reasoning = next(i for i, e in enumerate(events)
                           if "reasoningContent" in e.get("message", {}))
    assert first_reasoning < first_text
    heads = [c for e in events for c in e.get("message", {}).get("toolCalls", []) if "id" in c]
    assert [h["name"] for h in heads] == ["get_weather", "get_time"]
    assert all(re.fullmatch(r"call_[0-9a-f]+", h["id"]) and h["arguments"] for h in heads)
    assert all(len(e["message"]["toolCalls"]) == 1 for e in events
               if e.get("message", {}).get("toolCalls"))
    finish, usage = events[-2], events[-1]
    assert set(finish) == {"finishReason", "pad"} and finish["finishReason"] == "tool_calls"
    assert usage["usage"]["completionTokensDetails"]["reasoningTokens"] == ceil4(
        "The user wants weather data.")


def test_grok_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, "xai.grok-4", _tool_scenario()).events()
    assert "[DONE]" not in events
    calls = [e["message"]["toolCalls"] for e in events if e.get("message", {}).get("toolCalls")]
    assert len(calls) == 2 and all(len(c) == 1 for c in calls)
    for (call,), name in zip(calls, ["get_weather", "get_time"], strict=True):
        assert re.fullmatch(r"call_\d+", call["id"]) and call["name"] == name
        json.loads(call["arguments"])
    finish = events[-2]
    assert finish["message"] == {"role": "ASSISTANT"} and finish["finishReason"] == "tool_calls"


def test_gemini_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, "google.gemini-2.5-flash", _tool_scenario()).events()
    calls = [c for e in events for c in e.get("message", {}).get("toolCalls", [])]
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert all("id" not in c and json.loads(c["arguments"]) for c in calls)
    assert {"type": "TEXT"} in [p for e in events for p in e.get("message", {}).get(
        "content", [])]
    text = "The quick brown fox jumps over the lazy dog"
    events = _stream(fake, chat, "google.gemini-2.5-pro", Scenario(text=text)).events()
    finish = events[-2]
    assert finish["finishReason"] == "stop"
    assert finish["message"]["content"][0]["text"] == "dog"  # last real piece rides the finish
    assert text_of(events) == text


def test_cohere_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="Checking now", tool_calls=[tool_call("getWeather",
                                                                  {"city": "Munich"})]))
    result = chat(cohere_details("weather in Munich?", stream=True))
    events = result.events()
    assert_padded(events)
    assert all(e["apiFormat"] == "COHERE" for e in events)
    deltas = [e["text"] for e in events if "finishReason" not in e and "text" in e]
    assert "".join(deltas) == "Checking now"
    tool_events = [e for e in events if "toolCalls" in e and "finishReason" not in e]
    assert tool_events[0]["toolCalls"] == [{"name": "getWeather",
                                            "parameters": {"city": "Munich"}}]
    terminal = events[-1]
    assert terminal["finishReason"] == "COMPLETE"
    assert terminal["text"] == "Checking now"
    assert terminal["toolCalls"] == tool_events[0]["toolCalls"]
    assert terminal["chatHistory"][-2:] == [
        {"role": "USER", "message": "weather in Munich?"},
        {"role": "CHATBOT", "message": "Checking now", "toolCalls": terminal["toolCalls"]}]
    assert terminal["usage"]["promptTokens"] == 4 + ceil4("weather in Munich?")
    assert terminal["usage"]["completionTokens"] == ceil4(
        'Checking now{"city":"Munich"}')


def test_cohere_length_finish(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="partial", finish_reason="length"))
    assert chat(cohere_details(stream=True)).events()[-1]["finishReason"] == "MAX_TOKENS"


@pytest.mark.parametrize("model", [LLAMA, "openai.gpt-oss-120b", "xai.grok-4",
                                   "google.gemini-2.5-flash"])
def test_usage_event_only_with_include_usage(fake: FakeOCI, chat: Callable[..., Result],
                                             model: str) -> None:
    without = _stream(fake, chat, model, Scenario(text="abc def"), include_usage=False)
    assert not any("usage" in e for e in without.events() if isinstance(e, dict))
    events = [e for e in _stream(fake, chat, model, Scenario(text="abc def")).events()
              if e != "[DONE]"]
    assert "usage" in events[-1] and "finishReason" in events[-2]
    usage = events[-1]["usage"]
    assert usage["promptTokens"] == 4 + ceil4("hello there")
    assert usage["completionTokens"] == ceil4("abc def")
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"]
    suppressed = _stream(fake, chat, model, Scenario(text="x", include_usage_event=False))
    assert not any("usage" in e for e in suppressed.events() if isinstance(e, dict))


def test_style_override_chunks_and_usage_override(fake: FakeOCI,
                                                  chat: Callable[..., Result]) -> None:
    usage = {"promptTokens": 1, "completionTokens": 2, "totalTokens": 3}
    events = _stream(fake, chat, LLAMA, Scenario(text="abcdefghij", chunks=5, style="grok",
                                                 usage=usage)).events()
    texts = [p["text"] for e in events for p in e.get("message", {}).get("content", [])]
    assert texts == ["ab", "cd", "ef", "gh", "ij"]
    assert events[-1]["usage"] == usage
    assert events[-2]["message"] == {"role": "ASSISTANT"}  # grok finish form


def test_default_answer_is_derived_from_prompt(fake: FakeOCI,
                                               chat: Callable[..., Result]) -> None:
    prompt = "Tell me something interesting about the OCI platform please"
    result = chat(details(stream=True, text=prompt))
    assert text_of(result.events()) == f"Hello from {LLAMA}: {prompt[:40]}"


def test_stop_sequence_hit(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="one two END three", stop_sequence_hit="END",
                       finish_reason="length"))
    body = chat(details(stop=["END"])).json()
    choice = body["chatResponse"]["choices"][0]
    assert choice["message"]["content"][0]["text"] == "one two "
    assert choice["finishReason"] == "stop"


def test_split_reads_and_single_newline(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    text = "split me into many small pieces please"
    plain = _stream(fake, chat, LLAMA, Scenario(text=text)).events()
    split = _stream(fake, chat, LLAMA, Scenario(text=text, split_reads=True)).events()
    single = _stream(fake, chat, LLAMA, Scenario(text=text, single_newline=True))
    assert b"\n\n" not in single.raw
    assert _stream(fake, chat, LLAMA, Scenario(text=text)).raw.endswith(b"]\n\n")
    strip = [({k: v for k, v in e.items() if k != "pad"} if isinstance(e, dict) else e)
             for e in plain]
    for other in (split, single.events()):
        assert [({k: v for k, v in e.items() if k != "pad"} if isinstance(e, dict) else e)
                for e in other] == strip


async def _http_chunks(url: str, body: bytes, headers: dict[str, str]) -> list[bytes]:
    chunks, current = [], b""
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers=headers
    ) as resp:
        async for data, end_of_chunk in resp.content.iter_chunks():
            current += data
            if end_of_chunk and current:  # aiohttp may report an empty final chunk
                chunks.append(current)
                current = b""
    return chunks


def test_split_reads_straddle_http_chunks(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details(stream=True)).encode()
    fake.push(Scenario(text="some words to stream"))
    plain = asyncio.run(_http_chunks(url, body, signed_headers(signer, url, body)))
    assert all(c.endswith(b"\n\n") for c in plain)
    fake.push(Scenario(text="some words to stream", split_reads=True))
    split = asyncio.run(_http_chunks(url, body, signed_headers(signer, url, body)))
    assert len(split) > len(plain)
    assert any(not c.endswith(b"\n") for c in split)
    assert parse_sse(b"".join(split))[-1] == "[DONE]"


# --- non-streaming --------------------------------------------------------------------------


def test_generic_json_response_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(_tool_scenario())
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
    tool = _tool_with({"city": {"type": "string"}})
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


# --- scripting: errors, drops, disconnects, routing -------------------------------------------


def test_error_scenario(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(error_scenario(429, message="Too many requests for the user",
                             headers={"retry-after": "3"}))
    result = chat(details(stream=True), {"opc-request-id": "ABC"})
    assert result.status == 429
    assert result.json() == {"code": "TooManyRequests",
                             "message": "Too many requests for the user"}
    assert result.headers["retry-after"] == "3"
    assert result.headers["content-type"] == "application/json"
    assert result.headers["opc-request-id"].startswith("ABC/")
    fake.push(error_scenario(500))
    assert chat(details()).json()["code"] == "InternalServerError"


async def _read_lines_until_error(url: str, body: bytes, headers: dict[str, str],
                                  stop_after: int | None = None) -> tuple[list[bytes], str]:
    lines: list[bytes] = []
    outcome = "complete"
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers=headers
    ) as resp:
        try:
            async for line in resp.content:
                if line.startswith(b"data:"):
                    lines.append(line)
                    if stop_after is not None and len(lines) >= stop_after:
                        return lines, "client-closed"  # leaving the context closes it
        except aiohttp.ClientPayloadError as exc:
            outcome = f"payload-error: {exc}"
    return lines, outcome


def test_drop_after_cuts_the_connection(fake: FakeOCI, signer: Any) -> None:
    fake.push(Scenario(text="a b c d e f g h", drop_after=3))
    url = fake.url + CHAT_PATH
    body = json.dumps(details(stream=True)).encode()
    lines, outcome = asyncio.run(_read_lines_until_error(
        url, body, signed_headers(signer, url, body)))
    assert len(lines) == 3
    assert outcome.startswith("payload-error")
    record = fake.requests[-1]
    assert record.dropped_by_server and record.events_sent == 3
    assert record.client_disconnected_at is None


def test_drop_after_non_streaming(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    for drop in (0, 1):
        fake.push(Scenario(drop_after=drop))
        with pytest.raises(aiohttp.ClientError):
            send("POST", url, body, signed_headers(signer, url, body))


def test_client_disconnect_is_observed(fake: FakeOCI, signer: Any) -> None:
    fake.push(Scenario(text=" ".join(["word"] * 50), delay_between=0.05))
    url = fake.url + CHAT_PATH
    body = json.dumps(details(stream=True)).encode()
    lines, outcome = asyncio.run(_read_lines_until_error(
        url, body, signed_headers(signer, url, body), stop_after=2))
    assert outcome == "client-closed" and len(lines) == 2
    assert fake.wait_until(lambda: fake.connections_closed == 1, timeout=5)
    record = fake.requests[-1]
    assert record.client_disconnected_at is not None
    assert record.events_sent < 51
    assert fake.wait_until(lambda: fake.active_streams == 0)


def test_delays(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="a b c", delay_before=0.2, delay_first_chunk=0.1,
                       delay_between=0.05))
    started = time.monotonic()
    chat(details(stream=True))
    assert time.monotonic() - started >= 0.2 + 0.1 + 0.05 * 4


def test_match_routing(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="for alpha", match="alpha"), Scenario(text="generic"))
    first = chat(details(text="beta question")).json()
    second = chat(details(text="the alpha question")).json()
    third = chat(details(text="alpha again")).json()

    def answer(b: dict) -> str:
        return b["chatResponse"]["choices"][0]["message"]["content"][0]["text"]

    assert answer(first) == "generic"
    assert answer(second) == "for alpha"
    assert answer(third).startswith("Hello from")  # queue empty: default answer
    fake.push(Scenario(text="cohere match", match="needle"))
    cohere = chat(cohere_details("find the needle")).json()
    assert cohere["chatResponse"]["text"] == "cohere match"


def test_inline_scenario_marker(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    marker = inline_marker(Scenario(tool_calls=[tool_call("lookup", {"q": [[1, 2]]})]))
    first = chat(details(text=f"please {marker}")).json()["chatResponse"]["choices"][0]
    assert first["finishReason"] == "tool_calls"
    call = first["message"]["toolCalls"][0]
    assert json.loads(call["arguments"]) == {"q": [[1, 2]]}
    follow_up = [
        {"role": "USER", "content": [{"type": "TEXT", "text": f"please {marker}"}]},
        {"role": "ASSISTANT", "toolCalls": [call]},
        {"role": "TOOL", "toolCallId": call["id"], "content": [{"type": "TEXT", "text": "42"}]},
    ]
    second = chat(details(messages=follow_up)).json()["chatResponse"]["choices"][0]
    assert second["finishReason"] == "stop"  # the marker does not fire on the tool turn
    bad = chat(details(text="[[scenario:{\"nope\": 1}]]"))
    assert bad.status == 400 and "scenario" in bad.json()["message"]


def test_http_control_endpoints(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    base = fake.url + "/_fake"
    assert send("GET", base + "/health").json()["status"] == "ok"
    pushed = send("POST", base + "/scenarios",
                  json.dumps([{"text": "one"}, {"text": "two", "match": "zzz"}]).encode(),
                  {"content-type": "application/json"}).json()
    assert pushed == {"queued": 2, "pending": 2}
    single = send("POST", base + "/scenarios", json.dumps({"text": "three"}).encode())
    assert single.json()["pending"] == 3
    assert fake.pending == 3
    assert send("POST", base + "/scenarios", b'{"bogus": 1}').status == 400
    assert send("DELETE", base + "/scenarios").json() == {"cleared": 3}
    send("PUT", base + "/default", json.dumps({"text": "by default"}).encode())
    body = chat(details()).json()
    assert body["chatResponse"]["choices"][0]["message"]["content"][0]["text"] == "by default"
    send("DELETE", base + "/default")
    recorded = send("GET", base + "/requests").json()
    assert len(recorded) == 1
    assert recorded[0]["path"] == CHAT_PATH and recorded[0]["status"] == 200
    assert recorded[0]["body"]["chatRequest"]["apiFormat"] == "GENERIC"
    assert "authorization" in recorded[0]["headers"]
    assert send("DELETE", base + "/requests").json() == {"cleared": 1}
    assert fake.requests == []
    health = send("GET", base + "/health").json()
    assert health == {"status": "ok", "pending": 0, "requests": 0, "activeStreams": 0,
                      "connectionsClosed": 0}


def test_requests_are_recorded(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    chat(details(stream=True, text="record me"), {"opc-request-id": "REC1"})
    record = fake.requests[-1]
    assert record.method == "POST" and record.path == CHAT_PATH
    assert record.headers["opc-request-id"] == "REC1"
    assert record.body["chatRequest"]["messages"][0]["content"][0]["text"] == "record me"
    assert record.stream and record.status == 200 and record.model_id == LLAMA
    assert record.received_at <= (record.completed_at or 0)


def test_many_concurrent_slow_streams(fake: FakeOCI, signer: Any) -> None:
    fake.set_default(Scenario(text="a b c d", delay_between=0.05))
    url = fake.url + CHAT_PATH
    body = json.dumps(details(stream=True)).encode()
    headers = signed_headers(signer, url, body)

    async def run_all() -> list[int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one() -> int:
                async with session.post(url, data=body, headers=headers) as resp:
                    return len(parse_sse(await resp.read()))
            return await asyncio.gather(*(one() for _ in range(200)))

    started = time.monotonic()
    counts = asyncio.run(run_all())
    assert set(counts) == {7}  # empty first delta, 4 pieces, finish, [DONE]
    assert time.monotonic() - started < 10


# --- compatibility with the real OCI SDK ----------------------------------------------------


def test_real_sdk_client(fake: FakeOCI, key: TestKey) -> None:
    config = oci.config.from_file(str(key.config_path))
    client = oci.generative_ai_inference.GenerativeAiInferenceClient(
        config, service_endpoint=fake.url, retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    models = oci.generative_ai_inference.models
    request = models.GenericChatRequest(
        messages=[models.UserMessage(content=[models.TextContent(text="hi sdk")])],
        max_tokens=50, is_stream=False)
    chat_details = models.ChatDetails(
        compartment_id="ocid1.compartment.oc1..test", chat_request=request,
        serving_mode=models.OnDemandServingMode(model_id="xai.grok-4"))
    fake.push(Scenario(text="from the fake"))
    result = client.chat(chat_details).data
    assert result.chat_response.choices[0].message.content[0].text == "from the fake"
    assert result.chat_response.usage.total_tokens > 0
    request.is_stream = True
    request.stream_options = models.StreamOptions(is_include_usage=True)
    fake.push(Scenario(text="streamed by the fake"))
    response = client.chat(chat_details)
    events = [json.loads(e.data) for e in response.data.events()]
    assert text_of(events) == "streamed by the fake"
    assert "usage" in events[-1]


# --- standalone process -----------------------------------------------------------------------


def test_standalone_process(tmp_path: Path) -> None:
    """``python -m emulator`` as bench, soak and compose run it, scripted over ``/_fake/*``."""
    with EmulatorProcess(tmp_path, quiet=False,
                         args=["--default-delay-between", "0.001"]) as emu:
        assert emu.health()["status"] == "ok"
        emu.push({"text": "standalone"})
        body = json.dumps(details(stream=True)).encode()
        result = send("POST", emu.url + CHAT_PATH, body, {"content-type": "application/json"})
        assert result.status == 200
        assert text_of(result.events()) == "standalone"
        marker = inline_marker({"text": "inline!"})
        body = json.dumps(details(text=marker)).encode()
        result = send("POST", emu.url + CHAT_PATH, body, {"content-type": "application/json"})
        assert result.json()["chatResponse"]["choices"][0]["message"]["content"][0][
            "text"] == "inline!"
        # one log line per request (not --quiet), written once the answer is sent
        wait_until(lambda: emu.output().count(CHAT_PATH) == 2, 5, "the request log")
        assert [r["path"] for r in emu.requests()] == [CHAT_PATH, CHAT_PATH]
    assert emu.proc.returncode == 0  # SIGTERM is its normal stop


def test_console_script() -> None:
    """``oci-emulator`` is installed with the project ([project.scripts] in pyproject.toml)."""
    script = Path(sys.executable).parent / "oci-emulator"
    assert script.exists(), f"{script} missing: reinstall the project (make venv)"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: oci-emulator")
    for flag in ("--host", "--port", "--public-key", "--no-verify", "--key-id",
                 "--default-delay-between", "--quiet"):
        assert flag in done.stdout, flag
    refused = subprocess.run([str(script), "--port", "0"], capture_output=True, text=True,
                             timeout=30)
    assert refused.returncode == 2 and "--public-key PATH or --no-verify" in refused.stderr
