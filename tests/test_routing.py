"""Routing rules over HTTP: every matcher, first match wins, the caller's policy, the log line.

The emulator records which OCI model each request reached
(``fake.requests[-1].body["servingMode"]["modelId"]``). Claude Code's own shapes come from the
recorded fixtures; cc-18's compact prompt is redacted in the recording, so the test puts back
the opening that Claude Code 2.1.197's compact prompts share (app/service/routing.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import ConfigError, parse_config
from emulator import FakeOCI
from tests.harness import ALICE, TEST_MODELS, GatewayServer, fixture_body, write_config

LIMITED = "limited-key-0123456789"
BILLING = "x-anthropic-billing-header: cc_version=2.1.197.9d6; cc_entrypoint=cli;"
TOOL = {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}
RULES = [
    {"match": {"request_class": "compaction"}, "model": "llama"},                 # 0
    {"match": {"request_class": "title"}, "model": "gpt-oss"},                    # 1
    {"match": {"request_class": ["subagent"]}, "model": "cohere"},                # 2
    {"match": {"min_input_tokens": 3000}, "model": "gemini"},                     # 3
    {"match": {"thinking": True, "model": "claude-*"}, "model": "gpt5"},          # 4
    {"match": {"model": "claude-haiku-*"}, "model": "command-a-vision"},          # 5
    {"match": {"request_class": "auxiliary"}, "model": "grok-fast"},              # 6
    {"match": {"request_class": "main"}, "model": "command-a-reasoning"},         # 7
]


@pytest.fixture(scope="module")
def routed(fake_session: FakeOCI, oci_key: Any, tmp_path_factory: Any) -> Any:
    directory = tmp_path_factory.mktemp("routing")
    keys = directory / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [
        {"id": "alice", "key": ALICE},
        {"id": "limited", "key": LIMITED, "models": ["grok", "llama"]},
    ]}))
    config = write_config(directory, fake_session.url, oci_key.config_path, keys_file=keys,
                          routing=RULES)
    with GatewayServer(config) as gw:
        yield gw


def sent_to(gw: GatewayServer, fake: FakeOCI, body: dict[str, Any], key: str = ALICE,
            **headers: str) -> str:
    r = gw.post("/v1/messages", {"max_tokens": 20, **body}, key=key, headers=headers)
    assert r.status_code == 200, r.text
    model_id: str = fake.requests[-1].body["servingMode"]["modelId"]
    return model_id


def oci(name: str) -> str:
    return str(TEST_MODELS[name]["model_id"])


def small(model: str = "grok", **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


def test_compaction_is_recognised_in_claude_codes_request(routed: GatewayServer,
                                                          fake: FakeOCI) -> None:
    body = fixture_body("cc-18-interactive-compact.json", "claude-opus-4-8")
    body["messages"][-1]["content"][-1]["text"] = (
        "Your task is to create a detailed summary of the conversation so far, paying close "
        "attention to the user's explicit requests and your previous actions.")
    body["stream"] = False
    assert sent_to(routed, fake, body) == oci("llama")


def test_title_requests_of_both_fixtures(routed: GatewayServer, fake: FakeOCI) -> None:
    for name in ("cc-16-interactive-title-structured-output.json", "cc-22-small-model-title.json"):
        body = {**fixture_body(name, "claude-opus-4-8"), "stream": False}
        assert sent_to(routed, fake, body) == oci("gpt-oss"), name


def test_subagent_auxiliary_and_main_from_the_billing_block(routed: GatewayServer,
                                                            fake: FakeOCI) -> None:
    sub = small(system=[{"type": "text", "text": BILLING + " cc_is_subagent=true;"}],
                tools=[TOOL])
    assert sent_to(routed, fake, sub) == oci("cohere")
    aux = small(system=[{"type": "text", "text": BILLING}])
    assert sent_to(routed, fake, aux) == oci("grok-fast")
    main = small(system=[{"type": "text", "text": BILLING}], tools=[TOOL])
    assert sent_to(routed, fake, main) == oci("command-a-reasoning")
    # a plain SDK request has no class: no class rule, and nothing else matches: it stays
    assert sent_to(routed, fake, small(tools=[TOOL])) == oci("grok")


def test_hint_header_wins_over_inference(routed: GatewayServer, fake: FakeOCI) -> None:
    main = small(system=[{"type": "text", "text": BILLING}], tools=[TOOL])
    assert sent_to(routed, fake, main, **{"x-claude-code-request-class": "Compaction"}) \
        == oci("llama")
    # an unknown value is ignored: inference decides
    assert sent_to(routed, fake, main, **{"x-claude-code-request-class": "weird"}) \
        == oci("command-a-reasoning")


def test_min_input_tokens_uses_the_estimate(routed: GatewayServer, fake: FakeOCI) -> None:
    long = small(messages=[{"role": "user", "content": "word " * 4000}])
    assert sent_to(routed, fake, long) == oci("gemini")
    assert sent_to(routed, fake, small()) == oci("grok")


def test_thinking_and_model_glob_must_both_hold(routed: GatewayServer, fake: FakeOCI) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    assert sent_to(routed, fake, small("claude-sonnet-4-5", thinking=thinking,
                                       max_tokens=2000)) == oci("gpt5")
    # thinking on a name the glob does not match: rule 4 does not apply
    assert sent_to(routed, fake, small("grok", thinking=thinking, max_tokens=2000)) == oci("grok")
    # the glob alone (rule 5); [1m] is stripped before matching
    assert sent_to(routed, fake, small("claude-haiku-4-5[1m]")) == oci("command-a-vision")
    # no thinking, a claude-* name no rule matches: the alias (claude-* -> grok) stands
    assert sent_to(routed, fake, small("claude-sonnet-4-5")) == oci("grok")


def test_a_rule_to_a_model_the_key_may_not_use_is_skipped(routed: GatewayServer,
                                                          fake: FakeOCI) -> None:
    long = small(messages=[{"role": "user", "content": "word " * 4000}])
    assert sent_to(routed, fake, long, key=LIMITED) == oci("grok")  # not gemini
    title = {**fixture_body("cc-16-interactive-title-structured-output.json", "grok"),
             "stream": False}
    assert sent_to(routed, fake, title, key=LIMITED) == oci("grok")  # not gpt-oss
    body = fixture_body("cc-18-interactive-compact.json", "grok")
    body["messages"][-1]["content"][-1]["text"] = "Your task is to create a detailed summary of"
    assert sent_to(routed, fake, {**body, "stream": False}, key=LIMITED) == oci("llama")


def test_the_chosen_rule_is_in_the_access_log(routed: GatewayServer, fake: FakeOCI,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        sent_to(routed, fake, small("claude-haiku-4-5"))
        sent_to(routed, fake, small())
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert [getattr(r, "routing_rule", "absent") for r in lines[-2:]] == [5, None]
    assert getattr(lines[-2], "model", None) == "command-a-vision"


def test_rule_targets_must_be_models() -> None:
    base = {"oci": {"region": "us-chicago-1", "compartment_id": "c"},
            "models": {"a": {"model_id": "xai.grok-4"}}}
    with pytest.raises(ConfigError, match=r"routing\[0\]\.model: refers to undefined model 'b'"):
        parse_config({**base, "routing": [{"match": {"thinking": True}, "model": "b"}]})
    with pytest.raises(ConfigError, match="request_class"):
        parse_config({**base, "routing": [{"match": {"request_class": "x"}, "model": "a"}]})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({**base, "routing": [{"match": {"tokens": 5}, "model": "a"}]})


def test_check_prints_the_rules(routed: GatewayServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "app", "check", "--config",
                          routed.settings.config], capture_output=True, text=True, timeout=60)
    assert "routing (first match wins" in out.stdout, out.stdout + out.stderr
    assert "[3] {'min_input_tokens': 3000} -> gemini" in out.stdout
    assert "[4] {'thinking': True, 'model': 'claude-*'} -> gpt5" in out.stdout


def test_the_chosen_rule_is_a_span_attribute(fake: FakeOCI, oci_key: Any, tmp_path: Path) -> None:
    import threading
    import time

    import httpx

    from devtools.procs import GatewayProcess
    from tests.test_observability import _attr, _Handler, _OtlpReceiver

    receiver = _OtlpReceiver(("127.0.0.1", 0), _Handler)
    receiver.spans = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = write_config(tmp_path, fake.url, oci_key.config_path, routing=[
        {"match": {"thinking": True}, "model": "gpt5"},
        {"match": {"model": "claude-haiku-*"}, "model": "llama"}])
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    name = f"chat {oci('llama')}"
    try:
        with GatewayProcess(config, tmp_path, env=env) as gw:
            r = httpx.post(gw.url + "/v1/messages", json=small("claude-haiku-4-5", max_tokens=5),
                           headers={"anthropic-version": "2023-06-01"}, timeout=30)
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not [
                    s for _, s in receiver.spans if s.name == name]:
                time.sleep(0.1)  # polling the receiver, bounded by the deadline
    finally:
        receiver.shutdown()
    spans = [s for _, s in receiver.spans if s.name == name]
    assert spans and _attr(spans[0], "gateway.routing.rule") == 1
