"""The per-model rules of real OCI (the team's audit oci-real-world.md, "RW §n"), end to end.

Each test sends a request through the gateway over HTTP to the emulator (which rejects what
real OCI rejects) and reads the OCI request the gateway sent from the emulator's records:
reasoningEffort only where the profile says the model takes it (RW §1), Gemini's 1:1 tool-call
pairs and text part on tool-only turns (RW §3, §4), Cohere v1 history repair (RW §5), the
on-demand output cap (RW §8), fixed sampling for gpt-5* (RW §10), finish reasons (RW §11). A
``profile:`` override that switches a rule off shows the emulator's rejection, so each rule is
pinned by a request that would fail without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, tool_call
from tests.harness import TEST_MODELS, GatewayServer, chat, fixture_body, write_config, write_keys

# Models beyond the shared test config: current Grok ids, dedicated serving, overrides that
# switch a rule off (to show that the emulator rejects what the rule prevents).
EXTRA_MODELS: dict[str, dict[str, Any]] = {
    "grok-4.20": {"model_id": "xai.grok-4.20-reasoning"},
    "grok-4.1-fast": {"model_id": "xai.grok-4-1-fast-reasoning"},
    "grok-mini": {"model_id": "xai.grok-3-mini"},
    "grok-forced-effort": {"model_id": "xai.grok-4", "profile": {"reasoning_effort": True}},
    "gpt5-sampling": {"model_id": "openai.gpt-5", "profile": {"fixed_sampling": False}},
    "gemini-unpaired": {"model_id": "google.gemini-2.5-flash",
                        "profile": {"pair_tool_calls": False}},
    "cohere-unrepaired": {"model_id": "cohere.command-a-03-2025",
                          "profile": {"cohere_history_repair": False}},
    "cohere-dedicated": {"endpoint_id": "ocid1.generativeaiendpoint.oc1..dedicated",
                         "base_model": "cohere.command-r-plus-08-2024",
                         "max_output_tokens": 8000},
    "scout": {"model_id": "meta.llama-4-scout-17b-16e-instruct", "max_output_tokens": 16000},
}


@pytest.fixture(scope="module")
def gw(fake_session: FakeOCI, oci_key: TestKey,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("rules")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          keys_file=write_keys(directory),
                          models={**TEST_MODELS, **EXTRA_MODELS},
                          oci={"retries": {"max_attempts": 1}})
    with GatewayServer(config) as server:
        yield server


def ask(model: str, content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000,
            "messages": [{"role": "user", "content": content}], **extra}


# --- RW §1: reasoningEffort only for models that take it ------------------------------------


@pytest.mark.parametrize(("model", "effort"), [
    ("grok", None),  # xai.grok-4: reasons, rejects the knob
    ("grok-4.20", None),  # litellm PR #40732: "Model grok-4.20 does not support ..."
    ("grok-4.1-fast", None),
    ("grok-mini", "HIGH"),  # grok-3-mini takes it (hermes-agent #23435)
    ("gpt-oss", "HIGH"),
    ("gemini", "HIGH"),
])
def test_claude_code_main_turn_sends_effort_only_where_accepted(
        gw: GatewayServer, fake: FakeOCI, model: str, effort: str | None) -> None:
    # Claude Code's main turn: thinking adaptive + output_config.effort high
    r = gw.post("/v1/messages?beta=true", fixture_body("cc-01-main-turn-default-model.json", model))
    assert r.status_code == 200, r.text
    assert chat(fake).get("reasoningEffort") == effort


def test_effort_forced_on_grok_is_what_real_oci_rejects(gw: GatewayServer,
                                                        fake: FakeOCI) -> None:
    # without the rule OCI refuses the turn; only the gateway's reactive heal (a second
    # request without the parameter) saves it: the profile makes that round trip unneeded
    r = gw.post("/v1/messages", fixture_body("cc-01-main-turn-default-model.json",
                                             "grok-forced-effort"))
    refused = fake.requests[0]
    assert refused.status == 400 and refused.body["chatRequest"]["reasoningEffort"] == "HIGH"
    assert "does not support parameter reasoningEffort" in (refused.error_message or "")
    assert r.status_code == 200, r.text  # healed
    assert "reasoningEffort" not in chat(fake)


# --- RW §10: gpt-5* keep default sampling ----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_gpt5_gets_no_client_sampling(gw: GatewayServer, fake: FakeOCI, stream: bool) -> None:
    r = gw.post("/v1/messages", ask("gpt5", temperature=0.2, top_p=0.9, top_k=5, stream=stream))
    assert r.status_code == 200, r.text
    req = chat(fake)
    assert not {"temperature", "topP", "topK"} & set(req)
    assert req["maxCompletionTokens"] == 1000 and "maxTokens" not in req


def test_sampling_reaches_other_models(gw: GatewayServer, fake: FakeOCI) -> None:
    r = gw.post("/v1/messages", ask("gpt-oss", temperature=0.2, top_p=0.9, top_k=5))
    assert r.status_code == 200, r.text
    req = chat(fake)
    assert (req["temperature"], req["topP"], req["topK"]) == (0.2, 0.9, 5)


def test_gpt5_sampling_without_the_rule_is_refused(gw: GatewayServer, fake: FakeOCI) -> None:
    r = gw.post("/v1/messages", ask("gpt5-sampling", temperature=0.2))
    refused = fake.requests[0]
    assert refused.status == 400 and refused.body["chatRequest"]["temperature"] == 0.2
    assert "temperature" in (refused.error_message or "")
    assert r.status_code == 200, r.text  # healed by a second request without it
    assert "temperature" not in chat(fake)


# --- RW §3, §4: Gemini pairs and text parts --------------------------------------------------


def _tool_calls_turns(messages: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Roles with the number of tool calls, e.g. ('ASSISTANT', 1), ('TOOL',)."""
    return [(m["role"], len(m["toolCalls"])) if m.get("toolCalls") else (m["role"],)
            for m in messages]


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_parallel_calls_become_pairs(gw: GatewayServer, fake: FakeOCI,
                                            stream: bool) -> None:
    body = fixture_body("cc-11-parallel-tool-results.json", "gemini")
    r = gw.post("/v1/messages?beta=true", {**body, "stream": stream})
    assert r.status_code == 200, r.text
    messages = chat(fake)["messages"]
    shape = _tool_calls_turns(messages)
    first = shape.index(("ASSISTANT", 1))
    assert shape[first:first + 4] == [("ASSISTANT", 1), ("TOOL",), ("ASSISTANT", 1), ("TOOL",)]
    calls = [m for m in messages if m.get("toolCalls")]
    results = [m for m in messages if m["role"] == "TOOL"]
    assert [c["toolCalls"][0]["id"] for c in calls] == [t["toolCallId"] for t in results]
    # the assistant's text stays on the first call; the second gets the minimal text part
    original = [b for b in body["messages"] if b["role"] == "assistant"][-1]["content"][0]
    assert calls[0]["content"] == [{"type": "TEXT", "text": original["text"]}]
    assert calls[1]["content"] == [{"type": "TEXT", "text": "."}]


