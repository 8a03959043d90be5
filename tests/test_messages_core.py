"""Core /v1/messages behaviour through real HTTP: anthropic SDK -> gateway -> OCI emulator."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, completion_tokens, prompt_tokens
from tests.harness import ALICE, BOB, STYLE_MODELS, GatewayServer

GENERIC_STYLES = ["llama", "openai", "grok", "gemini"]


def sdk(gateway: GatewayServer, key: str = ALICE) -> anthropic.Anthropic:
    # SDK 2.x sends the key as Authorization: Bearer
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def sdk_x_api_key(gateway: GatewayServer, key: str = BOB) -> anthropic.Anthropic:
    # what SDK 1.x and Claude Code with ANTHROPIC_API_KEY send: x-api-key, no Bearer
    return anthropic.Anthropic(base_url=gateway.url, api_key=None, auth_token=None,
                               default_headers={"x-api-key": key}, max_retries=0)


@pytest.mark.parametrize("style", GENERIC_STYLES)
@pytest.mark.parametrize("variant", ["plain", "split_reads", "single_newline"])
def test_streaming_text_every_generic_style(gateway: GatewayServer, fake: FakeOCI, style: str,
                                            variant: str) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice."
    fake.push(Scenario(text=text, chunks=7, style=style,
                       split_reads=variant == "split_reads",
                       single_newline=variant == "single_newline"))
    with sdk(gateway).messages.stream(
        model=STYLE_MODELS[style], max_tokens=200,
        messages=[{"role": "user", "content": "tell me about foxes"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    req = fake.requests[-1].body["chatRequest"]
    assert req["isStream"] is True and req["streamOptions"] == {"isIncludeUsage": True}
    # usage is what the emulator reported, not an estimate
    assert final.usage.output_tokens == completion_tokens(text, "", [])
    assert final.usage.input_tokens == prompt_tokens(req)


@pytest.mark.parametrize("style", GENERIC_STYLES)
def test_raw_stream_invariants(gateway: GatewayServer, fake: FakeOCI, style: str) -> None:
    fake.push(Scenario(text="alpha beta gamma delta", chunks=4, style=style))
    r = gateway.post("/v1/messages?beta=true", {
        "model": STYLE_MODELS[style], "max_tokens": 50, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"].startswith("req_")
    result = check_stream(r.text)
    assert result["text"] == "alpha beta gamma delta"
    assert result["stop_reason"] == "end_turn"
    names = [n for n, _ in result["events"]]
    assert names.count("message_stop") == 1 and "ping" in names


@pytest.mark.parametrize("style", GENERIC_STYLES)
def test_non_streaming_text(gateway: GatewayServer, fake: FakeOCI, style: str) -> None:
    fake.push(Scenario(text="Plain answer.", style=style))
    msg = sdk_x_api_key(gateway).messages.create(
        model=STYLE_MODELS[style], max_tokens=100,
        messages=[{"role": "user", "content": "answer plainly"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "Plain answer."
    assert msg.stop_reason == "end_turn" and msg.id.startswith("msg_")
    assert msg.model == STYLE_MODELS[style]
    assert msg._request_id and msg._request_id.startswith("req_")
    assert msg.usage.output_tokens > 0
    assert "isStream" not in fake.requests[-1].body["chatRequest"]


def test_system_prompt_string_and_blocks(gateway: GatewayServer, fake: FakeOCI) -> None:
    client = sdk(gateway)
    client.messages.create(model="grok", max_tokens=10, system="be brief",
                           messages=[{"role": "user", "content": "hi"}])
    first = fake.requests[-1].body["chatRequest"]["messages"][0]
    assert first == {"role": "SYSTEM", "content": [{"type": "TEXT", "text": "be brief"}]}
    client.messages.create(
        model="grok", max_tokens=10,
        system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=1;"},
                {"type": "text", "text": "rule one", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "rule two"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi",
                                                "cache_control": {"type": "ephemeral"}}]},
                  {"role": "system", "content": "mid-conversation listing"}],  # type: ignore[misc,list-item]
    )
    msgs = fake.requests[-1].body["chatRequest"]["messages"]
    system_text = msgs[0]["content"][0]["text"]
    assert msgs[0]["role"] == "SYSTEM"
    assert "rule one" in system_text and "rule two" in system_text
    assert "mid-conversation listing" in system_text
    assert "billing-header" not in system_text
    assert [m["role"] for m in msgs] == ["SYSTEM", "USER"]


def test_stop_sequence(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text="one two STOP three four", chunks=5))
    with sdk(gateway).messages.stream(model="grok", max_tokens=50, stop_sequences=["STOP"],
                                      messages=[{"role": "user", "content": "count"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "STOP"
    assert final.content[0].text == "one two "
    fake.push(Scenario(text="one two STOP three four"))
    msg = sdk(gateway).messages.create(model="grok", max_tokens=50, stop_sequences=["STOP"],
                                       messages=[{"role": "user", "content": "count"}])
    assert msg.stop_reason == "stop_sequence" and msg.content[0].text == "one two "


def test_max_tokens_stop_and_clamping(gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(text="truncated", finish_reason="length"))
    msg = sdk(gateway).messages.create(model="tiny", max_tokens=20000,
                                       messages=[{"role": "user", "content": "long"}])
    assert msg.stop_reason == "max_tokens"
    assert fake.requests[-1].body["chatRequest"]["maxTokens"] == 100
    gateway.post("/v1/messages", {"model": "gpt5", "max_tokens": 64000,
                                  "messages": [{"role": "user", "content": "x"}]})
    req = fake.requests[-1].body["chatRequest"]
    assert req["maxCompletionTokens"] == 32000 and "maxTokens" not in req


def test_sampling_parameters_are_mapped(gateway: GatewayServer, fake: FakeOCI) -> None:
    sdk(gateway).messages.create(
        model="grok", max_tokens=10, messages=[{"role": "user", "content": "x"}],
        extra_body={"temperature": 0.3, "top_p": 0.8, "top_k": 40,
                    "metadata": {"user_id": "u"}, "some_future_field": {"a": 1}},
        extra_headers={"anthropic-beta": "made-up-beta-2099-01-01", "x-unknown": "1"})
    req = fake.requests[-1].body["chatRequest"]
    assert (req["temperature"], req["topP"], req["topK"]) == (0.3, 0.8, 40)


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_type"),
    [(400, 400, "invalid_request_error"), (404, 500, "api_error"),
     (429, 429, "rate_limit_error"), (500, 500, "api_error"), (503, 529, "overloaded_error"),
     (401, 500, "api_error"), (403, 500, "api_error")],
)
def test_upstream_error_mapping(gateway: GatewayServer, fake: FakeOCI, status: int,
                                expected_status: int, expected_type: str) -> None:
    for _ in range(3):  # retried statuses are retried up to max_attempts (3)
        fake.push(Scenario(error={"status": status, "message": f"emulated {status} problem"}))
    r = gateway.post("/v1/messages", {"model": "grok", "max_tokens": 10,
                                      "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == expected_status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == expected_type
    assert r.headers["request-id"] == body["request_id"]
    if status == 400:
        assert "emulated 400 problem" in body["error"]["message"]
    if status in (401, 403):
        assert "credentials" in body["error"]["message"]
    if status == 429:
        assert int(r.headers["retry-after"]) >= 1
    attempts = len(fake.requests)
    assert attempts == (3 if status in (429, 500, 503) else 1)


def test_transient_error_is_retried_before_first_byte(gateway: GatewayServer,
                                                      fake: FakeOCI) -> None:
    fake.push(Scenario(error={"status": 503}), Scenario(text="recovered"))
    with sdk(gateway).messages.stream(model="grok", max_tokens=10,
                                      messages=[{"role": "user", "content": "x"}]) as s:
        assert s.get_final_message().content[0].text == "recovered"
    assert len(fake.requests) == 2
    # each attempt carries its own opc-request-id
    ids = {r.headers["opc-request-id"] for r in fake.requests}
    assert len(ids) == 2


def test_dropped_upstream_stream_becomes_error_event(gateway: GatewayServer,
                                                     fake: FakeOCI) -> None:
    fake.push(Scenario(text="a b c d e f g h", chunks=8, drop_after=3))
    r = gateway.post("/v1/messages", {"model": "grok", "max_tokens": 10, "stream": True,
                                      "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200
    result = check_stream(r.text, allow_error=True)
    assert result["error"] is not None and result["error"]["type"] == "api_error"
    assert [n for n, _ in result["events"]][-1] == "error"
    # the SDK surfaces it as an APIStatusError, not a hang
    fake.push(Scenario(text="a b c d e f g h", chunks=8, drop_after=3))
    with pytest.raises(anthropic.APIStatusError):
        with sdk(gateway).messages.stream(model="grok", max_tokens=10,
                                          messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()


def test_upstream_timeout_mid_stream(gateway: GatewayServer, fake: FakeOCI) -> None:
    # idle timeout is 5 s in the test config; the stream pings meanwhile (ping_interval 10 s
    # default is longer, so only the error matters here)
    fake.push(Scenario(text="a b c", chunks=3, delay_between=6.0))
    r = gateway.post("/v1/messages", {"model": "grok", "max_tokens": 10, "stream": True,
                                      "messages": [{"role": "user", "content": "x"}]})
    result = check_stream(r.text, allow_error=True)
    assert result["error"]["type"] == "overloaded_error"


def test_client_keys(gateway: GatewayServer, fake: FakeOCI) -> None:
    body = {"model": "grok", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert gateway.post("/v1/messages", body, key=None).status_code == 401
    bad = gateway.post("/v1/messages", body, key="wrong-key-123456")
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    ok_bearer = httpx.post(gateway.url + "/v1/messages", json=body,
                           headers={"authorization": f"Bearer {ALICE}"})
    assert ok_bearer.status_code == 200
    # bob's entry is stored as a sha256 digest
    assert gateway.post("/v1/messages", body, key=BOB).status_code == 200
    with pytest.raises(anthropic.AuthenticationError):
        sdk(gateway, key="nope-nope-nope").messages.create(**body)  # type: ignore[arg-type]


def test_unknown_model_is_404_listing_names(gateway: GatewayServer, fake: FakeOCI) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        sdk(gateway).messages.create(model="gpt-4o", max_tokens=10,
                                     messages=[{"role": "user", "content": "x"}])
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert "gpt-4o" in message and "grok" in message and "claude-*" in message
    assert not fake.requests
    # aliases (glob) and the [1m] suffix
    sdk(gateway).messages.create(model="claude-opus-4-8[1m]", max_tokens=10,
                                 messages=[{"role": "user", "content": "x"}])
    assert fake.requests[-1].body["servingMode"]["modelId"] == "xai.grok-4"


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b"{not json", "not valid JSON"),
     (b"[1,2]", "JSON object"),
     (b'{"model":"grok","messages":[{"role":"user","content":"x"}]}', "max_tokens"),
     (b'{"model":"grok","max_tokens":"ten","messages":[]}', "max_tokens"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"robot","content":"x"}]}',
      "messages.0.role"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text"}]}]}',
      "messages.0.content"),
     (b'{"model":"grok","max_tokens":5,"messages":[]}', "at least one user message"),
     # text kept as the client's JSON bytes (app/anthropic/models.py) is still type-checked
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text",'
      b'"text":5}]}]}', "messages.0.content.0: Expected `str` for `text`"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text",'
      b'"text":"caf\xe9"}]}]}', "Invalid UTF-8"),
     # ... also when an unknown block type sends the body through the second pass
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":"zzz"},'
      b'{"type":"text","text":"caf\xe9"}]}]}', "UTF-8"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":'
      b'"tool_result","tool_use_id":"t","content":7}]}]}', "messages.0.content.0"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":'
      b'"tool_result","tool_use_id":"t","content":[{"type":"text","text":[]}]}]}]}',
      "messages.0.content.0.content.0: Expected `str` for `text`"),
     (b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image",'
      b'"source":{"type":"base64","media_type":"","data":""}}]}]}', "media_type")],
)
def test_bad_requests_are_400_naming_the_problem(gateway: GatewayServer, fake: FakeOCI,
                                                 body: bytes, needle: str) -> None:
    r = httpx.post(gateway.url + "/v1/messages", content=body,
                   headers={"x-api-key": ALICE, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and needle in err["message"]
    assert not fake.requests


def test_body_too_large_is_413(gateway: GatewayServer, fake: FakeOCI) -> None:
    big = b'{"model":"grok","max_tokens":5,"messages":[{"role":"user","content":"' + (
        b"x" * (33 * 1024 * 1024)) + b'"}]}'
    r = httpx.post(gateway.url + "/v1/messages", content=big,
                   headers={"x-api-key": ALICE, "content-type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_ops_endpoints(gateway: GatewayServer) -> None:
    assert httpx.head(gateway.url + "/").status_code == 200
    assert httpx.get(gateway.url + "/").status_code == 200
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(gateway.url + "/readyz").status_code == 200
    metrics = httpx.get(gateway.metrics_url)  # the metrics have their own port
    assert metrics.status_code == 200 and "gateway_requests_total" in metrics.text
    assert httpx.get(gateway.url + "/metrics").status_code == 404  # never on the API port
    nf = httpx.get(gateway.url + "/v1/nothing")
    assert nf.status_code == 404 and nf.json()["error"]["type"] == "not_found_error"
    assert nf.headers["request-id"].startswith("req_")


def test_emulator_sees_signed_keepalive_requests(gateway: GatewayServer, fake: FakeOCI) -> None:
    for _ in range(2):
        sdk(gateway).messages.create(model="grok", max_tokens=5,
                                     messages=[{"role": "user", "content": "x"}])
    for rec in fake.requests:
        assert rec.headers["authorization"].startswith('Signature algorithm="rsa-sha256"')
        assert rec.headers["accept-encoding"] == "identity"
        assert len(rec.headers["opc-request-id"]) == 32


def test_models_lists_plain_aliases_for_claude_code_discovery(fake: FakeOCI, oci_key: Any,
                                                              tmp_path: Any) -> None:
    from tests.harness import write_config

    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          aliases={"claude-sonnet-4-5": "grok", "claude-*": "llama"})
    with GatewayServer(config) as gw:
        listing = httpx.get(gw.url + "/v1/models", params={"limit": 1000}).json()
        ids = [m["id"] for m in listing["data"]]
        assert "claude-sonnet-4-5" in ids and "claude-*" not in ids and "grok" in ids
        one = httpx.get(gw.url + "/v1/models/claude-sonnet-4-5").json()
        assert one["max_tokens"] == 16384 and one["type"] == "model"
