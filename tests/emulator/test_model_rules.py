"""The real service's per-model rejections, each sent as a raw signed OCI request over HTTP.

Evidence items are those of /work/shared/reference/oci-real-world.md ("RW §n"); the rules
themselves are data in emulator/catalog.py (flags per model-id pattern) and checks in
emulator/validate.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from emulator import Catalog
from tests.emulator.wire import LLAMA, Result, cohere_details, details

GEMINI = "google.gemini-2.5-flash"
USER = {"role": "USER", "content": [{"type": "TEXT", "text": "weather in Paris and Rome?"}]}


def _call(call_id: str, city: str) -> dict:
    return {"id": call_id, "type": "FUNCTION", "name": "get_weather",
            "arguments": json.dumps({"city": city})}


def _tool(call_id: str, text: str) -> dict:
    return {"role": "TOOL", "toolCallId": call_id, "content": [{"type": "TEXT", "text": text}]}


# --- RW §1: reasoningEffort only for models with the effort knob --------------------------

EFFORT_ACCEPTED = ["xai.grok-3-mini", "xai.grok-3-mini-fast", "xai.grok-4.3",
                   "xai.grok-4.20-multi-agent", "xai.grok-4.20-multi-agent-0309",
                   "openai.gpt-oss-120b", "openai.gpt-oss-20b", "google.gemini-2.5-pro",
                   "google.gemini-2.5-flash"]
XAI_REJECTED = ["xai.grok-4", "xai.grok-4-fast-reasoning", "xai.grok-4-fast-non-reasoning",
                "xai.grok-4-1-fast-reasoning", "xai.grok-4-1-fast-non-reasoning",
                "xai.grok-4.20-reasoning", "xai.grok-4.20-non-reasoning",
                "xai.grok-4.20-0309-reasoning", "xai.grok-4.20-0309-non-reasoning",
                "xai.grok-code-fast-1", "xai.grok-3", "xai.grok-3-fast"]


@pytest.mark.parametrize("model", EFFORT_ACCEPTED)
def test_effort_knob_models_accept_reasoning_effort(chat: Callable[..., Result],
                                                    model: str) -> None:
    assert chat(details(model, reasoningEffort="HIGH")).status == 200


def test_gpt5_accepts_reasoning_effort(chat: Callable[..., Result]) -> None:
    body = details("openai.gpt-5", reasoningEffort="MINIMAL", maxCompletionTokens=100)
    assert chat(body).status == 200


@pytest.mark.parametrize("model", XAI_REJECTED)
def test_grok_without_the_knob_rejects_reasoning_effort(chat: Callable[..., Result],
                                                        model: str) -> None:
    result = chat(details(model, reasoningEffort="LOW"))
    assert result.status == 400
    # xAI's own words with its own model name, passed through by OCI (litellm PR #40732).
    upstream = model.removeprefix("xai.")
    assert result.json() == {"code": "400", "message":
                             f"Model {upstream} does not support parameter reasoningEffort"}
    assert chat(details(model)).status == 200  # the same request without the knob is fine


@pytest.mark.parametrize("model", ["google.gemini-2.5-flash-lite", LLAMA,
                                   "meta.llama-4-scout-17b-16e-instruct"])
def test_other_models_without_the_knob_reject_it(chat: Callable[..., Result],
                                                 model: str) -> None:
    result = chat(details(model, reasoningEffort="MEDIUM"))
    assert result.status == 400
    assert result.json()["message"] == (
        f"chatRequest.reasoningEffort: Model {model} does not support parameter reasoningEffort")


def test_reasoning_and_effort_knob_are_separate_facts() -> None:
    models = Catalog().models
    assert models["xai.grok-4"].reasoning and not models["xai.grok-4"].effort_knob
    assert models["xai.grok-3-mini"].reasoning and models["xai.grok-3-mini"].effort_knob
    assert not models["google.gemini-2.5-flash-lite"].effort_knob


# --- RW §3, §4: Gemini history constraints --------------------------------------------------

@pytest.mark.parametrize("content", [None, [], [{"type": "TEXT", "text": ""}], [{"type": "TEXT"}]])
def test_gemini_tool_calls_without_text_crash_the_backend(chat: Callable[..., Result],
                                                          content: list | None) -> None:
    assistant: dict = {"role": "ASSISTANT", "toolCalls": [_call("c1", "Paris")]}
    if content is not None:
        assistant["content"] = content
    result = chat(details(GEMINI, [USER, assistant, _tool("c1", "sunny")]))
    assert result.status == 500
    assert result.json()["code"] == "InternalServerError"
    assert "NPE" in result.headers["x-fake-oci-reason"]


def test_gemini_tool_calls_with_text_are_fine(chat: Callable[..., Result]) -> None:
    assistant = {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": "."}],
                 "toolCalls": [_call("c1", "Paris")]}
    assert chat(details(GEMINI, [USER, assistant, _tool("c1", "sunny")])).status == 200


def test_other_families_take_tool_calls_without_text(chat: Callable[..., Result]) -> None:
    assistant = {"role": "ASSISTANT", "toolCalls": [_call("c1", "Paris")]}
    for model in ("xai.grok-4", LLAMA, "openai.gpt-oss-120b"):
        assert chat(details(model, [USER, assistant, _tool("c1", "sunny")])).status == 200


def test_gemini_rejects_parallel_calls_answered_together(chat: Callable[..., Result]) -> None:
    assistant = {"role": "ASSISTANT", "content": [{"type": "TEXT", "text": "Checking."}],
                 "toolCalls": [_call("c1", "Paris"), _call("c2", "Rome")]}
    result = chat(details(GEMINI, [USER, assistant, _tool("c1", "sunny"), _tool("c2", "rain")]))
    assert result.status == 400
    assert result.json() == {"code": "400", "message": (
        "Please ensure that the number of function response parts is equal to the number of "
        "function call parts of the function call turn.")}


def test_gemini_takes_one_call_per_turn(chat: Callable[..., Result]) -> None:
    # langchain-oracle's flatten_parallel_tool_calls: ASSISTANT(1 call) -> TOOL pairs.
    text = [{"type": "TEXT", "text": "."}]
    messages = [USER,
                {"role": "ASSISTANT", "content": text, "toolCalls": [_call("c1", "Paris")]},
                _tool("c1", "sunny"),
                {"role": "ASSISTANT", "content": text, "toolCalls": [_call("c2", "Rome")]},
                _tool("c2", "rain")]
    assert chat(details(GEMINI, messages)).status == 200
    parallel = {"role": "ASSISTANT", "content": text,
                "toolCalls": [_call("c1", "Paris"), _call("c2", "Rome")]}
    grok = [USER, parallel, _tool("c1", "sunny"), _tool("c2", "rain")]
    assert chat(details("xai.grok-4", grok)).status == 200  # other families take them


# --- RW §5: Cohere v1 TOOL history entry followed by USER -----------------------------------

TOOL_ENTRY = {"role": "TOOL", "toolResults": [
    {"call": {"name": "t", "parameters": {"a": 1}}, "outputs": [{"r": 2}]}]}
CALL_ENTRY = {"role": "CHATBOT", "message": "calling t",
              "toolCalls": [{"name": "t", "parameters": {"a": 1}}]}


@pytest.mark.parametrize(("history", "message", "index"), [
    ([{"role": "USER", "message": "q"}, CALL_ENTRY, TOOL_ENTRY,
      {"role": "USER", "message": "and now?"}], "", 2),
    ([{"role": "USER", "message": "q"}, CALL_ENTRY, TOOL_ENTRY], "and now?", 2),
])
def test_cohere_tool_entry_followed_by_user(chat: Callable[..., Result], history: list,
                                            message: str, index: int) -> None:
    body = cohere_details(message, chatHistory=history)
    if not message:
        body["chatRequest"]["toolResults"] = [TOOL_ENTRY["toolResults"][0]]
    result = chat(body)
    assert result.status == 400
    assert result.json()["message"].startswith(f"chatRequest.chatHistory[{index}]: a TOOL")


def test_cohere_tool_entry_followed_by_chatbot(chat: Callable[..., Result]) -> None:
    # langchain-oci's workaround: a CHATBOT entry between the TOOL entry and the user turn.
    history = [{"role": "USER", "message": "q"}, CALL_ENTRY, TOOL_ENTRY,
               {"role": "CHATBOT", "message": "r is 2"}]
    assert chat(cohere_details("and now?", chatHistory=history)).status == 200
    # the usual tool turn: results of the current turn are top-level with an empty message
    body = cohere_details("", chatHistory=[{"role": "USER", "message": "q"}, CALL_ENTRY],
                          toolResults=TOOL_ENTRY["toolResults"])
    assert chat(body).status == 200


# --- RW §10: gpt-5 fixed sampling and maxCompletionTokens ----------------------------------

def _openai_error(result: Result) -> dict:
    body = result.json()
    assert result.status == 400 and body["code"] == "400"
    return json.loads(body["message"])  # the message is itself OpenAI's error JSON


@pytest.mark.parametrize("model", ["openai.gpt-5", "openai.gpt-5-mini"])
def test_gpt5_rejects_non_default_temperature(chat: Callable[..., Result], model: str) -> None:
    result = chat(details(model, temperature=0.5, maxCompletionTokens=100))
    assert result.json()["message"] == json.dumps({"error": {
        "message": "Unsupported value: 'temperature' does not support 0.5 with this model. "
                   "Only the default (1) value is supported.",
        "param": "temperature", "code": "unsupported_value"}}, separators=(",", ":"))


def test_gpt5_rejects_non_default_top_p(chat: Callable[..., Result]) -> None:
    error = _openai_error(chat(details("openai.gpt-5", topP=0.9, maxCompletionTokens=10)))
    assert error["error"]["param"] == "topP" and error["error"]["code"] == "unsupported_value"


def test_gpt5_takes_the_defaults(chat: Callable[..., Result]) -> None:
    body = details("openai.gpt-5", temperature=1, topP=1.0, maxCompletionTokens=10)
    assert chat(body).status == 200
    assert chat(details("openai.gpt-5", maxCompletionTokens=10)).status == 200


def test_gpt5_wants_max_completion_tokens(chat: Callable[..., Result]) -> None:
    error = _openai_error(chat(details("openai.gpt-5", maxTokens=100)))["error"]
    assert error["param"] == "maxTokens" and error["code"] == "unsupported_parameter"
    assert "maxCompletionTokens" in error["message"]


def test_gpt_oss_takes_any_sampling(chat: Callable[..., Result]) -> None:
    body = details("openai.gpt-oss-120b", temperature=0.2, topP=0.5, maxTokens=100)
    assert chat(body).status == 200


# --- RW §9: GENERIC media parts need base64 data URLs ---------------------------------------

@pytest.mark.parametrize(("model", "part", "field"), [
    ("xai.grok-4", {"type": "IMAGE", "imageUrl": {"url": "https://example.com/cat.png"}},
     "imageUrl.url"),
    ("xai.grok-4", {"type": "IMAGE", "imageUrl": {"url": "data:image/png;uri,https://x/c.png"}},
     "imageUrl.url"),
    (GEMINI, {"type": "DOCUMENT", "documentUrl": {"url": "https://example.com/a.pdf"}},
     "documentUrl.url"),
])
def test_generic_media_must_be_base64_data_urls(chat: Callable[..., Result], model: str,
                                                part: dict, field: str) -> None:
    messages = [{"role": "USER", "content": [{"type": "TEXT", "text": "look"}, part]}]
    result = chat(details(model, messages))
    assert result.status == 400
    assert result.json()["message"].startswith(
        f"chatRequest.messages[0].content[1].{field}: only base64 data URLs")


def test_base64_data_urls_are_accepted(chat: Callable[..., Result]) -> None:
    messages = [{"role": "USER", "content": [
        {"type": "IMAGE", "imageUrl": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "DOCUMENT", "documentUrl": {"url": "data:application/pdf;base64,JVBERi0x"}}]}]
    assert chat(details(GEMINI, messages)).status == 200