def test_gemini_parallel_calls_unpaired_are_what_real_oci_rejects(gw: GatewayServer,
                                                                   fake: FakeOCI) -> None:
    r = gw.post("/v1/messages", fixture_body("cc-11-parallel-tool-results.json",
                                             "gemini-unpaired"))
    assert r.status_code == 400
    assert "function response parts" in r.json()["error"]["message"]


TOOL_ONLY = [
    {"role": "user", "content": "list the files"},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
]
BASH = {"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


@pytest.mark.parametrize(("model", "text_part"), [("gemini", True), ("grok", False),
                                                  ("gpt-oss", False)])
def test_tool_only_assistant_turn_gets_a_text_part_on_gemini(
        gw: GatewayServer, fake: FakeOCI, model: str, text_part: bool) -> None:
    r = gw.post("/v1/messages", {"model": model, "max_tokens": 100, "tools": [BASH],
                                 "messages": TOOL_ONLY})
    assert r.status_code == 200, r.text  # Gemini without the part: the backend's 500
    (assistant,) = [m for m in chat(fake)["messages"] if m["role"] == "ASSISTANT"]
    if text_part:
        assert assistant["content"] == [{"type": "TEXT", "text": "."}]
    else:
        assert "content" not in assistant


# --- RW §5: Cohere v1 TOOL -> USER -----------------------------------------------------------


WEATHER = {"name": "get_weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
# Claude Code's shape: tool results with a system reminder after them, then more turns
REMINDED = [
    {"role": "user", "content": "weather in Oslo?"},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "text", "text": "<system-reminder>todo list is empty</system-reminder>"}]},
    {"role": "assistant", "content": "It is sunny."},
    {"role": "user", "content": "and tomorrow?"},
]


@pytest.mark.parametrize("stream", [False, True])
def test_cohere_tool_then_user_gets_a_chatbot_entry(gw: GatewayServer, fake: FakeOCI,
                                                    stream: bool) -> None:
    r = gw.post("/v1/messages", {"model": "cohere", "max_tokens": 100, "tools": [WEATHER],
                                 "messages": REMINDED, "stream": stream})
    assert r.status_code == 200, r.text
    roles = [e["role"] for e in chat(fake)["chatHistory"]]
    assert roles == ["USER", "CHATBOT", "TOOL", "CHATBOT", "USER", "CHATBOT"]
    assert chat(fake)["chatHistory"][3] == {"role": "CHATBOT", "message": " "}


