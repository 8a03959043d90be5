"""COHEREV2 translation, pure: requests, JSON answers and streams, against the SDK's own shapes.

Requests are checked by a round trip through the OCI SDK 2.189.0 model classes (deserialised as
``ChatDetails``, serialised back): a field the SDK does not know, a wrong casing or a wrong
discriminator would not survive it. Answers are built with the SDK's ``CohereChatResponseV2``
classes and serialised the way the service receives them. Streams are the event shapes of
reference/oci-real-world.md §4 (langchain-oracle b1dda22) and the emulator's ``coherev2`` style,
checked with ``devtools.sse_check.check_stream``.
"""

from __future__ import annotations

import json
from typing import Any

import oci
import orjson
import pytest
from oci.base_client import BaseClient

from app.anthropic.models import CountTokensRequest, MessagesRequest
from app.catalog import ModelSpec, Resolved
from app.errors import InvalidRequest
from app.translate.common import thinking_signature
from app.translate.from_oci import message_from_oci
from app.translate.stream_coherev2 import CohereV2StreamTranslator, translator_for
from app.translate.to_oci import to_oci
from app.translate.tokens import IMAGE_MIN_TOKENS, raw_estimate
from app.translate.wire import encode
from devtools.sse_check import check_stream
from emulator.validate import validate_chat_details
from tests.harness import as_request

M = oci.generative_ai_inference.models
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
VISION = Resolved("vision", ModelSpec(model_id="cohere.command-a-vision-07-2025",
                                      capabilities=("tools", "vision", "structured_output"),
                                      max_output_tokens=4000), "vision")
REASONING = Resolved("reasoning", ModelSpec(model_id="cohere.command-a-reasoning-08-2025",
                                            capabilities=("tools", "reasoning"),
                                            max_output_tokens=4000), "reasoning")
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                            "type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}



def _sdk() -> BaseClient:
    client = BaseClient.__new__(BaseClient)  # only its (de)serialiser: no config, no network
    client.type_mappings = {n: getattr(M, n) for n in dir(M) if isinstance(getattr(M, n), type)}
    client.complex_type_mappings = {}
    return client


SDK = _sdk()


def sdk_roundtrip(value: dict[str, Any], kind: str) -> Any:
    return SDK.sanitize_for_serialization(SDK._BaseClient__deserialize(value, kind))  # type: ignore[attr-defined]


def translate(resolved: Resolved, **body: Any) -> dict[str, Any]:
    req = as_request(MessagesRequest, {"model": resolved.name, "max_tokens": 1000, **body})
    oci_body = to_oci(req, resolved, "ocid1.compartment.oc1..test").body
    # the exact bytes the gateway sends, as the SDK reads them back, and the emulator's schema
    wire = orjson.loads(encode(oci_body))
    assert sdk_roundtrip(wire, "ChatDetails") == wire
    validate_chat_details(wire)
    return wire["chatRequest"]  # type: ignore[no-any-return]


# --- catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "fmt"), [
    ("cohere.command-a-vision-07-2025", "COHEREV2"),
    ("cohere.command-a-vision", "COHEREV2"),
    ("cohere.command-a-reasoning-08-2025", "COHEREV2"),
    ("cohere.command-a-03-2025", "COHERE"),
    ("cohere.command-r-plus-08-2024", "COHERE"),
    ("meta.llama-3.3-70b-instruct", "GENERIC"),
])
def test_format_follows_the_model_id(model_id: str, fmt: str) -> None:
    assert ModelSpec(model_id=model_id).format == fmt


def test_api_format_can_be_configured() -> None:
    spec = ModelSpec(endpoint_id="ocid1.generativeaiendpoint.oc1..x", api_format="COHEREV2")
    assert spec.format == "COHEREV2"
    assert ModelSpec(model_id="cohere.command-a-vision", api_format="COHERE").format == "COHERE"


# --- requests ---------------------------------------------------------------------------------


