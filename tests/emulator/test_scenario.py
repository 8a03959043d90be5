"""Scripting: errors, dropped connections, client disconnects, delays, routing, inline markers,
the HTTP control API and the request log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from emulator import CHAT_PATH, FakeOCI, Scenario, error_scenario, inline_marker, tool_call
from tests.emulator.wire import (
    LLAMA,
    Result,
    cohere_details,
    details,
    parse_sse,
    send,
    signed_headers,
)


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


def test_the_request_log_is_bounded_by_bytes(key: Any, signer: Any) -> None:
    """Big bodies are forgotten oldest first once their bytes pass the bound (the benchmark's
    1 MB turns grew the emulator to 2.5 GB before); the newest is kept, however big."""
    budget = 64 * 1024
    with FakeOCI(public_keys={key.key_id: key.public_pem}, max_recorded_bytes=budget) as small:
        url = small.url + CHAT_PATH
        sizes = []
        for i in range(8):
            raw = json.dumps(details(text=f"turn {i} " + "x" * 20_000)).encode()
            sizes.append(len(raw))
            assert send("POST", url, raw, signed_headers(signer, url, raw)).status == 200
        kept = small.requests
        assert 1 < len(kept) < 8  # the oldest went, several stayed
        assert sum(len(r.raw_body) for r in kept) <= budget
        texts = [r.body["chatRequest"]["messages"][0]["content"][0]["text"] for r in kept]
        assert [t.split()[1] for t in texts] == [str(i) for i in range(8 - len(kept), 8)]
        huge = json.dumps(details(text="y" * (2 * budget))).encode()
        assert send("POST", url, huge, signed_headers(signer, url, huge)).status == 200
        assert [r.raw_body for r in small.requests] == [huge]  # alone over the bound: kept


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