def test_cohere_tool_then_user_unrepaired_is_what_real_oci_rejects(gw: GatewayServer,
                                                                   fake: FakeOCI) -> None:
    r = gw.post("/v1/messages", {"model": "cohere-unrepaired", "max_tokens": 100,
                                 "tools": [WEATHER], "messages": REMINDED})
    assert r.status_code == 400
    assert "CHATBOT" in r.json()["error"]["message"]


def test_cohere_current_tool_results_need_no_repair(gw: GatewayServer, fake: FakeOCI) -> None:
    r = gw.post("/v1/messages", {"model": "cohere", "max_tokens": 100, "tools": [WEATHER],
                                 "messages": REMINDED[:3]})
    assert r.status_code == 200, r.text
    req = chat(fake)
    assert [e["role"] for e in req["chatHistory"]] == ["USER", "CHATBOT"]
    assert req["toolResults"] and req["message"].startswith("<system-reminder>")


# --- RW §8: the on-demand output cap ---------------------------------------------------------


@pytest.mark.parametrize(("model", "field", "sent"), [
    ("cohere", "maxTokens", 4000),  # configured 8000; on demand 4,000
    ("llama", "maxTokens", 4000),
    ("scout", "maxTokens", 8192),  # llama-4: 8,192
    ("cohere-dedicated", "maxTokens", 8000),  # DEDICATED has no on-demand cap
    ("gemini", "maxTokens", 64000),
])
def test_max_tokens_is_clamped_to_the_on_demand_cap(gw: GatewayServer, fake: FakeOCI,
                                                     model: str, field: str, sent: int) -> None:
    r = gw.post("/v1/messages", ask(model, max_tokens=64000))
    assert r.status_code == 200, r.text
    assert chat(fake)[field] == sent


def test_models_list_shows_the_table_defaults(gw: GatewayServer) -> None:
    r = gw._client.get(gw.url + "/v1/models/grok-4.20",  # type: ignore[union-attr]
                       headers={"x-api-key": "alice-key-0123456789",
                                "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    assert r.json()["max_input_tokens"] == 1000000  # profile table: grok-4.20


# --- RW §11: finish reasons ------------------------------------------------------------------


@pytest.mark.parametrize(("model", "finish", "stop_reason"), [
    ("grok", "content_filter", "refusal"),
    ("gpt-oss", "content_filtered", "refusal"),
    ("llama", "max_tokens", "max_tokens"),
    ("cohere", "ERROR_TOXIC", "refusal"),
    ("cohere", "ERROR_LIMIT", "max_tokens"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons_that_are_answers(gw: GatewayServer, fake: FakeOCI, model: str,
                                         finish: str, stop_reason: str, stream: bool) -> None:
    fake.push(Scenario(text="partial answer", finish_reason=finish))
    r = gw.post("/v1/messages", ask(model, stream=stream))
    assert r.status_code == 200, r.text
    result = check_stream(r.text) if stream else r.json()
    assert result["stop_reason"] == stop_reason


@pytest.mark.parametrize(("model", "finish"), [
    ("grok", "error"), ("gpt-oss", "cancelled"), ("cohere", "ERROR"), ("cohere", "USER_CANCEL"),
])
def test_failed_finish_is_an_api_error_in_json(gw: GatewayServer, fake: FakeOCI, model: str,
                                               finish: str) -> None:
    fake.push(Scenario(text="partial answer", finish_reason=finish))
    r = gw.post("/v1/messages", ask(model))
    assert r.status_code == 500, r.text  # Claude Code and the SDK retry a 500
    error = r.json()["error"]
    assert error["type"] == "api_error" and finish in error["message"]


@pytest.mark.parametrize(("model", "finish"), [("grok", "error"), ("cohere", "ERROR")])
def test_failed_finish_ends_a_started_stream_with_an_error_event(
        gw: GatewayServer, fake: FakeOCI, model: str, finish: str) -> None:
    fake.push(Scenario(text="partial answer", chunks=3, finish_reason=finish))
    r = gw.post("/v1/messages", ask(model, stream=True))
    assert r.status_code == 200
    result = check_stream(r.text, allow_error=True)
    assert result["error"]["type"] == "api_error"
    assert "".join(b.get("text", "") for b in result["content"]) == "partial answer"
    assert not any(name == "message_delta" for name, _ in result["events"])


def test_failed_finish_after_tool_calls_is_still_an_error(gw: GatewayServer,
                                                          fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("Bash", {"command": "ls"})], finish_reason="error"))
    r = gw.post("/v1/messages", {"model": "grok", "max_tokens": 100, "tools": [BASH],
                                 "messages": [{"role": "user", "content": "ls"}]})
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