def test_text_system_and_sampling() -> None:
    chat = translate(VISION, system=[{"type": "text", "text": "Be brief."}],
                     messages=[{"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello."},
                               {"role": "user", "content": [{"type": "text", "text": "More"}]}],
                     temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END"], stream=True)
    assert chat == {
        "apiFormat": "COHEREV2",
        "messages": [
            {"role": "SYSTEM", "content": [{"type": "TEXT", "text": "Be brief."}]},
            {"role": "USER", "content": [{"type": "TEXT", "text": "Hi"}]},
            {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": "Hello."}]},
            {"role": "USER", "content": [{"type": "TEXT", "text": "More"}]},
        ],
        "maxTokens": 1000, "temperature": 0.2, "topP": 0.9, "topK": 5,
        "isStream": True, "streamOptions": {"isIncludeUsage": True},
    }  # stop sequences are the gateway's own: never sent


def test_output_limit_is_clamped() -> None:
    assert translate(VISION, max_tokens=64000, messages=[{"role": "user", "content": "x"}])[
        "maxTokens"] == 4000


def test_images_as_data_urls_need_vision() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    chat = translate(VISION, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is it?"}, image]}])
    assert chat["messages"][0]["content"] == [
        {"type": "TEXT", "text": "What is it?"},
        {"type": "IMAGE_URL", "imageUrl": {"url": f"data:image/png;base64,{PNG}"}}]
    with pytest.raises(InvalidRequest, match="cannot take images"):
        translate(REASONING, messages=[{"role": "user", "content": [image]}])


def test_tools_round_trip_with_ids() -> None:
    chat = translate(VISION, tools=[WEATHER], tool_choice={"type": "any"}, messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I will look it up."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "boom"}]},
            {"type": "text", "text": "and tomorrow?"}]},
    ])
    assert chat["tools"] == [{"type": "FUNCTION", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    assert chat["toolsChoice"] == "REQUIRED"
    assert chat["messages"][1:] == [
        {"role": "ASSISTANT", "content": [], "toolPlan": "I will look it up.",
         "toolCalls": [{"id": "toolu_1", "type": "FUNCTION", "function": {
             "name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "TOOL", "toolCallId": "toolu_1", "content": [{"type": "TEXT", "text": "sunny"}]},
        {"role": "TOOL", "toolCallId": "toolu_2",
         "content": [{"type": "TEXT", "text": "[tool error] boom"}]},
        {"role": "USER", "content": [{"type": "TEXT", "text": "and tomorrow?"}]},
    ]


@pytest.mark.parametrize(("choice", "expected", "tools"), [
    ({"type": "auto"}, None, ["get_weather", "Bash"]),
    ({"type": "none"}, "NONE", ["get_weather", "Bash"]),
    ({"type": "tool", "name": "Bash"}, "REQUIRED", ["Bash"]),
    ({"type": "tool", "name": "web_search"}, None, ["get_weather", "Bash"]),
])
def test_tool_choice(choice: dict[str, Any], expected: str | None, tools: list[str]) -> None:
    bash = {"name": "Bash", "input_schema": {"type": "object"}}
    chat = translate(VISION, tools=[WEATHER, bash], tool_choice=choice,
                     messages=[{"role": "user", "content": "x"}])
    assert chat.get("toolsChoice") == expected
    assert [t["function"]["name"] for t in chat["tools"]] == tools


def test_tool_result_images_follow_the_tool_messages() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    messages = [{"role": "user", "content": "Read it"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                                   "name": "Read", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": [image]}]}]
    chat = translate(VISION, messages=messages)
    assert chat["messages"][-2]["role"] == "TOOL"
    assert "see the next user message" in chat["messages"][-2]["content"][0]["text"]
    assert chat["messages"][-1]["content"][1]["type"] == "IMAGE_URL"
    text_only = translate(REASONING, messages=messages)
    assert "cannot view images" in text_only["messages"][-1]["content"][0]["text"]


@pytest.mark.parametrize(("thinking", "max_tokens", "expected"), [
    ({"type": "enabled", "budget_tokens": 2048}, 3000, {"type": "ENABLED", "tokenBudget": 2048}),
    ({"type": "enabled", "budget_tokens": 31999}, 32000, {"type": "ENABLED", "tokenBudget": 3999}),
    ({"type": "adaptive"}, 3000, {"type": "ENABLED"}),
    ({"type": "disabled"}, 3000, {"type": "DISABLED"}),
    (None, 3000, None),
])
def test_thinking_for_reasoning_models(thinking: dict[str, Any] | None, max_tokens: int,
                                       expected: dict[str, Any] | None) -> None:
    extra = {"thinking": thinking} if thinking else {}
    chat = translate(REASONING, max_tokens=max_tokens,
                     messages=[{"role": "user", "content": "x"}], **extra)
    assert chat.get("thinking") == expected
    # a model without the reasoning capability never gets the field
    assert "thinking" not in translate(VISION, messages=[{"role": "user", "content": "x"}],
                                       **extra)


def test_thinking_blocks_go_back_to_reasoning_models_only() -> None:
    messages = [{"role": "user", "content": "x"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me see.", "signature": "ocigw1abc"},
                    {"type": "redacted_thinking", "data": "zzz"},
                    {"type": "text", "text": "Answer."}]},
                {"role": "user", "content": "again"}]
    assert translate(REASONING, messages=messages)["messages"][1]["content"] == [
        {"type": "THINKING", "thinking": "Let me see."}, {"type": "TEXT", "text": "Answer."}]
    assert translate(VISION, messages=messages)["messages"][1]["content"] == [
        {"type": "TEXT", "text": "Answer."}]


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "additionalProperties": False}
    fmt = {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    chat = translate(VISION, messages=[{"role": "user", "content": "x"}], **fmt)
    assert chat["responseFormat"]["type"] == "JSON_OBJECT"
    assert chat["responseFormat"]["schema"]["properties"] == {"n": {"type": "integer"}}
    # without the capability: an instruction in the system message instead
    chat = translate(REASONING, messages=[{"role": "user", "content": "x"}], **fmt)
    assert "responseFormat" not in chat and "JSON schema" in chat["messages"][0]["content"][0][
        "text"]


def test_pdf_documents_are_a_400_text_documents_go_inline() -> None:
    text_doc = {"type": "document", "title": "Notes",
                "source": {"type": "text", "media_type": "text/plain", "data": "abc"}}
    chat = translate(VISION, messages=[{"role": "user", "content": [text_doc]}])
    assert chat["messages"][0]["content"] == [{"type": "TEXT", "text": "Notes\n\nabc"}]
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0="}}
    with pytest.raises(InvalidRequest, match="PDF"):
        translate(VISION, messages=[{"role": "user", "content": [pdf]}])


def test_count_tokens_counts_the_v2_body() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    base = [{"role": "user", "content": "x" * 400}]
    req = as_request(CountTokensRequest, {"model": "vision", "messages": base})
    plain = raw_estimate(to_oci(req, VISION, "c").body)
    assert plain >= 100
    with_more = as_request(CountTokensRequest, {"model": "vision", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "x" * 400}, image]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "y" * 400, "signature": "s"},
            {"type": "text", "text": "z" * 400},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": "b" * 400}}]}],
        "tools": [WEATHER]})
    body = to_oci(with_more, VISION, "c").body
    # text, tool plan, arguments, tools and the 1x1 image all count
    assert raw_estimate(body) >= plain + 200 + IMAGE_MIN_TOKENS
    reasoning = as_request(CountTokensRequest, {"model": "reasoning", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "y" * 400,
                                           "signature": "s"}, {"type": "text", "text": "a"}]}]})
    assert raw_estimate(to_oci(reasoning, REASONING, "c").body) >= 100  # THINKING counts


