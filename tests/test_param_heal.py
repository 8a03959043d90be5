"""Self-healing parameters: the pure parsing of OCI's refusals (every known message shape), the
per-process memory, then over real HTTP through the emulator: a 400 naming a parameter is
retried once without it and the client gets a 200, later requests omit it up front, a 400
naming none is not retried, a retry refused again returns the unwrapped error.

The gateway here is this module's own: what it learns must not leak into the session gateway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import UpstreamKind
from app.oci.errors import classify
from app.oci.param_compat import heal, rejected_param, unwrap_message
from app.service.param_memory import ParamMemory
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import TEST_MODELS, GatewayServer, chat, metric, write_config

GPT5_TEMPERATURE = json.dumps({"error": {
    "message": "Unsupported value: 'temperature' does not support 0.5 with this model. Only the "
               "default (1) value is supported.",
    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}})


# --------------------------------------------------------------------------- pure parsing

@pytest.mark.parametrize(("message", "param"), [
    ("Model grok-4 does not support parameter reasoningEffort", "reasoningEffort"),
    ("Model grok-4.20 does not support parameter reasoningEffort.", "reasoningEffort"),
    ("chatRequest.reasoningEffort: Model xai.grok-4 does not support parameter reasoningEffort",
     "reasoningEffort"),
    ("This model does not support `reasoning_effort`", "reasoningEffort"),
    ("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
     "'max_completion_tokens' instead.", "maxTokens"),
    ("Unsupported value: 'temperature' does not support 0.5 with this model.", "temperature"),
    ("'top_k' is not supported with this model", "topK"),
    ("Unsupported parameter: 'topP'", "topP"),
    # names no parameter the gateway heals
    ("Invalid parameter", None),
    ("Model llama does not support images", None),
    ("maxTokens must be at most 4000", None),
    ("Inappropriate output content detected in output blocklist", None),
])
def test_rejected_param_from_message_shapes(message: str, param: str | None) -> None:
    assert rejected_param(message) == param


def test_structured_param_needs_an_unsupported_code() -> None:
    assert rejected_param("x", "temperature", "unsupported_value") == "temperature"
    assert rejected_param("x", "maxTokens", "unsupported_parameter") == "maxTokens"
    assert rejected_param("x", "top_p", None) == "topP"
    # a parameter named for its value's range is not one to drop
    assert rejected_param("x", "maxTokens", "integer_above_max_value") is None
    assert rejected_param("x", "messages", "unsupported_value") is None


def test_unwrap_double_encoded_messages() -> None:
    assert unwrap_message(GPT5_TEMPERATURE) == (
        json.loads(GPT5_TEMPERATURE)["error"]["message"], "temperature", "unsupported_value")
    xai = '{"code":"invalid-argument","error":"Model grok-4 does not support parameter x."}'
    assert unwrap_message(xai) == ("Model grok-4 does not support parameter x.", None,
                                   "invalid-argument")
    assert unwrap_message("plain text") == ("plain text", None, None)
    assert unwrap_message("{not json") == ("{not json", None, None)


def test_classify_unwraps_before_the_client_and_the_overflow_match() -> None:
    body = json.dumps({"code": "400", "message": GPT5_TEMPERATURE}).encode()
    err = classify(400, body, {}, "OPC")
    assert err.message.startswith("Unsupported value: 'temperature'")
    assert err.param == "temperature" and err.upstream_kind == UpstreamKind.BAD_REQUEST
    overflow = json.dumps({"code": "400", "message": json.dumps({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
                   "messages resulted in 200000 tokens.", "code": "context_length_exceeded"}})})
    err = classify(400, overflow.encode(), {}, None)
    assert err.upstream_kind == UpstreamKind.CONTEXT_OVERFLOW and err.param is None
    top = classify(400, b'{"error": {"message": "nope", "param": "top_k", '
                        b'"code": "unsupported_parameter"}}', {}, None)
    assert (top.message, top.param) == ("nope", "topK")
    assert classify(400, b'{"code":"400","message":"Invalid"}', {}, None).param is None


def test_heal_drops_renames_or_says_nothing_changes() -> None:
    chat_req = {"temperature": 0.5, "maxTokens": 10, "messages": []}
    assert heal(chat_req, "temperature") == ({"maxTokens": 10, "messages": []}, "dropped")
    assert heal(chat_req, "maxTokens") == (
        {"temperature": 0.5, "maxCompletionTokens": 10, "messages": []},
        "renamed to maxCompletionTokens")
    assert heal(chat_req, "topK") is None
    assert chat_req == {"temperature": 0.5, "maxTokens": 10, "messages": []}  # never in place


def test_memory_applies_expires_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    memory = ParamMemory(ttl=60, clock=lambda: now[0])
    body = {"temperature": 0.5, "topP": 0.9, "maxTokens": 5}
    assert memory.apply("m.x", body) is body
    with caplog.at_level(logging.WARNING, logger="app.service.params"):
        memory.learn("x", "m.x", "temperature", "dropped")
        memory.learn("x", "m.x", "temperature", "dropped")
        memory.learn("x", "m.x", "maxTokens", "renamed to maxCompletionTokens")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "OCI model m.x does not support parameter temperature",
        "OCI model m.x does not support parameter maxTokens"]
    assert memory.apply("m.x", body) == {"topP": 0.9, "maxCompletionTokens": 5}
    assert memory.apply("m.y", body) is body
    memory.learn("x", "m.x", "maxCompletionTokens", "renamed to maxTokens")  # newer evidence
    assert memory.refused("m.x") == ["temperature", "maxCompletionTokens"]
    now[0] = 61
    assert memory.refused("m.x") == [] and memory.apply("m.x", body) is body


# --------------------------------------------------------------------------- over HTTP

@pytest.fixture(scope="module")
def healer(fake_session: FakeOCI, oci_key: TestKey,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory: Path = tmp_path_factory.mktemp("heal")
    # profiles that are wrong about the model (as the catalog once was): the heal recovers
    wrong = {**TEST_MODELS,
             "grok": {**TEST_MODELS["grok"], "profile": {"reasoning_effort": True}},
             "gpt5": {**TEST_MODELS["gpt5"], "profile": {"fixed_sampling": False}}}
    with GatewayServer(write_config(directory, fake_session.url, oci_key.config_path,
                                    models=wrong)) as gw:
        yield gw


def _body(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "max_tokens": 20,
            "messages": [{"role": "user", "content": "hello"}], **extra}


def test_scripted_refusal_is_healed_once_and_remembered(healer: GatewayServer,
                                                        fake: FakeOCI) -> None:
    fake.push(Scenario(error={"status": 400, "message": GPT5_TEMPERATURE}))
    r = healer.post("/v1/messages", _body("llama", temperature=0.5))
    assert r.status_code == 200, r.text
    first, retry = fake.requests[-2:]
    assert first.body["chatRequest"]["temperature"] == 0.5
    assert "temperature" not in retry.body["chatRequest"]
    assert metric(healer.metrics_url, "gateway_param_dropped_total", model="llama",
                   param="temperature") == 1
    # the next request omits it up front: one OCI request, no temperature
    fake.reset()
    r = healer.post("/v1/messages", _body("llama", temperature=0.5, stream=True))
    assert r.status_code == 200 and "message_stop" in r.text
    assert len(fake.requests) == 1 and "temperature" not in chat(fake)
    assert chat(fake)["maxTokens"] == 20  # everything else as translated


def test_emulated_grok_refuses_reasoning_effort_and_the_client_never_sees_it(
        healer: GatewayServer, fake: FakeOCI) -> None:
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    r = healer.post("/v1/messages", _body("grok", max_tokens=2000, **thinking))
    assert r.status_code == 200, r.text
    sent = [q.body["chatRequest"] for q in fake.requests]
    assert len(sent) == 2 and fake.requests[0].status == 400  # this gateway's first grok turn
    assert "reasoningEffort" in sent[0] and "reasoningEffort" not in sent[1]
    fake.reset()
    assert healer.post("/v1/messages", _body("grok", **thinking)).status_code == 200
    assert len(fake.requests) == 1 and "reasoningEffort" not in chat(fake)


def test_emulated_gpt5_sampling_refusal_is_unwrapped_and_healed(healer: GatewayServer,
                                                                fake: FakeOCI) -> None:
    r = healer.post("/v1/messages", _body("gpt5", top_p=0.5))
    assert r.status_code == 200, r.text
    assert fake.requests[0].status == 400 and "topP" in fake.requests[0].body["chatRequest"]
    assert "topP" not in chat(fake) and chat(fake)["maxCompletionTokens"] == 20


def test_a_400_naming_no_parameter_is_not_retried(healer: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(error={"status": 400, "message": "Invalid request body"}))
    r = healer.post("/v1/messages", _body("llama", top_k=5))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"] == "Invalid request body"
    assert len(fake.requests) == 1


def test_a_retry_refused_again_returns_the_unwrapped_error(healer: GatewayServer,
                                                           fake: FakeOCI) -> None:
    def refusal(param: str) -> Scenario:
        inner = {"error": {"message": f"Unsupported parameter: '{param}'", "param": param,
                           "code": "unsupported_parameter"}}
        return Scenario(error={"status": 400, "message": json.dumps(inner)})

    fake.push(refusal("top_k"), refusal("top_p"))
    r = healer.post("/v1/messages", _body("llama", top_k=5, top_p=0.5))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Unsupported parameter: 'top_p'"  # not JSON text
    assert len(fake.requests) == 2
    assert "topK" not in fake.requests[1].body["chatRequest"]
    # both were learnt: the next request sends neither and succeeds at once
    fake.reset()
    assert healer.post("/v1/messages", _body("llama", top_k=5, top_p=0.5)).status_code == 200
    assert len(fake.requests) == 1
    assert "topK" not in chat(fake) and "topP" not in chat(fake)
