"""count_tokens, its accuracy and calibration, and the context-window check.

The emulator reports ``promptTokens`` by a fixed rule (emulator/tokens.py); the gateway
estimates without a tokenizer and calibrates per model from what OCI reports. The accuracy test
MEASURES the mean absolute percentage error of ``/v1/messages/count_tokens`` against the
emulator's count over every recorded client body, before and after calibration, and prints it
(run with ``-s`` to see the table).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from app.translate.tokens import image_estimate, image_size
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, prompt_tokens
from tests.harness import ALICE, FIXTURES, GatewayServer, write_config, write_keys

RED_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/x0F8jngAA"
           "AABJRU5ErkJggg==")
TOO_LONG = re.compile(r"^prompt is too long: (\d+) tokens > (\d+) maximum$")
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking",
                "output_config")


def sdk(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=ALICE, max_retries=0)


def count(gateway: GatewayServer | httpx.Client, body: dict[str, Any], query: str = "") -> int:
    r = gateway.post("/v1/messages/count_tokens" + query, json=body) if isinstance(
        gateway, httpx.Client) else gateway.post("/v1/messages/count_tokens" + query, body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert list(data) == ["input_tokens"] and isinstance(data["input_tokens"], int)
    assert r.headers["request-id"].startswith("req_")
    return int(data["input_tokens"])


def fixture_bodies() -> dict[str, dict[str, Any]]:
    """Every recorded request body that has messages (messages and count_tokens calls)."""
    out = {}
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name == "INDEX.json":
            continue
        body = json.loads(path.read_text()).get("body")
        if isinstance(body, dict) and body.get("messages"):
            out[path.stem] = body
    return out


# --- shape -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?beta=true"])
def test_count_tokens_shapes(gateway: GatewayServer, fake: FakeOCI, query: str) -> None:
    plain = {"model": "grok", "messages": [{"role": "user", "content": "hello there"}]}
    n_plain = count(gateway, plain, query)
    assert n_plain > 0
    n_system = count(gateway, {**plain, "system": "You are a careful assistant. " * 20}, query)
    n_blocks = count(gateway, {**plain, "system": [
        {"type": "text", "text": "You are a careful assistant. " * 20,
         "cache_control": {"type": "ephemeral"}}]}, query)
    assert n_system == n_blocks > n_plain + 100
    tools = json.loads((FIXTURES / "cc-20-count-tokens-tools.json").read_text())["body"]
    n_tools = count(gateway, {**tools, "model": "grok"}, query)
    assert n_tools > 1000  # 9 Claude Code tool definitions
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": RED_PNG}}
    n_image = count(gateway, {"model": "grok", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}, image]}]}, query)
    assert n_image > n_plain
    # a whole Messages body is accepted too (max_tokens, stream, metadata ignored)
    body = json.loads((FIXTURES / "cc-01-main-turn-default-model.json").read_text())["body"]
    assert count(gateway, body, query) > n_tools
    assert not fake.requests  # counting never calls OCI


def test_count_tokens_with_the_sdk(gateway: GatewayServer, fake: FakeOCI) -> None:
    client = sdk(gateway)
    result = client.messages.count_tokens(
        model="claude-sonnet-4-5", system="be brief",
        tools=[{"name": "get_weather", "description": "w", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}],
        messages=[{"role": "user", "content": "weather in Paris?"}])
    assert result.input_tokens > 0
    beta = client.beta.messages.count_tokens(
        model="grok", messages=[{"role": "user", "content": "hi"}],
        betas=["token-counting-2024-11-01"])
    assert 0 < beta.input_tokens < result.input_tokens


@pytest.mark.parametrize("model", ["llama", "cohere", "gemini"])
def test_count_tokens_for_other_families(gateway: GatewayServer, model: str) -> None:
    body = json.loads((FIXTURES / "cc-11-parallel-tool-results.json").read_text())["body"]
    assert count(gateway, {**body, "model": model}) > 1000


def test_count_tokens_errors(gateway: GatewayServer) -> None:
    r = gateway.post("/v1/messages/count_tokens", {"model": "nope", "messages": [
        {"role": "user", "content": "x"}]})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = gateway.post("/v1/messages/count_tokens", {"model": "grok"})
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = gateway.post("/v1/messages/count_tokens", {"model": "grok", "messages": []},
                     key="bad-key-0000000000")
    assert r.status_code == 401


# --- image size estimate (pure) ------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
            + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0) + b"\0" * 16)


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\0" * 9
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 3000) + b"\0" * 3000  # sizes can sit far in
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\0" * 9
    return b"\xff\xd8" + app0 + exif + sof


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\0" * 8


def _url(data: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("data", "media"), [(_png(1092, 1092), "image/png"),
                                             (_jpeg(1092, 1092), "image/jpeg"),
                                             (_gif(1092, 1092), "image/gif")])
def test_image_size_is_read_from_the_header(data: bytes, media: str) -> None:
    assert image_size(_url(data, media)) == (1092, 1092)
    assert image_estimate({"url": _url(data, media)}) == 1590  # Anthropic: w*h/750


def test_image_estimate_bounds() -> None:
    assert image_size(f"data:image/png;base64,{RED_PNG}") == (4, 4)
    assert image_estimate({"url": f"data:image/png;base64,{RED_PNG}"}) == 85  # floor
    assert image_estimate({"url": _url(_png(4000, 3000), "image/png")}) == 1600  # cap
    assert image_estimate({"url": "https://example.com/x.png"}) == 1000  # size unknown
    assert image_estimate({"url": "data:image/png;base64,!!!!"}) == 1000
    assert image_estimate(None) == 1000


# --- accuracy and calibration (a fresh gateway: its calibrator has learned nothing) ------------


@pytest.fixture(scope="module")
def fresh_gateway(fake_session: FakeOCI, oci_key: TestKey,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("gateway-count")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          keys_file=write_keys(directory))
    with GatewayServer(config) as server:
        yield server


@pytest.fixture()
def client(fresh_gateway: GatewayServer) -> Iterator[httpx.Client]:
    # one pooled client: httpx.post() builds a new client (and SSL context) per call, ~40 ms
    with httpx.Client(base_url=fresh_gateway.url, timeout=30, headers={
            "x-api-key": ALICE, "anthropic-version": "2023-06-01"}) as c:
        yield c


def mape(pairs: list[tuple[int, int]]) -> float:
    return 100 * sum(abs(est - real) / real for est, real in pairs) / len(pairs)


ACCURACY_MODELS = ["grok", "llama", "gemini", "cohere"]


def test_count_tokens_accuracy_before_and_after_calibration(client: httpx.Client,
                                                            fake: FakeOCI) -> None:
    bodies = fixture_bodies()
    assert len(bodies) >= 25
    table = []
    for model in ACCURACY_MODELS:
        counted = {name: {k: v for k, v in body.items() if k in COUNT_FIELDS} | {"model": model}
                   for name, body in bodies.items()}
        before = {name: count(client, b) for name, b in counted.items()}
        real: dict[str, int] = {}
        for name, body in counted.items():
            # serve the same body: the emulator counts what the gateway really sent
            r = client.post("/v1/messages", json={**body, "max_tokens": 64})
            assert r.status_code == 200, (name, r.text)
            real[name] = prompt_tokens(fake.requests[-1].chat_request)
            assert r.json()["usage"]["input_tokens"] == real[name]  # OCI's count, reported
        after = {name: count(client, b) for name, b in counted.items()}
        pairs_before = [(before[n], real[n]) for n in counted]
        pairs_after = [(after[n], real[n]) for n in counted]
        worst = max(abs(e - r) / r for e, r in pairs_after) * 100
        table.append((model, mape(pairs_before), mape(pairs_after), worst))
        assert mape(pairs_before) < 3.0 and mape(pairs_after) < 3.0 and worst < 10.0
    print("\ncount_tokens vs emulator promptTokens over", len(bodies), "fixture bodies")
    print(f"{'model':8} {'MAPE before':>12} {'MAPE after':>11} {'worst after':>12}")
    for model, b, a, w in table:
        print(f"{model:8} {b:11.2f}% {a:10.2f}% {w:11.2f}%")


def test_calibration_follows_what_oci_reports(fresh_gateway: GatewayServer,
                                              fake: FakeOCI) -> None:
    """A model whose tokenizer counts 1.6x the gateway's rule: after a few answers the
    estimate (count_tokens and message_start) follows what OCI reports."""
    model, scale = "gpt5", 1.6
    bodies = [{"model": model, "messages": [{"role": "user", "content": f"question {i}: "
                                             + "lorem ipsum dolor sit amet " * (20 + 15 * i)}],
               "system": "be helpful " * i} for i in range(6)]
    held_out = bodies.pop()
    rule: list[int] = []
    for body in [*bodies, held_out]:  # learn the emulator's count without calibrating
        fake.push(Scenario(text="ok", include_usage_event=False))
        r = fresh_gateway.post("/v1/messages", {**body, "max_tokens": 16, "stream": True})
        check_stream(r.text)
        rule.append(prompt_tokens(fake.requests[-1].chat_request))
    first = count(fresh_gateway, held_out)
    assert abs(first - rule[-1]) / rule[-1] < 0.03  # uncalibrated: the plain rule
    for body, p in zip(bodies, rule, strict=False):
        reported = round(p * scale)
        fake.push(Scenario(text="ok", usage={"promptTokens": reported, "completionTokens": 1,
                                             "totalTokens": reported + 1}))
        r = fresh_gateway.post("/v1/messages", {**body, "max_tokens": 16})
        assert r.json()["usage"]["input_tokens"] == reported
    target = rule[-1] * scale
    learned = count(fresh_gateway, held_out)
    assert abs(learned - target) / target < 0.03, (first, learned, target)
    print(f"\ncalibration x{scale}: target {target:.0f}, uncalibrated {first}, learned {learned}")
    fake.push(Scenario(text="ok", include_usage_event=False))
    r = fresh_gateway.post("/v1/messages", {**held_out, "max_tokens": 16, "stream": True})
    assert check_stream(r.text)["message_start"]["usage"]["input_tokens"] == learned


# --- the context window ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_over_the_context_window_is_rejected_before_oci(gateway: GatewayServer,
                                                                fake: FakeOCI,
                                                                stream: bool) -> None:
    body = {"model": "tiny", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "word " * 1500}]}  # ~1900 tokens
    r = gateway.post("/v1/messages?beta=true", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    m = TOO_LONG.match(err["message"])
    assert m, err["message"]  # the exact form Claude Code parses
    tokens, maximum = int(m[1]), int(m[2])
    assert maximum == 1000 and tokens > 1000
    assert tokens == count(gateway, body)  # the same estimate count_tokens gives
    assert not fake.requests
    # under the window it goes through
    ok = gateway.post("/v1/messages", {**body, "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200


@pytest.mark.parametrize(("message", "expected"), [
    ("This model's maximum context length is 131072 tokens. However, your messages resulted "
     "in 140000 tokens.", (140000, 131072)),
    ("Input is too long: 200,000 tokens exceeds the maximum of 131,072", (200000, 131072)),
    ("Input is too long for requested model.", None),
])
@pytest.mark.parametrize("stream", [False, True])
def test_oci_context_overflow_becomes_prompt_too_long(gateway: GatewayServer, fake: FakeOCI,
                                                      message: str, expected: Any,
                                                      stream: bool) -> None:
    fake.push(Scenario(error={"status": 400, "message": message}))
    r = gateway.post("/v1/messages", {"model": "grok", "max_tokens": 10, "stream": stream,
                                      "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    m = TOO_LONG.match(err["message"])
    assert m, err["message"]
    if expected is not None:
        assert (int(m[1]), int(m[2])) == expected
    else:
        assert int(m[2]) == 131072 and int(m[1]) > 131072
    assert len(fake.requests) == 1  # never retried
