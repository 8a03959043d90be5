"""Claude Code parity: thinking / effort, images and documents, structured output.

Through real HTTP (anthropic SDK or httpx -> gateway -> OCI emulator); the OCI body the gateway
sent is read from the emulator's recorded requests.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, tool_call
from tests.harness import GatewayServer, chat, fixture_body, sdk

RED_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/x0F8jngAA"
           "AABJRU5ErkJggg==")
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF").decode()
GENERIC_STYLES = {"llama": "llama", "openai": "gpt-oss", "grok": "grok", "gemini": "gemini"}
REASONING = "First, consider the question. Then answer it briefly."



def ask(model: str, content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 2000, "messages": [{"role": "user", "content": content}],
            **extra}


# --- thinking / effort -> reasoningEffort --------------------------------------------------------

EFFORT_CASES = [
    ({"type": "adaptive"}, None, "MEDIUM"),
    ({"type": "adaptive"}, "high", "HIGH"),
    ({"type": "adaptive"}, "low", "LOW"),
    ({"type": "adaptive"}, "max", "HIGH"),
    ({"type": "enabled", "budget_tokens": 1024}, None, "LOW"),
    ({"type": "enabled", "budget_tokens": 8000}, None, "MEDIUM"),
    ({"type": "enabled", "budget_tokens": 31999}, None, "HIGH"),
    ({"type": "disabled"}, "high", None),
    ({"type": "disabled"}, None, None),
    (None, "medium", "MEDIUM"),
    (None, None, None),
]


@pytest.mark.parametrize(("thinking", "effort", "expected"), EFFORT_CASES)
@pytest.mark.parametrize("model", ["grok", "gpt-oss", "gemini", "grok-fast", "llama"])
def test_thinking_and_effort_become_reasoning_effort(gateway: GatewayServer, fake: FakeOCI,
                                                     model: str, thinking: Any, effort: Any,
                                                     expected: str | None) -> None:
    extra: dict[str, Any] = {}
    if thinking is not None:
        extra["thinking"] = thinking
    if effort is not None:
        extra["output_config"] = {"effort": effort}
    r = gateway.post("/v1/messages", ask(model, max_tokens=40000, **extra))
    assert r.status_code == 200, r.text  # the emulator 400s reasoningEffort on grok/llama
    req = chat(fake)
    if model in ("grok", "grok-fast", "llama"):  # profile without reasoning_effort (RW §1)
        expected = None
    assert req.get("reasoningEffort") == expected


@pytest.mark.parametrize(("fixture", "effort"), [
    ("cc-01-main-turn-default-model.json", "HIGH"),  # adaptive + effort high
    ("cc-04-main-turn-legacy-model-enabled-thinking.json", "HIGH"),  # enabled, 31999
    ("cc-05-main-turn-claude-3-5-haiku-no-thinking.json", None),
    ("cc-16-interactive-title-structured-output.json", None),  # disabled (+ effort high)
    ("py-sdk-2.12-create-all-params.json", "LOW"),  # enabled, 1024
])
@pytest.mark.parametrize("model", ["gpt-oss", "grok", "grok-fast", "llama"])
def test_claude_code_thinking_shapes(gateway: GatewayServer, fake: FakeOCI, fixture: str,
                                     effort: str | None, model: str) -> None:
    r = gateway.post("/v1/messages?beta=true", fixture_body(fixture, model))
    assert r.status_code == 200, r.text
    assert chat(fake).get("reasoningEffort") == (effort if model == "gpt-oss" else None)


# --- reasoningContent -> thinking block ---------------------------------------------------------


@pytest.mark.parametrize("style", list(GENERIC_STYLES))
def test_reasoning_streams_as_a_thinking_block_before_the_text(gateway: GatewayServer,
                                                               fake: FakeOCI,
                                                               style: str) -> None:
    fake.push(Scenario(reasoning=REASONING, text="The answer is 42.", chunks=3, style=style))
    r = gateway.post("/v1/messages", ask(GENERIC_STYLES[style], stream=True,
                                         thinking={"type": "adaptive"}))
    result = check_stream(r.text)
    thinking, text = result["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == REASONING
    assert thinking["signature"]  # a signature_delta was sent
    assert text == {"type": "text", "text": "The answer is 42."}
    # within the thinking block: thinking_deltas, then exactly one signature_delta, then stop
    kinds = [d["delta"]["type"] if n == "content_block_delta" else n
             for n, d in result["events"] if d.get("index") == 0]
    assert kinds[0] == "content_block_start" and kinds[-1] == "content_block_stop"
    assert kinds[-2] == "signature_delta" and kinds.count("signature_delta") == 1
    assert set(kinds[1:-2]) == {"thinking_delta"} and len(kinds[1:-2]) >= 2
    assert result["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("style", list(GENERIC_STYLES))
def test_reasoning_non_streaming_thinking_block_first(gateway: GatewayServer, fake: FakeOCI,
                                                      style: str) -> None:
    fake.push(Scenario(reasoning=REASONING, text="The answer is 42.", style=style))
    msg = sdk(gateway).messages.create(**ask(GENERIC_STYLES[style]))  # type: ignore[arg-type]
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == REASONING  # type: ignore[union-attr]
    assert msg.content[0].signature  # type: ignore[union-attr]
    assert msg.content[1].text == "The answer is 42."  # type: ignore[union-attr]


def test_reasoning_text_and_tool_calls_in_order_with_the_sdk(gateway: GatewayServer,
                                                             fake: FakeOCI) -> None:
    fake.push(Scenario(reasoning=REASONING, text="Running it.",
                       tool_calls=[tool_call("Bash", {"command": "ls"})], style="openai"))
    with sdk(gateway).messages.stream(
        model="gpt-oss", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "Bash", "input_schema": {"type": "object", "properties": {
            "command": {"type": "string"}}}}],
        messages=[{"role": "user", "content": "list files"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("fixture", ["cc-08-thinking-signature-roundtrip.json",
                                     "cc-09-redacted-thinking-roundtrip.json",
                                     "cc-10-thinking-empty-signature.json"])
@pytest.mark.parametrize("model", ["grok", "llama", "cohere"])
def test_thinking_history_is_accepted_and_not_forwarded(gateway: GatewayServer, fake: FakeOCI,
                                                        fixture: str, model: str) -> None:
    body = fixture_body(fixture, model)
    r = gateway.post("/v1/messages?beta=true", body)
    assert r.status_code == 200, r.text
    check_stream(r.text)
    sent = json.dumps(fake.requests[-1].body)
    assert "Let me think about what the user needs here." not in sent
    assert "RXFzdHViLXNpZ25hdHVyZS0x" not in sent  # signature
    assert "RW5jcnlwdGVkLXN0dWItdGhpbmtpbmc=" not in sent  # redacted_thinking data
    assert "reasoningContent" not in sent
    assert "I'll run that for you." in sent  # the rest of the assistant turn is kept


def test_own_thinking_block_round_trips(gateway: GatewayServer, fake: FakeOCI) -> None:
    """A thinking block the gateway produced (its own signature) is accepted back."""
    fake.push(Scenario(reasoning=REASONING, text="Step one done.", style="grok"))
    client = sdk(gateway)
    first = client.messages.create(**ask("grok", thinking={"type": "adaptive"}))  # type: ignore[arg-type]
    follow = client.messages.create(
        model="grok", max_tokens=2000, thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "hi"},
                  {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
                  {"role": "user", "content": "continue"}])
    assert follow.stop_reason == "end_turn"
    assistant = [m for m in chat(fake)["messages"] if m["role"] == "ASSISTANT"]
    assert assistant == [{"role": "ASSISTANT",
                          "content": [{"type": "TEXT", "text": "Step one done."}]}]


# --- images --------------------------------------------------------------------------------------


def image_block(source: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": source}


B64_IMAGE = {"type": "base64", "media_type": "image/png", "data": RED_PNG}
URL_IMAGE = {"type": "url", "url": "https://example.com/cat.jpg"}


@pytest.mark.parametrize("model", ["grok", "gemini", "gpt5"])
def test_images_reach_vision_models(gateway: GatewayServer, fake: FakeOCI, model: str) -> None:
    content = [{"type": "text", "text": "compare"}, image_block(B64_IMAGE)]
    r = gateway.post("/v1/messages", ask(model, content))
    assert r.status_code == 200, r.text
    parts = chat(fake)["messages"][-1]["content"]
    assert parts == [
        {"type": "TEXT", "text": "compare"},
        {"type": "IMAGE", "imageUrl": {"url": f"data:image/png;base64,{RED_PNG}"}},
    ]


@pytest.mark.parametrize("model", ["grok", "gemini", "gpt5"])
def test_url_images_are_never_passed_through_to_oci(gateway: GatewayServer, fake: FakeOCI,
                                                    model: str) -> None:
    """Real OCI takes base64 data URLs only (oci-real-world.md #9): a url source is fetched by
    the gateway (tests/test_media_fetch.py) or, when it cannot be, refused before OCI is called.
    Here the host does not resolve (no network in tests): a clear 400 naming the block."""
    content = [{"type": "text", "text": "compare"}, image_block(URL_IMAGE)]
    r = gateway.post("/v1/messages", ask(model, content))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert "content[1].source.url" in err["message"] and "cannot fetch" in err["message"]
    assert not fake.requests


@pytest.mark.parametrize("model", ["llama", "grok-fast", "cohere", "gpt-oss"])
@pytest.mark.parametrize("source", [B64_IMAGE, URL_IMAGE])
def test_images_to_text_only_models_are_a_clear_400(gateway: GatewayServer, fake: FakeOCI,
                                                    model: str, source: dict[str, Any]) -> None:
    r = gateway.post("/v1/messages", ask(model, [image_block(source),
                                                 {"type": "text", "text": "what is it?"}]))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert repr(model) in err["message"] and "image" in err["message"]
    assert not fake.requests  # refused before any OCI call


def test_unsupported_image_source_is_a_400(gateway: GatewayServer, fake: FakeOCI) -> None:
    r = gateway.post("/v1/messages", ask("grok", [image_block({"type": "file",
                                                               "file_id": "file_123"})]))
    assert r.status_code == 400 and "file" in r.json()["error"]["message"]
    assert not fake.requests


# --- documents -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["llama", "grok", "gemini", "cohere"])
def test_plain_text_documents_are_inlined(gateway: GatewayServer, fake: FakeOCI,
                                          model: str) -> None:
    content = [
        {"type": "document", "title": "notes.txt",
         "source": {"type": "text", "media_type": "text/plain", "data": "line one\nline two"}},
        {"type": "document", "source": {"type": "content", "content": [
            {"type": "text", "text": "chunk A"}, {"type": "text", "text": "chunk B"}]}},
        {"type": "document", "source": {"type": "content", "content": "plain string"},
         "citations": {"enabled": True}},
        {"type": "text", "text": "summarise"},
    ]
    r = gateway.post("/v1/messages", ask(model, content))
    assert r.status_code == 200, r.text
    sent = json.dumps(chat(fake))
    for needle in ("notes.txt", "line one\\nline two", "chunk A\\nchunk B", "plain string",
                   "summarise"):
        assert needle in sent
    assert "DOCUMENT" not in sent


def test_pdf_goes_to_the_documents_model(gateway: GatewayServer, fake: FakeOCI) -> None:
    source = {"type": "base64", "media_type": "application/pdf", "data": PDF}
    r = gateway.post("/v1/messages", ask("gemini", [{"type": "document", "source": source},
                                                    {"type": "text", "text": "summarise"}]))
    assert r.status_code == 200, r.text
    parts = chat(fake)["messages"][-1]["content"]
    url = f"data:application/pdf;base64,{PDF}"
    assert parts[0] == {"type": "DOCUMENT", "documentUrl": {"url": url}}
    assert parts[1] == {"type": "TEXT", "text": "summarise"}


@pytest.mark.parametrize("model", ["grok", "llama", "gpt5", "cohere"])
def test_pdf_to_other_models_is_a_clear_400(gateway: GatewayServer, fake: FakeOCI,
                                            model: str) -> None:
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": PDF}}
    for stream in (False, True):
        r = gateway.post("/v1/messages", ask(model, [doc], stream=stream))
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error"
        assert repr(model) in err["message"] and "PDF" in err["message"]
    assert not fake.requests


def test_unknown_document_source_is_a_400_not_a_500(gateway: GatewayServer,
                                                    fake: FakeOCI) -> None:
    for source in ({"type": "file", "file_id": "file_1"}, {"type": "text"}, {}):
        r = gateway.post("/v1/messages", ask("gemini", [{"type": "document", "source": source}]))
        assert r.status_code == 400, (source, r.text)
    assert not fake.requests


# --- structured output ---------------------------------------------------------------------------

TITLE_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"], "additionalProperties": False}


def test_structured_output_native_for_structured_output_models(gateway: GatewayServer,
                                                               fake: FakeOCI) -> None:
    fake.push(Scenario(text='{"title": "Greeting the user"}'))
    body = fixture_body("cc-16-interactive-title-structured-output.json", "grok")
    r = gateway.post("/v1/messages?beta=true", body)
    assert r.status_code == 200, r.text
    result = check_stream(r.text)
    assert json.loads(result["text"]) == {"title": "Greeting the user"}
    req = chat(fake)
    assert req["responseFormat"] == {"type": "JSON_SCHEMA", "jsonSchema": {
        "name": "response", "schema": TITLE_SCHEMA}}
    assert "JSON schema" not in json.dumps(req["messages"])  # no instruction needed


@pytest.mark.parametrize("model", ["llama", "gemini", "cohere", "grok-fast"])
def test_structured_output_as_instruction_otherwise(gateway: GatewayServer, fake: FakeOCI,
                                                    model: str) -> None:
    fake.push(Scenario(text='{"title": "Greeting the user"}'))
    body = fixture_body("cc-16-interactive-title-structured-output.json", model)
    r = gateway.post("/v1/messages?beta=true", body)
    assert r.status_code == 200, r.text
    assert json.loads(check_stream(r.text)["text"]) == {"title": "Greeting the user"}
    req = chat(fake)
    assert "responseFormat" not in req
    system = (req["preambleOverride"] if model == "cohere"
              else req["messages"][0]["content"][0]["text"])
    assert "single JSON object" in system
    assert json.dumps(TITLE_SCHEMA, separators=(",", ":")) in system


def test_structured_output_non_streaming_with_the_sdk(gateway: GatewayServer,
                                                      fake: FakeOCI) -> None:
    fake.push(Scenario(text='{"title": "Hi"}'))
    msg = sdk(gateway).messages.create(
        model="grok", max_tokens=100, messages=[{"role": "user", "content": "title this"}],
        extra_body={"output_config": {"format": {"type": "json_schema",
                                                 "schema": TITLE_SCHEMA}}})
    assert json.loads(msg.content[0].text) == {"title": "Hi"}  # type: ignore[union-attr]
    assert chat(fake)["responseFormat"]["type"] == "JSON_SCHEMA"