# --- JSON answers (CohereChatResponseV2 built with the SDK) --------------------------------------


def v2_result(content: list[Any], finish: str, *, tool_calls: list[Any] | None = None,
              tool_plan: str | None = None, usage: Any = None) -> dict[str, Any]:
    response = M.CohereChatResponseV2(
        api_format="COHEREV2", id="a6e1", finish_reason=finish,
        message=M.CohereAssistantMessageV2(role="ASSISTANT", content=content,
                                           tool_calls=tool_calls, tool_plan=tool_plan),
        usage=usage)
    result = M.ChatResult(model_id="cohere.command-a-reasoning-08-2025", model_version="1.0",
                          chat_response=response)
    return json.loads(json.dumps(SDK.sanitize_for_serialization(result)))  # type: ignore[no-any-return]


def answer(result: dict[str, Any], stops: tuple[str, ...] = ()) -> dict[str, Any]:
    return message_from_oci(result, model="reasoning", message_id="msg_1", estimated_input=9,
                            stop_sequences=stops)


def test_json_text_thinking_usage() -> None:
    result = v2_result([M.CohereThinkingContentV2(type="THINKING", thinking="Hmm."),
                        M.CohereTextContentV2(type="TEXT", text="Hello.")], "COMPLETE",
                       usage=M.Usage(prompt_tokens=12, completion_tokens=5, total_tokens=17))
    msg = answer(result)
    assert msg["content"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": msg["content"][0]["signature"]},
        {"type": "text", "text": "Hello."}]
    assert msg["content"][0]["signature"].startswith("ocigw1")
    import hashlib
    assert msg["content"][0]["signature"] == thinking_signature(
        hashlib.sha256(b"Hmm.").digest())  # the GENERIC path's signature, same rule
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"] == {"input_tokens": 12, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0, "output_tokens": 5}


