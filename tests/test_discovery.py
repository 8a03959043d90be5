"""Claude Code's model discovery (``GET /v1/models``) over HTTP with the anthropic SDK.

Claude Code 2.1.197's discovery (the README's "Claude Code settings" names the source) asks
``GET /v1/models?limit=1000`` with the user's credential, keeps ids matching
``/^(claude|anthropic)/i`` and reads ``id`` and ``display_name``; a picked id is then sent as
``model``. So: every model the caller may use has such an id, it resolves to that model even
under a ``claude-*`` glob alias, the page fields are the Anthropic API's, and a key restricted
to some models sees only those.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from app.config import ConfigError, parse_config
from emulator import FakeOCI
from tests.harness import ALICE, TEST_MODELS, GatewayServer, sdk, write_config

CLAUDE_CODE_FILTER = re.compile(r"^(claude|anthropic)", re.I)  # Claude Code 2.1.197
RESTRICTED = "restricted-key-0123456789"


@pytest.fixture()
def disco_gw(fake: FakeOCI, oci_key: Any, tmp_path: Path) -> Any:
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [
        {"id": "alice", "key": ALICE},
        {"id": "restricted", "key": RESTRICTED, "models": ["gemini", "gpt-*"]},
    ]}))
    models = {**TEST_MODELS, "gemini": {**TEST_MODELS["gemini"], "discovery_id":
                                        "claude-gemini-flash", "display_name": "Gemini Flash"}}
    config = write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys,
                          models=models, aliases={"claude-*": "grok"})
    with GatewayServer(config) as gw:
        yield gw


def kept_by_claude_code(client: anthropic.Anthropic) -> list[Any]:
    return [m for m in client.models.list(limit=1000) if CLAUDE_CODE_FILTER.match(m.id)]


def test_every_model_has_an_id_claude_code_keeps(disco_gw: GatewayServer) -> None:
    kept = kept_by_claude_code(sdk(disco_gw))
    ids = [m.id for m in kept]
    expected = ["claude-gemini-flash" if n == "gemini" else f"claude-{n}" for n in TEST_MODELS]
    assert ids == expected
    byid = {m.id: m for m in kept}
    assert byid["claude-gemini-flash"].display_name == "Gemini Flash"
    assert byid["claude-grok"].display_name == "grok"
    # the gateway names are listed too (for other clients); Claude Code drops them
    assert "grok" in [m.id for m in sdk(disco_gw).models.list(limit=1000)]


def test_description_names_oci_model_window_and_capabilities(disco_gw: GatewayServer) -> None:
    r = httpx.get(disco_gw.url + "/v1/models/claude-gemini-flash", headers={"x-api-key": ALICE})
    info = r.json()
    assert r.status_code == 200 and info["id"] == "claude-gemini-flash"
    assert "google.gemini-2.5-flash" in info["description"]
    assert "1,048,576-token context" in info["description"]
    assert "tools, vision, reasoning, documents" in info["description"]
    assert info["max_input_tokens"] == 1048576 and info["type"] == "model"
    got = sdk(disco_gw).models.retrieve("claude-grok")
    assert got.id == "claude-grok" and got.display_name == "grok"


def test_discovery_ids_resolve_to_their_model_despite_the_glob(disco_gw: GatewayServer,
                                                             fake: FakeOCI) -> None:
    client = sdk(disco_gw)
    for model in kept_by_claude_code(client):
        if model.id == "claude-tiny":
            continue  # its 1000-token window is smaller than nothing at all
        client.messages.create(model=model.id, max_tokens=5,
                               messages=[{"role": "user", "content": "hi"}])
        name = "gemini" if model.id == "claude-gemini-flash" else model.id[len("claude-"):]
        sent = fake.requests[-1].body["servingMode"]["modelId"]
        assert sent == TEST_MODELS[name]["model_id"], model.id
    # a name no discovery id matches still goes through the glob
    client.messages.create(model="claude-sonnet-4-5", max_tokens=5,
                           messages=[{"role": "user", "content": "hi"}])
    assert fake.requests[-1].body["servingMode"]["modelId"] == "xai.grok-4"


def test_pagination_fields_as_on_the_anthropic_api(disco_gw: GatewayServer) -> None:
    headers = {"x-api-key": ALICE}
    full = httpx.get(disco_gw.url + "/v1/models", params={"limit": 1000}, headers=headers).json()
    ids = [m["id"] for m in full["data"]]
    assert full["has_more"] is False and (full["first_id"], full["last_id"]) == (ids[0], ids[-1])
    page = httpx.get(disco_gw.url + "/v1/models", params={"limit": 3}, headers=headers).json()
    assert page["has_more"] is True and page["last_id"] == ids[2]
    nxt = httpx.get(disco_gw.url + "/v1/models", headers=headers,
                    params={"limit": 3, "after_id": page["last_id"]}).json()
    assert [m["id"] for m in nxt["data"]] == ids[3:6] and nxt["first_id"] == ids[3]


def test_restricted_key_sees_only_its_models(disco_gw: GatewayServer) -> None:
    client = sdk(disco_gw, RESTRICTED)
    ids = [m.id for m in client.models.list(limit=1000)]
    assert ids == ["claude-gpt-oss", "claude-gemini-flash", "gpt-oss", "gemini"]  # not gpt5
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-grok")  # exists, but not for this key
    assert client.models.retrieve("claude-gemini-flash").id == "claude-gemini-flash"
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(model="claude-grok", max_tokens=5,
                               messages=[{"role": "user", "content": "hi"}])


def _config(models: dict[str, Any], aliases: dict[str, str] | None = None) -> Any:
    return parse_config({"oci": {"region": "us-chicago-1", "compartment_id": "c"},
                         "models": models, "aliases": aliases or {}})


def test_ambiguous_or_unkept_discovery_ids_are_config_errors() -> None:
    grok = {"model_id": "xai.grok-4"}
    with pytest.raises(ConfigError, match="discovery_id"):
        _config({"grok": {**grok, "discovery_id": "grok-4"}})  # Claude Code would drop it
    with pytest.raises(ConfigError, match="also the discovery id of model 'a'"):
        _config({"a": {**grok, "discovery_id": "claude-x"},
                 "b": {**grok, "discovery_id": "claude-x"}})
    with pytest.raises(ConfigError, match="discovery id of model 'claude-a'"):
        _config({"claude-a": grok, "a": grok})  # claude-a's own id, and a's default
    with pytest.raises(ConfigError, match="name of another model"):
        _config({"b": {**grok, "discovery_id": "claude-a"}, "claude-a": grok})
    with pytest.raises(ConfigError, match="plain alias"):
        _config({"a": grok, "b": grok}, {"claude-a": "b"})
    # an alias that says the same thing is fine; a model named claude-* keeps its name
    cfg = _config({"a": grok, "claude-b": grok}, {"claude-a": "a"})
    from app.catalog import Catalog

    assert [i for i, _, _ in Catalog(cfg).listing()] == ["claude-a", "claude-b", "a"]
