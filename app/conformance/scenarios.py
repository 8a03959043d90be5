"""The conformance scenarios: one Anthropic conversation each, and what its answer must look like.

Contract: :data:`SCENARIOS` lists every scenario in run order. A scenario's ``run(ctx)`` sends
one or more requests through ``ctx.send`` (``POST /v1/messages`` on the gateway under test,
which returns the checked answer, :mod:`.stream_check`) and raises ``AssertionError`` naming
what is wrong, :class:`Skip` when the model cannot take the scenario (it does not fit the
model's context window), or lets a :class:`~app.conformance.runner.Refused` from ``send``
through. ``needs`` names the capability a model must have for the scenario to run at all.

The prompts are chosen so a correct model answers them the same way every time, and the checks
test the gateway's promises (shapes, stop reasons, tool calls, JSON), not the model's wit.
The text a scenario marks with ``ctx.private`` is redacted from recorded cassettes.

Cost: every scenario asks for a short answer except ``long_context``, which sends a prompt of
about 90% of the model's ``context_window`` (capped at :data:`LONG_CONTEXT_MAX_BYTES` of text,
about 100k tokens) and is by far the most expensive; ``--skip long_context`` leaves it out.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from app.catalog.spec import ModelSpec

#: text bytes of the long_context prompt at most: ~100k tokens at 4 characters a token, so a
#: 1M-token model is not billed for a million tokens per run
LONG_CONTEXT_MAX_BYTES = 400_000
LONG_CONTEXT_SHARE = 0.9


class Skip(Exception):
    """The scenario does not apply to this model; the message says why."""


class Ctx(Protocol):
    model: str
    spec: ModelSpec

    def send(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def count_tokens(self, body: dict[str, Any]) -> int: ...

    def private(self, texts: list[str]) -> None: ...


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[Ctx], None]
    needs: str | None = None


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "city name"}},
        "required": ["city"],
    },
}
STOPS_AT_END = ("end_turn", "max_tokens", "stop_sequence")


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _ask(ctx: Ctx, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"model": ctx.model, "max_tokens": 256, "messages": messages, **extra}
    return ctx.send(body)


def _has_text(answer: dict[str, Any]) -> None:
    assert answer["text"].strip(), f"no text in the answer (content {answer['content']!r})"
    assert answer["stop_reason"] in STOPS_AT_END, f"stop_reason {answer['stop_reason']!r}"


def text(ctx: Ctx) -> None:
    answer = _ask(ctx, [_user("Reply with the single word: pong")], max_tokens=64)
    _has_text(answer)
    assert answer["usage"]["input_tokens"] > 0, "usage.input_tokens is 0"


def stream(ctx: Ctx) -> None:
    _has_text(_ask(ctx, [_user("Count from one to five in words.")], stream=True))


def tool_round_trip(ctx: Ctx) -> None:
    prompt = _user("Use the get_weather tool to find out the weather in Lisbon.")
    first = _ask(ctx, [prompt], tools=[WEATHER_TOOL], stream=True)
    calls = [b for b in first["content"] if b["type"] == "tool_use"]
    assert first["stop_reason"] == "tool_use", f"stop_reason {first['stop_reason']!r}, no tool"
    assert calls and all(c["name"] == "get_weather" for c in calls), f"calls {calls!r}"
    assert isinstance(calls[0]["input"].get("city"), str), f"input {calls[0]['input']!r}"
    # fixed ids in the follow-up: the gateway mints random ones for models that send none, and
    # a recorded run must send the same bytes again to be replayed (cassettes match exactly)
    for i, call in enumerate(calls):
        call["id"] = f"toolu_conf_{i}"
    results: list[dict[str, Any]] = [
        {"type": "tool_result", "tool_use_id": c["id"], "content": "Sunny, 21 °C"} for c in calls
    ]
    # text after the results, as Claude Code sends (reminders): the Cohere TOOL->USER case
    results.append({"type": "text", "text": "Answer in one short sentence."})
    history = [prompt, {"role": "assistant", "content": _echo(first["content"])}]
    _has_text(_ask(ctx, [*history, {"role": "user", "content": results}], tools=[WEATHER_TOOL]))


def _echo(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An answer's blocks as the client sends them back in the next request."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b["type"] == "text":
            out.append({"type": "text", "text": b["text"]})
        elif b["type"] == "thinking":
            out.append(
                {"type": "thinking", "thinking": b["thinking"], "signature": b.get("signature", "")}
            )
        elif b["type"] == "tool_use":
            out.append({"type": "tool_use", "id": b["id"], "name": b["name"], "input": b["input"]})
        else:
            out.append({k: v for k, v in b.items() if k != "partial_json"})
    return out


def _call(call_id: str, city: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": city}}


def _result(call_id: str, weather: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": weather}


def parallel_tools(ctx: Ctx) -> None:
    """Two calls in one turn answered by two results in one message (Gemini wants 1:1 pairs)."""
    history = [
        _user("Compare the weather in Paris and in Tokyo."),
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll check both cities."},
                _call("toolu_conf_paris", "Paris"),
                _call("toolu_conf_tokyo", "Tokyo"),
            ],
        },
        {
            "role": "user",
            "content": [
                _result("toolu_conf_paris", "Rain, 12 °C"),
                _result("toolu_conf_tokyo", "Clear, 25 °C"),
            ],
        },
    ]
    _has_text(_ask(ctx, history, tools=[WEATHER_TOOL], stream=True))


def tool_only_turn(ctx: Ctx) -> None:
    """An assistant turn with a tool call and no text (Gemini's backend fails on a bare one)."""
    history = [
        _user("What is the weather in Oslo?"),
        {"role": "assistant", "content": [_call("toolu_conf_oslo", "Oslo")]},
        {"role": "user", "content": [_result("toolu_conf_oslo", "Snow, -3 °C")]},
    ]
    _has_text(_ask(ctx, history, tools=[WEATHER_TOOL]))


def thinking(ctx: Ctx) -> None:
    """``thinking`` is sent to every model (Claude Code does): the gateway must map or drop it."""
    answer = _ask(
        ctx,
        [_user("What is 17 times 23? Answer with the number only.")],
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        stream=True,
    )
    _has_text(answer)
    kinds = [b["type"] for b in answer["content"]]
    first_text = kinds.index("text")
    assert all(k != "tool_use" for k in kinds), f"unexpected tool_use in {kinds}"
    assert all(k == "text" for k in kinds[first_text:]), f"thinking after text: {kinds}"


def tiny_png(size: int = 32, rgb: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    """A solid-colour PNG, made here so the package needs no image file."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image(ctx: Ctx) -> None:
    import base64

    data = base64.b64encode(tiny_png()).decode()
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What colour is this image? Answer with one word."},
    ]
    _has_text(_ask(ctx, [{"role": "user", "content": content}], max_tokens=64))


CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def structured_output(ctx: Ctx) -> None:
    fmt = {"format": {"type": "json_schema", "schema": CITY_SCHEMA}}
    answer = _ask(ctx, [_user("Name the capital of France and its country.")], output_config=fmt)
    _has_text(answer)
    try:
        value = json.loads(answer["text"])
    except ValueError:
        raise AssertionError(f"the text is not JSON: {answer['text'][:200]!r}") from None
    assert isinstance(value, dict), f"not a JSON object: {value!r}"
    for key in ("city", "country"):
        assert isinstance(value.get(key), str), f"{key!r} missing or not a string in {value!r}"


def stop_sequence(ctx: Ctx) -> None:
    prompt = _user("Repeat exactly, and nothing else: alpha beta STOP gamma delta")
    answer = _ask(ctx, [prompt], stop_sequences=["STOP"], max_tokens=64, stream=True)
    assert answer["stop_reason"] in ("stop_sequence", "end_turn"), answer["stop_reason"]
    if answer["stop_reason"] == "stop_sequence":
        assert answer["stop_sequence"] == "STOP", f"stop_sequence {answer['stop_sequence']!r}"
    assert "STOP" not in answer["text"], f"the stop sequence is in the text: {answer['text']!r}"
    assert "gamma" not in answer["text"], f"text after the stop sequence: {answer['text']!r}"


_FILLER = "Note {:06d}: the committee reviewed the quarterly figures and filed them.\n"


def _filler(chars: int) -> str:
    line_len = len(_FILLER.format(0))
    return "".join(_FILLER.format(i) for i in range(chars // line_len + 1))[:chars]


def long_context(ctx: Ctx) -> None:
    """A prompt of ~90% of the context window (sized with the gateway's own token estimate)."""
    target = int(ctx.spec.context_window * LONG_CONTEXT_SHARE) - 64
    if target < 100:
        raise Skip(f"context_window {ctx.spec.context_window} is too small")

    def body(chars: int) -> dict[str, Any]:
        question = "\n\nHow many notes are above? Answer with a number."
        return {
            "model": ctx.model,
            "max_tokens": 16,
            "messages": [_user(_filler(chars) + question)],
        }

    chars = min(target * 4, LONG_CONTEXT_MAX_BYTES)
    estimate = ctx.count_tokens(body(chars))
    chars = min(int(chars * target / max(estimate, 1)), LONG_CONTEXT_MAX_BYTES)
    request = body(chars)
    expected = ctx.count_tokens(request)
    answer = ctx.send(request)
    _has_text(answer)
    sent = answer["usage"]["input_tokens"]
    assert sent >= expected // 2, f"OCI counted {sent} input tokens for ~{expected} sent"


def _fixture() -> dict[str, Any]:
    data = resources.files("app.conformance").joinpath("data/claude-code-main-turn.json")
    body: dict[str, Any] = json.loads(data.read_text(encoding="utf-8"))["body"]
    return body


def tool_result_texts(body: dict[str, Any]) -> list[str]:
    """The text of every tool_result (file contents, command output): the user's own data."""
    texts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") != "tool_result":
                continue
            inner = block.get("content")
            if isinstance(inner, str):
                texts.append(inner)
            elif isinstance(inner, list):
                texts += [b["text"] for b in inner if b.get("type") == "text" and b.get("text")]
    return [t for t in texts if t]


def claude_code(ctx: Ctx) -> None:
    """A recorded Claude Code main turn (24 tools, adaptive thinking, a tool result), as sent."""
    body = {**_fixture(), "model": ctx.model}
    counted = {k: v for k, v in body.items() if k not in ("max_tokens", "stream", "metadata")}
    need = ctx.count_tokens(counted)
    if need > ctx.spec.context_window * LONG_CONTEXT_SHARE:
        raise Skip(f"the fixture needs ~{need} tokens, context_window {ctx.spec.context_window}")
    ctx.private(tool_result_texts(body))
    answer = ctx.send(body)
    assert answer["content"], "empty answer"
    assert answer["stop_reason"] in ("end_turn", "tool_use", "max_tokens"), answer["stop_reason"]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("text", "plain text, JSON answer", text),
    Scenario("stream", "plain text, streamed", stream),
    Scenario("tool_round_trip", "a tool call, then its result", tool_round_trip, "tools"),
    Scenario("parallel_tools", "two tool calls answered together", parallel_tools, "tools"),
    Scenario("tool_only_turn", "an assistant turn with only a tool call", tool_only_turn, "tools"),
    Scenario("thinking", "thinking enabled (budget 1024)", thinking),
    Scenario("image", "a base64 PNG", image, "vision"),
    Scenario("structured_output", "output_config.format json_schema", structured_output),
    Scenario("stop_sequence", "stop_sequences cut the text", stop_sequence),
    Scenario("long_context", "a prompt of ~90% of the context window", long_context),
    Scenario("claude_code", "a recorded Claude Code main turn", claude_code),
)
NAMES = tuple(s.name for s in SCENARIOS)