def test_json_tool_calls_with_plan() -> None:
    call = M.CohereToolCallV2(id="get_weather_abc", type="FUNCTION",
                              function={"name": "get_weather", "arguments": '{"city":"Oslo"}'})
    msg = answer(v2_result([], "TOOL_CALL", tool_calls=[call], tool_plan="I will check."))
    assert msg["content"] == [
        {"type": "text", "text": "I will check."},
        {"type": "tool_use", "id": "get_weather_abc", "name": "get_weather",
         "input": {"city": "Oslo"}}]
    assert msg["stop_reason"] == "tool_use"


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("COMPLETE", "end_turn"), ("STOP_SEQUENCE", "end_turn"), ("MAX_TOKENS", "max_tokens"),
    ("TOOL_CALL", "tool_use"),
])
def test_json_finish_reasons(finish: str, stop_reason: str) -> None:
    calls = None
    if finish == "TOOL_CALL":
        calls = [M.CohereToolCallV2(id="c1", type="FUNCTION",
                                    function={"name": "f", "arguments": "{}"})]
    msg = answer(v2_result([M.CohereTextContentV2(type="TEXT", text="x")], finish,
                           tool_calls=calls))
    assert msg["stop_reason"] == stop_reason


def test_json_error_finish_is_not_silently_a_tool_use() -> None:
    """ERROR's mapping is the shared COHERE table's (common.finish_error): as for COHERE v1, the
    answer is an upstream failure (a 500 api_error), never a silent end_turn or tool_use."""
    from app.errors import GatewayError
    from app.translate.common import finish_error
    with pytest.raises(GatewayError) as err:
        answer(v2_result([M.CohereTextContentV2(type="TEXT", text="x")], "ERROR"))
    expected = finish_error("ERROR", cohere=True)
    assert expected is not None and err.value.error_type == expected.error_type == "api_error"


def test_json_stop_sequence_cut_by_the_gateway() -> None:
    msg = answer(v2_result([M.CohereTextContentV2(type="TEXT", text="one END two")], "COMPLETE"),
                 stops=("END",))
    assert msg["content"] == [{"type": "text", "text": "one "}]
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", "END")


def test_json_salvages_mistyped_fields() -> None:
    for chat_response in ({"apiFormat": "COHEREV2", "message": "x"},
                          {"apiFormat": "COHEREV2", "message": {"content": {"a": 1},
                                                                "toolCalls": "x"}},
                          {"apiFormat": "COHEREV2", "message": {"content": [1, {"type": "TEXT",
                                                                                "text": 5}]},
                           "finishReason": 7, "usage": []},
                          {"apiFormat": "COHEREV2", "message": {"toolCalls": [
                              {"id": 1, "function": "x"}, 3]}}):
        msg = answer({"chatResponse": chat_response})
        assert msg["type"] == "message" and msg["stop_reason"] in ("end_turn", "tool_use")


# --- streams ------------------------------------------------------------------------------------


def ev(**message: Any) -> dict[str, Any]:
    return {"apiFormat": "COHEREV2", "message": {"role": "ASSISTANT", **message}, "pad": "aa"}


def end(finish: str, usage: dict[str, Any] | None = None, **message: Any) -> dict[str, Any]:
    chunk = {**ev(**message), "finishReason": finish}
    if usage:
        chunk["usage"] = usage
    return chunk


def stream(chunks: list[dict[str, Any]], stops: tuple[str, ...] = ()) -> dict[str, Any]:
    t = translator_for("COHEREV2", message_id="msg_s", model="m", estimated_input=7,
                       stop_sequences=stops)
    assert isinstance(t, CohereV2StreamTranslator)
    out = t.start()
    for chunk in chunks:
        out += t.feed(json.loads(json.dumps(chunk)))
        if t.matched_stop:
            break
    assert t.finished
    out += t.finish()
    result = check_stream(out.decode())
    assert t.stop_reason == result["stop_reason"]
    return result


USAGE = {"promptTokens": 20, "completionTokens": 6, "totalTokens": 26}


