"""Every recorded client request (tests/fixtures/anthropic/*.json) is accepted.

Each fixture is replayed as recorded -- method, path, query string, every header (the auth
value replaced by the test key ``tests.harness.ALICE``) and the body bytes -- against a gateway
whose config adds ``default_model: grok``, so Claude Code's unknown names (``my-gateway-model``,
``my-small-model``) resolve like ``claude-*`` does (alias -> grok). The answer must be a valid
Anthropic stream (devtools.sse_check.check_stream) or message / count / models JSON. A second pass
rewrites the body's model to every family of the test config. Also: ``GET /v1/models`` and
``/v1/models/{id}``, and the recorded SSE bodies Claude Code accepted pass our stream checker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import ALICE, FIXTURES, TEST_MODELS, GatewayServer, write_config, write_keys

REQUESTS = sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")
SSE_BODIES = sorted(p.name for p in FIXTURES.glob("*.sse"))
FAMILY_MODELS = [m for m in TEST_MODELS if m != "tiny"]
MESSAGE_REQUESTS = [n for n in REQUESTS if json.loads((FIXTURES / n).read_text())["path"]
                    == "/v1/messages"]


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_recorded_fixtures_live_in_the_repository() -> None:
    """The parametrised tests below glob this folder: an empty glob would skip them silently."""
    index = json.loads((FIXTURES / "INDEX.json").read_text())
    listed = {entry["file"] for entry in index}
    assert listed == {p.name for p in FIXTURES.iterdir() if p.name != "INDEX.json"}
    assert len(REQUESTS) >= 30 and len(MESSAGE_REQUESTS) >= 20 and SSE_BODIES


def replay_headers(recorded: list[list[str]]) -> list[tuple[str, str]]:
    headers = []
    for name, value in recorded:
        if name.lower() == "x-api-key":
            value = ALICE
        elif name.lower() == "authorization":
            value = f"Bearer {ALICE}"
        headers.append((name, value))
    return headers


def replay(client: httpx.Client, fx: dict[str, Any], body: Any = None) -> httpx.Response:
    body = fx["body"] if body is None else body
    url = fx["path"] + (f"?{fx['query']}" if fx.get("query") else "")
    content = None if body is None else json.dumps(body).encode()
    return client.request(fx["method"], url, headers=replay_headers(fx["headers"]),
                          content=content)


@pytest.fixture(scope="module")
def default_gateway(fake_session: FakeOCI, oci_key: TestKey,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("gateway-default-model")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          keys_file=write_keys(directory), default_model="grok")
    with GatewayServer(config) as server:
        yield server


@pytest.fixture()
def client(default_gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=default_gateway.url, timeout=30) as c:
        yield c


def check_answer(r: httpx.Response, fx: dict[str, Any]) -> dict[str, Any]:
    """Validate the answer by endpoint; return the parsed message / count / list."""
    assert r.status_code == 200, r.text
    assert r.headers["request-id"].startswith("req_")
    body = fx["body"]
    if fx["path"] == "/v1/models":
        data = r.json()
        assert data["data"] and all(m["type"] == "model" for m in data["data"])
        return data
    if fx["path"] == "/v1/messages/count_tokens":
        data = r.json()
        assert list(data) == ["input_tokens"] and data["input_tokens"] > 0
        return data
    if body.get("stream"):
        assert r.headers["content-type"].startswith("text/event-stream")
        result = check_stream(r.text)
        assert result["stop_reason"] == "end_turn" and result["text"]
        return result
    message = r.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["id"].startswith("msg_") and message["model"] == body["model"]
    assert message["stop_reason"] == "end_turn" and message["content"][0]["type"] == "text"
    assert isinstance(message["usage"]["input_tokens"], int)
    assert isinstance(message["usage"]["output_tokens"], int)
    return message


@pytest.mark.parametrize("name", REQUESTS)
def test_fixture_is_accepted_as_recorded(client: httpx.Client, fake: FakeOCI,
                                         name: str) -> None:
    fx = load(name)
    r = replay(client, fx)
    check_answer(r, fx)
    if fx["path"] == "/v1/messages":
        rec = fake.requests[-1]
        assert rec.status == 200 and rec.body["servingMode"]["modelId"] == "xai.grok-4"
        # a web_search request's tool loop streams its OCI calls too (test_web_search.py)
        assert rec.chat_request.get("isStream", False) is bool(fx["body"].get("stream"))
    else:
        assert not fake.requests  # count_tokens and models never call OCI


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_every_messages_fixture_on_every_family(client: httpx.Client, fake: FakeOCI,
                                                model: str) -> None:
    """The same bodies with ``model`` rewritten to each family of the test config."""
    for name in MESSAGE_REQUESTS:
        fx = load(name)
        fake.push(Scenario(text="Hello from the replay.", chunks=3))
        r = replay(client, fx, {**fx["body"], "model": model})
        check_answer(r, {**fx, "body": {**fx["body"], "model": model}})
        rec = fake.requests[-1]
        assert rec.status == 200, (name, rec.error_message)
        assert rec.body["servingMode"]["modelId"] == TEST_MODELS[model]["model_id"]


@pytest.mark.parametrize("name", ["cc-03-main-turn-custom-model.json",
                                  "cc-24-model-404-nonstream-retry.json"])
def test_unknown_model_without_default_is_a_404(gateway: GatewayServer, fake: FakeOCI,
                                                name: str) -> None:
    """Without default_model, Claude Code's custom name gets the 404 it knows how to report."""
    fx = load(name)
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        r = replay(c, fx)
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["type"] == "not_found_error" and "my-gateway-model" in err["message"]
    assert not fake.requests


