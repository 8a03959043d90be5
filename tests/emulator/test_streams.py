"""The streaming styles of each model family, byte for byte where it matters."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from emulator import CHAT_PATH, Catalog, FakeOCI, Scenario, tool_call
from emulator.tokens import ceil4
from tests.emulator.wire import (
    LLAMA,
    REQUEST_ID_RE,
    Result,
    assert_padded,
    cohere_details,
    details,
    parse_sse,
    signed_headers,
    text_of,
    tool_scenario,
)


def _stream(fake: FakeOCI, chat: Callable[..., Result], model: str, scenario: Scenario,
            include_usage: bool = True) -> Result:
    fake.push(scenario)
    effort = {"reasoningEffort": "LOW"} if Catalog().models[model].effort_knob else {}
    result = chat(details(model, stream=True, include_usage=include_usage, **effort))
    assert result.status == 200, result.raw
    assert result.headers["content-type"] == "text/event-stream"
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])
    assert result.raw.endswith(b"\n")
    return result


def test_llama_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, LLAMA, tool_scenario()).events()
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
    events = _stream(fake, chat, "openai.gpt-oss-120b", tool_scenario()).events()
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
    events = _stream(fake, chat, "xai.grok-4", tool_scenario()).events()
    assert "[DONE]" not in events
    calls = [e["message"]["toolCalls"] for e in events if e.get("message", {}).get("toolCalls")]
    assert len(calls) == 2 and all(len(c) == 1 for c in calls)
    for (call,), name in zip(calls, ["get_weather", "get_time"], strict=True):
        assert re.fullmatch(r"call_\d+", call["id"]) and call["name"] == name
        json.loads(call["arguments"])
    finish = events[-2]
    assert finish["message"] == {"role": "ASSISTANT"} and finish["finishReason"] == "tool_calls"


def test_gemini_stream_shape(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    events = _stream(fake, chat, "google.gemini-2.5-flash", tool_scenario()).events()
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