def test_stream_text_deltas_and_terminal_event() -> None:
    """langchain-oracle b1dda22: text in message.content[].text, terminal finishReason."""
    result = stream([ev(content=[{"type": "TEXT", "text": "Hel"}]),
                     ev(content=[{"type": "TEXT", "text": "lo"}]),
                     end("COMPLETE", USAGE)])
    assert result["content"] == [{"type": "text", "text": "Hello"}]
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 6 and result["usage"]["input_tokens"] == 20


def test_stream_thinking_plan_and_tool_calls() -> None:
    result = stream([
        ev(content=[{"type": "THINKING", "thinking": "The user "}]),
        ev(content=[{"type": "THINKING", "thinking": "wants weather."}]),
        ev(toolPlan="I will "), ev(toolPlan="look it up."),
        ev(toolCalls=[{"id": "c1", "type": "FUNCTION",
                       "function": {"name": "get_weather", "arguments": ""}}]),
        ev(toolCalls=[{"type": "FUNCTION", "function": {"arguments": '{"city":'}}]),
        ev(toolCalls=[{"type": "FUNCTION", "function": {"arguments": '"Oslo"}'}}]),
        ev(toolCalls=[{"id": "c2", "type": "FUNCTION",
                       "function": {"name": "get_time", "arguments": "{}"}}]),
        end("TOOL_CALL", USAGE)])
    assert [b["type"] for b in result["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert result["content"][0]["thinking"] == "The user wants weather."
    assert result["content"][0]["signature"].startswith("ocigw1")
    assert result["content"][1]["text"] == "I will look it up."
    assert result["content"][2]["input"] == {"city": "Oslo"}
    assert (result["content"][2]["id"], result["content"][3]["id"]) == ("c1", "c2")
    assert result["stop_reason"] == "tool_use"


def test_stream_terminal_repeat_is_not_emitted_twice() -> None:
    result = stream([ev(content=[{"type": "TEXT", "text": "Hi"}]),
                     end("COMPLETE", content=[{"type": "TEXT", "text": "Hi"}])])
    assert result["content"] == [{"type": "text", "text": "Hi"}]
    # nothing streamed before: the terminal event's message is the answer
    result = stream([end("COMPLETE", content=[{"type": "TEXT", "text": "Whole"}])])
    assert result["content"] == [{"type": "text", "text": "Whole"}]


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("COMPLETE", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("STOP_SEQUENCE", "end_turn")])
def test_stream_finish_reasons(finish: str, stop_reason: str) -> None:
    assert stream([ev(content=[{"type": "TEXT", "text": "x"}]), end(finish)])[
        "stop_reason"] == stop_reason


def test_stream_max_tokens_cuts_a_tool_call() -> None:
    t = translator_for("COHEREV2", message_id="msg_s", model="m", estimated_input=7)
    out = t.start() + t.feed(ev(toolCalls=[{"id": "c1", "type": "FUNCTION", "function": {
        "name": "Write", "arguments": '{"a": "ha'}}]))
    out += t.feed(end("MAX_TOKENS")) + t.finish()
    assert b'"stop_reason":"max_tokens"' in out and b'"partial_json":"{\\"a\\": \\"ha"' in out


def test_stream_stop_sequence_split_across_deltas() -> None:
    result = stream([ev(content=[{"type": "TEXT", "text": "one EN"}]),
                     ev(content=[{"type": "TEXT", "text": "D two"}]),
                     ev(toolCalls=[{"id": "c1", "type": "FUNCTION",
                                    "function": {"name": "f", "arguments": "{}"}}]),
                     end("COMPLETE")], stops=("END",))
    assert result["content"] == [{"type": "text", "text": "one "}]
    assert result["stop_reason"] == "stop_sequence"


def test_stream_ignores_mistyped_pieces() -> None:
    result = stream([ev(content="x"), ev(content=[None, {"type": "TEXT"}, {"type": "IMAGE_URL"},
                                                  {"type": "THINKING", "thinking": 3}]),
                     ev(toolCalls=[None, {"function": "x"}]), ev(toolPlan=5),
                     {"apiFormat": "COHEREV2", "message": []},
                     ev(content=[{"type": "TEXT", "text": "ok"}]),
                     {"finishReason": "COMPLETE", "usage": "x"}])
    assert [b["type"] for b in result["content"]] == ["text"]
    assert result["content"][0]["text"] == "ok"