# --- GET /v1/models ----------------------------------------------------------------------------


def test_models_list_shape(gateway: GatewayServer) -> None:
    fx = load("cc-23-models-list-discovery.json")
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        data = replay(c, fx).json()
        assert set(data) == {"data", "has_more", "first_id", "last_id"}
        ids = [m["id"] for m in data["data"]]
        # the ids Claude Code keeps (tests/test_discovery.py), then the gateway names
        assert ids == [f"claude-{n}" for n in TEST_MODELS] + list(TEST_MODELS)
        assert data["has_more"] is False
        assert (data["first_id"], data["last_id"]) == (ids[0], ids[-1])
        for m in data["data"]:
            assert m["type"] == "model" and m["display_name"]
            assert m["created_at"].endswith("Z")
            spec = TEST_MODELS[m["id"].removeprefix("claude-")]
            assert m["max_input_tokens"] == spec.get("context_window", 128000)
            assert m["max_tokens"] == spec["max_output_tokens"]
        headers = {"x-api-key": ALICE}
        page = c.get("/v1/models", params={"limit": 2}, headers=headers).json()
        assert [m["id"] for m in page["data"]] == ids[:2] and page["has_more"] is True
        nxt = c.get("/v1/models", params={"limit": 2, "after_id": page["last_id"]},
                    headers=headers).json()
        assert [m["id"] for m in nxt["data"]] == ids[2:4]
        prev = c.get("/v1/models", params={"before_id": ids[3]}, headers=headers).json()
        assert [m["id"] for m in prev["data"]] == ids[:3]
        for bad in ("0", "1001", "x"):
            r = c.get("/v1/models", params={"limit": bad}, headers=headers)
            assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert c.get("/v1/models").status_code == 401


def test_models_get_shape(gateway: GatewayServer) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30, headers={"x-api-key": ALICE}) as c:
        one = c.get("/v1/models/gemini").json()
        assert one == {"type": "model", "id": "gemini", "display_name": "gemini",
                       "created_at": one["created_at"], "max_input_tokens": 1048576,
                       "max_tokens": 65536, "description": one["description"]}
        missing = c.get("/v1/models/claude-nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found_error"


def test_models_with_the_sdk(gateway: GatewayServer) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ALICE, max_retries=0)
    models = list(client.models.list(limit=3))  # the SDK follows the pages
    assert [m.id for m in models] == [f"claude-{n}" for n in TEST_MODELS] + list(TEST_MODELS)
    got = client.models.retrieve("grok")
    assert got.id == "grok" and got.type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nope")


# --- the recorded SSE bodies Claude Code accepted: our checker agrees ----------------------------


@pytest.mark.parametrize("name", SSE_BODIES)
def test_recorded_claude_code_streams_pass_the_checker(name: str) -> None:
    text = (FIXTURES / name).read_text()
    result = check_stream(text, allow_error="error" in name)
    if "error" in name:
        assert result["error"]["type"] == "overloaded_error"
    else:
        assert result["stop_reason"] in ("end_turn", "tool_use")
        assert all(b["type"] != "tool_use" or isinstance(b["input"], dict)
                   for b in result["content"])
