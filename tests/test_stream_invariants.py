"""Stream invariants of the OCI -> Anthropic streaming state machine, for every family style.

Three levels:
- unit: ``StreamTranslator`` (pure) fed the hand-made chunk sequences of oci-genai-wire.md §8;
- property (pure): random answers (reasoning, text, tool calls, finish) rendered by the
  emulator's own per-style renderers, cut into random socket reads, parsed by the gateway's
  ``SseReader`` and translated; every output must satisfy ``devtools.sse_check.check_stream``;
- property (HTTP): the same through the running gateway and emulator, plus the keep-alive
  ``ping`` while OCI is silent.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.oci.sse import SseReader
from app.translate.stream import StreamTranslator
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, tool_call
from emulator.answer import Answer, resolve_answer
from emulator.catalog import Catalog
from emulator.context import ChatContext, build_context
from emulator.streams import render_stream
from tests.harness import ALICE, STYLE_MODELS, TEST_MODELS, GatewayServer, write_config

STYLES = ["llama", "openai", "grok", "gemini", "cohere"]


def translate(chunks: list[dict[str, Any]], *, cohere: bool = False) -> dict[str, Any]:
    """Feed chunks (as JSON text, like the wire) and return the checked Anthropic stream."""
    t = StreamTranslator(message_id="msg_test", model="m", estimated_input=7, cohere=cohere)
    out = t.start()
    for chunk in chunks:
        out += t.feed(json.loads(json.dumps(chunk)))
    assert t.finished, "the translator did not see the finish event"
    out += t.finish()
    result = check_stream(out.decode())
    assert t.stop_reason == result["stop_reason"]  # what the service logs and counts
    return result


def kinds(result: dict[str, Any]) -> list[str]:
    return [b["type"] for b in result["content"]]


# --- unit: the reference's examples (oci-genai-wire.md §8.2, §8.3) -------------------------------

LLAMA_TEXT = [  # "Full Llama text stream, as the fake reproduces it"
    {"index": 0, "message": {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": ""}]},
     "pad": "a"},
    {"index": 0, "message": {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": "Hello"}]},
     "pad": "aaaaaaaa"},
    {"index": 0, "message": {"role": "ASSISTANT",
                             "content": [{"type": "TEXT", "text": ", world"}]}, "pad": "aaaa"},
    {"message": {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": ""}]},
     "finishReason": "stop", "pad": "aaaaaaaaaaa"},
    {"usage": {"completionTokens": 8, "promptTokens": 41, "totalTokens": 49}, "pad": "aaaaaaa"},
]


def test_reference_llama_text_stream() -> None:
    result = translate(LLAMA_TEXT)
    assert kinds(result) == ["text"] and result["text"] == "Hello, world"
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 8 and result["usage"]["input_tokens"] == 41
    assert result["message_start"]["usage"]["input_tokens"] == 7  # the estimate, up front


def test_reference_llama_tool_call_fragments() -> None:
    chunks = [
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "id": "chatcmpl-tool-13ee961b3",
             "name": "extractMagicalNumber"}]}, "pad": "aaaaaa"},
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "arguments": '{"arg1": "'}]}, "pad": "aaa"},
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "arguments": ""}]}, "pad": "a"},  # vLLM's empty fragment
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "arguments": '778"'}]}, "pad": "aaaaaaaaa"},
        # the reference's excerpt elides the closing fragment; a real stream sends it
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "arguments": "}"}]}, "pad": "a"},
        {"message": {"role": "ASSISTANT", "toolCalls": [{"type": "FUNCTION", "arguments": ""}]},
         "finishReason": "tool_calls", "pad": "aaaaaaaaa"},
    ]
    result = translate(chunks)
    assert kinds(result) == ["tool_use"]
    block = result["content"][0]
    assert block["id"] == "chatcmpl-tool-13ee961b3" and block["name"] == "extractMagicalNumber"
    assert block["partial_json"] == '{"arg1": "778"}' and block["input"] == {"arg1": "778"}
    assert result["stop_reason"] == "tool_use"
    deltas = [d["delta"]["partial_json"] for n, d in result["events"]
              if n == "content_block_delta"]
    assert [d for d in deltas if d] == ['{"arg1": "', '778"', "}"]  # forwarded one by one


def test_reference_whole_parallel_calls() -> None:
    whole = [{"type": "FUNCTION", "id": "call_69943055", "name": "LIST_PACKAGE_NAMES",
              "arguments": '{"arg0":"HR"}'},
             {"type": "FUNCTION", "id": "call_69943056", "name": "LIST_PACKAGE_NAMES",
              "arguments": '{"arg0":"IT"}'}]
    chunks = [{"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [c]}, "pad": "aa"}
              for c in whole]
    chunks.append({"message": {"role": "ASSISTANT"}, "finishReason": "tool_calls", "pad": "a"})
    result = translate(chunks)
    assert kinds(result) == ["tool_use", "tool_use"]
    assert [b["id"] for b in result["content"]] == ["call_69943055", "call_69943056"]
    assert [b["input"] for b in result["content"]] == [{"arg0": "HR"}, {"arg0": "IT"}]


def test_openai_parallel_calls_at_position_zero() -> None:
    def ev(call: dict[str, Any]) -> dict[str, Any]:
        return {"index": 0, "message": {"role": "ASSISTANT",
                                        "toolCalls": [{"type": "FUNCTION", **call}]}}
    chunks = [
        {"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": "Two lookups."}},
        ev({"id": "call_a", "name": "get_weather", "arguments": '{"city"'}),
        ev({"arguments": ': "Paris"}'}),
        ev({"id": "call_b", "name": "get_time", "arguments": ""}),
        ev({"arguments": '{"tz": '}),
        ev({"name": "get_time", "arguments": '"CET"}'}),  # name repeated without the id
        {"finishReason": "tool_calls"},
        {"usage": {"completionTokens": 20, "promptTokens": 10, "totalTokens": 30,
                   "completionTokensDetails": {"reasoningTokens": 3}}},
    ]
    result = translate(chunks)
    assert kinds(result) == ["thinking", "tool_use", "tool_use"]
    assert result["content"][0]["signature"]
    assert [(b["id"], b["name"], b["input"]) for b in result["content"][1:]] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"tz": "CET"})]


def test_gemini_calls_without_ids_get_minted_ids() -> None:
    chunks = [
        {"index": 0, "message": {"role": "ASSISTANT", "content": [{"type": "TEXT"}]}},
        {"index": 0, "message": {"role": "ASSISTANT",
                                 "content": [{"type": "TEXT", "text": "Reading both."}]}},
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "name": "Read", "arguments": '{"file_path":"/a"}'}]}},
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "name": "Read", "arguments": '{"file_path":"/b"}'}]}},
        {"message": {"role": "ASSISTANT"}, "finishReason": "tool_calls"},
    ]
    result = translate(chunks)
    assert kinds(result) == ["text", "tool_use", "tool_use"]
    ids = [b["id"] for b in result["content"][1:]]
    assert all(i.startswith("toolu_") and len(i) > 20 for i in ids) and ids[0] != ids[1]
    assert [b["input"] for b in result["content"][1:]] == [{"file_path": "/a"},
                                                           {"file_path": "/b"}]


@pytest.mark.parametrize("finish", [
    {"finishReason": "stop"},
    {"message": {"role": "ASSISTANT"}, "finishReason": "stop"},
    {"message": {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": ""}]},
     "finishReason": "stop"},
    {"message": {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": "Hello "}]},
     "finishReason": "stop"},
])
def test_reference_finish_event_forms(finish: dict[str, Any]) -> None:
    first = {"index": 0, "message": {"role": "ASSISTANT",
                                     "content": [{"type": "TEXT", "text": "Well. "}]}}
    result = translate([first, finish])
    tail = finish.get("message", {}).get("content", [{}])[0].get("text", "")
    assert result["text"] == "Well. " + tail  # the finish event's own text is kept
    assert result["stop_reason"] == "end_turn"


def test_reasoning_then_text() -> None:
    chunks = [
        {"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": "Let me think"}},
        {"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": " harder.",
                                 "content": []}},
        {"index": 0, "message": {"role": "ASSISTANT",
                                 "content": [{"type": "TEXT", "text": "42"}]}},
        {"finishReason": "length"},
    ]
    result = translate(chunks)
    assert kinds(result) == ["thinking", "text"]
    assert result["content"][0]["thinking"] == "Let me think harder."
    assert result["stop_reason"] == "max_tokens"


@pytest.mark.parametrize("arguments", ['{"file_path": "/a", "content": "half a fi',
                                       '{"file_path": "/a"}'])
def test_length_finish_with_a_tool_call_is_max_tokens(arguments: str) -> None:
    """As on Anthropic's API, hitting the output limit is ``max_tokens`` even mid tool call
    (Claude Code then continues instead of running a call with cut-off input)."""
    chunks = [
        {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
            {"type": "FUNCTION", "id": "call_1", "name": "Write", "arguments": arguments}]}},
        {"finishReason": "length"},
    ]
    t = StreamTranslator(message_id="msg_test", model="m", estimated_input=7)
    out = (t.start() + b"".join(t.feed(c) for c in chunks) + t.finish()).decode()
    assert '"stop_reason":"max_tokens"' in out
    assert f'"partial_json":{json.dumps(arguments)}' in out  # forwarded as received


def test_reference_cohere_text_stream() -> None:
    chunks = [
        {"apiFormat": "COHERE", "text": "Hi", "pad": "aaaa"},
        {"apiFormat": "COHERE", "text": " there", "pad": "aa"},
        {"apiFormat": "COHERE", "text": "Hi there", "chatHistory": [
            {"role": "USER", "message": "Say hi."}, {"role": "CHATBOT", "message": "Hi there"}],
         "finishReason": "COMPLETE", "pad": "a",
         "usage": {"completionTokens": 2, "promptTokens": 6, "totalTokens": 8}},
    ]
    result = translate(chunks, cohere=True)
    assert kinds(result) == ["text"] and result["text"] == "Hi there"  # not "Hi thereHi there"
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 2 and result["usage"]["input_tokens"] == 6


@pytest.mark.parametrize("tools_event", [True, False])
def test_reference_cohere_tool_calls(tools_event: bool) -> None:
    calls = [{"name": "getWeather", "parameters": {"city": "Munich"}}]
    chunks: list[dict[str, Any]] = [{"apiFormat": "COHERE", "text": "Let me look."}]
    if tools_event:  # the text, if any, may be repeated with the calls
        chunks.append({"apiFormat": "COHERE", "text": "Let me look.", "toolCalls": calls})
    chunks.append({"apiFormat": "COHERE", "text": "Let me look.", "toolCalls": calls,
                   "chatHistory": [], "finishReason": "COMPLETE"})
    result = translate(chunks, cohere=True)
    assert kinds(result) == ["text", "tool_use"]
    assert result["text"] == "Let me look."
    assert result["content"][1]["input"] == {"city": "Munich"}
    assert result["content"][1]["id"].startswith("toolu_")
    assert result["stop_reason"] == "tool_use"


def _text(text: str) -> dict[str, Any]:
    return {"index": 0, "message": {"role": "ASSISTANT", "content": [{"type": "TEXT",
                                                                      "text": text}]}}


def _stopped(chunks: list[dict[str, Any]], stops: tuple[str, ...]) -> dict[str, Any]:
    t = StreamTranslator(message_id="msg_test", model="m", estimated_input=7,
                         stop_sequences=stops)
    out = t.start() + b"".join(t.feed(c) for c in chunks) + t.finish()
    return check_stream(out.decode())


def test_held_back_text_stays_before_the_next_thinking_block() -> None:
    """code-review.md B7: text held back because it might begin a stop sequence ("wor" could
    start "world!") was sent after the following thinking block, in a new text block."""
    chunks = [_text("Hello wor"),
              {"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": "hmm"}},
              _text("ld"), {"finishReason": "stop"}]
    result = _stopped(chunks, ("world!",))
    assert [(b["type"], b.get("text", b.get("thinking"))) for b in result["content"]] == [
        ("text", "Hello wor"), ("thinking", "hmm"), ("text", "ld")]


def test_held_back_text_between_thinking_pieces_is_not_moved() -> None:
    # all of the text is held (shorter than the stop sequence), between two thinking deltas
    chunks = [{"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": "a"}},
              _text("xy"),
              {"index": 0, "message": {"role": "ASSISTANT", "reasoningContent": "b"}},
              {"finishReason": "stop"}]
    result = _stopped(chunks, ("xyz!",))
    assert [b["type"] for b in result["content"]] == ["thinking", "text", "thinking"]
    assert result["content"][1]["text"] == "xy"


def test_held_back_text_ends_an_open_tool_block() -> None:
    """Held text closes the tool call it follows, as unheld text does: a later id-less
    fragment is an orphan, not more arguments (the text then came out after the tool)."""
    call = {"type": "FUNCTION", "id": "call_1", "name": "Read", "arguments": '{"a": 1}'}
    chunks = [{"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [call]}},
              _text("ok"),
              {"index": 0, "message": {"role": "ASSISTANT", "toolCalls": [
                  {"type": "FUNCTION", "arguments": " "}]}},
              {"finishReason": "tool_calls"}]
    for stops in ((), ("okay!",)):
        result = _stopped(chunks, stops)
        assert [b["type"] for b in result["content"]] == ["tool_use", "text"], stops
        assert result["content"][0]["partial_json"] == '{"a": 1}'


def test_nothing_after_a_stop_sequence_in_the_same_chunk() -> None:
    chunks = [{"index": 0, "message": {"role": "ASSISTANT", "content": [
        {"type": "TEXT", "text": "one STOP two"}, {"type": "TEXT", "text": "three"}],
        "toolCalls": [{"type": "FUNCTION", "id": "c", "name": "Bash", "arguments": "{}"}]}}]
    result = _stopped(chunks, ("STOP",))
    assert [b["type"] for b in result["content"]] == ["text"]
    assert result["text"] == "one " and result["stop_reason"] == "stop_sequence"


def test_stream_without_finish_is_not_finished() -> None:
    t = StreamTranslator(message_id="m", model="m", estimated_input=1)
    t.start()
    t.feed(LLAMA_TEXT[1])
    assert not t.finished  # the service turns this into an error event


# --- property (pure): emulator renderers -> byte splits -> SseReader -> StreamTranslator ---------

_CATALOG = Catalog()
_MODEL_IDS = {style: TEST_MODELS[STYLE_MODELS[style]]["model_id"] for style in STYLES}


def context(style: str) -> ChatContext:
    model = _CATALOG.models[_MODEL_IDS[style]]
    chat: dict[str, Any] = {"isStream": True, "streamOptions": {"isIncludeUsage": True}}
    if style == "cohere":
        chat |= {"apiFormat": "COHERE", "message": "hi"}
    else:
        chat |= {"apiFormat": "GENERIC",
                 "messages": [{"role": "USER", "content": [{"type": "TEXT", "text": "hi"}]}]}
    return build_context({"servingMode": {"servingType": "ON_DEMAND",
                                          "modelId": model.model_id}, "chatRequest": chat}, model)


json_values = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6), st.booleans(),
                        st.none(), st.lists(st.integers(0, 99), max_size=3))
arguments = st.dictionaries(st.sampled_from(["file_path", "command", "n", "flag", "x y"]),
                            json_values, max_size=4)
scenarios = st.builds(
    lambda text, reasoning, calls, chunks, length: Scenario(
        text=text, reasoning=reasoning, chunks=chunks,
        tool_calls=[tool_call(name, args) for name, args in calls],
        finish_reason="length" if length else None),
    text=st.sampled_from(["", "Hi", "Hello there, friend.", "naïve café — ✓ 漢字",
                          "line one\nline two\n\n```py\nx = 1\n```"]),
    reasoning=st.sampled_from([None, "", "hmm", "Let me think step by step."]),
    calls=st.lists(st.tuples(st.sampled_from(["Read", "Bash", "Edit"]), arguments),
                   max_size=3),
    chunks=st.one_of(st.none(), st.integers(1, 6)),
    length=st.booleans(),
)


def expected_stop(answer: Answer) -> str:
    if answer.finish_reason == "length":
        return "max_tokens"
    return "tool_use" if answer.tool_calls else "end_turn"


def check_answer(result: dict[str, Any], answer: Answer, *, same_ids: bool = True) -> None:
    """The translated stream says exactly what the model produced, in the model's order.

    ``same_ids``: ``answer`` is the very answer that was streamed (not one resolved again,
    whose random tool ids differ); families with ids must keep them.
    """
    expected_kinds = (["thinking"] if answer.reasoning else []) + (
        ["text"] if answer.text else []) + ["tool_use"] * len(answer.tool_calls)
    assert kinds(result) == expected_kinds
    if answer.reasoning:
        assert result["content"][0]["thinking"] == answer.reasoning
        assert result["content"][0]["signature"]
    assert result["text"] == answer.text
    uses = [b for b in result["content"] if b["type"] == "tool_use"]
    for block, call in zip(uses, answer.tool_calls, strict=True):
        assert block["name"] == call.name
        if answer.style == "cohere":  # COHERE sends parameters objects, re-serialised
            assert json.loads(block["partial_json"]) == json.loads(call.arguments)
        else:  # input_json_delta fragments concatenate to the exact arguments string
            assert block["partial_json"] == call.arguments
        assert block["id"]
        if call.id is None:  # Gemini / Cohere: the gateway mints Anthropic-style ids
            assert block["id"].startswith("toolu_")
        elif same_ids:
            assert block["id"] == call.id
    assert len({b["id"] for b in uses}) == len(uses)
    assert result["stop_reason"] == expected_stop(answer)
    names = [n for n, _ in result["events"]]
    assert names.count("message_start") == 1 and names.count("message_stop") == 1
    assert names.count("message_delta") == 1
    assert result["usage"]["output_tokens"] == answer.completion_tokens


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(style=st.sampled_from(STYLES), scenario=scenarios, single_newline=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_translator_property_every_style(style: str, scenario: Scenario, single_newline: bool,
                                         seed: int) -> None:
    # a seeded Random for the read sizes, not st.randoms(): the number drawn follows the wire's
    # length (fresh ids), and Hypothesis needs the same draws on replay
    rnd = random.Random(seed)
    ctx = context(style)
    answer = resolve_answer(scenario, ctx)
    wire = b"".join(render_stream(answer, ctx, single_newline))
    reader = SseReader()
    t = StreamTranslator(message_id="msg_p", model="m", estimated_input=3,
                         cohere=style == "cohere")
    out = t.start()
    pos = 0
    while pos < len(wire):  # arbitrary socket reads: events straddle them
        step = rnd.randint(1, 64)
        for event in reader.feed(wire[pos:pos + step]):
            out += t.feed(event)
        pos += step
    for event in reader.close():
        out += t.feed(event)
    assert t.finished
    out += t.finish()
    check_answer(check_stream(out.decode()), answer)


# --- property (HTTP): through the gateway --------------------------------------------------------


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
@pytest.mark.parametrize("style", STYLES)
def test_gateway_stream_property_every_style(gateway: GatewayServer, fake: FakeOCI, style: str,
                                             scenario: Scenario) -> None:
    fake.reset()
    fake.push(scenario)
    r = gateway.post("/v1/messages?beta=true", {
        "model": STYLE_MODELS[style], "max_tokens": 1000, "stream": True,
        "messages": [{"role": "user", "content": "go"}]})
    assert r.status_code == 200, r.text
    result = check_stream(r.text)
    answer = resolve_answer(scenario, context(style))  # same content; fresh random tool ids
    check_answer(result, answer, same_ids=False)


# --- ping while OCI is silent --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pinging_gateway(fake_session: FakeOCI, oci_key: TestKey,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("gateway-ping")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          server={"ping_interval": 0.3})
    with GatewayServer(config) as server:
        yield server


@pytest.mark.parametrize("style", ["grok", "cohere"])
def test_pings_while_oci_is_silent(pinging_gateway: GatewayServer, fake: FakeOCI,
                                   style: str) -> None:
    fake.push(Scenario(text="finally here", delay_first_chunk=1.2))
    arrivals: list[tuple[float, str]] = []
    body = ""
    with httpx.stream("POST", pinging_gateway.url + "/v1/messages", timeout=30, json={
        "model": STYLE_MODELS[style], "max_tokens": 50, "stream": True,
        "messages": [{"role": "user", "content": "slow please"}]},
        headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200
        t0 = time.monotonic()
        pending = ""
        for chunk in r.iter_text():
            body += chunk
            pending += chunk
            *complete, pending = pending.split("\n\n")
            for raw in complete:
                arrivals.append((time.monotonic() - t0, raw.split("\n")[0][len("event: "):]))
    result = check_stream(body)
    assert result["text"] == "finally here"
    names = [n for _, n in arrivals]
    first_content = names.index("content_block_start")
    pings = [t for t, n in arrivals[:first_content] if n == "ping"]
    # one ping right after message_start, then one per 0.3 s of upstream silence
    assert len(pings) >= 3, arrivals
    assert pings[1] < 0.9 and pings[-1] - pings[1] > 0.25, arrivals  # sent during the wait
