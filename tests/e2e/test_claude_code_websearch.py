"""End-to-end: Claude Code's WebSearch tool through the gateway's own web search.

The real CLI calls its WebSearch tool (scripted main turn), which makes Claude Code send the
nested request with Anthropic's ``web_search`` server tool (cc-25); the gateway runs the loop
against a stand-in SearXNG (tests/test_web_search.py) and Claude Code gets the search blocks.
Its tool result for the main turn then lists the links it found ("Links: [...]"), not "Did 0
searches".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import FakeOCI, Scenario, TestKey, tool_call
from tests.e2e.conftest import ClaudeRunner
from tests.harness import GatewayServer, write_config, write_keys
from tests.test_web_search import searx  # noqa: F401  (the stand-in SearXNG fixture)

MAIN = "E2E-WS-MAIN"
NESTED = "E2E-WS-NESTED"


@pytest.fixture(scope="module")
def search_gateway(
    fake_session: FakeOCI, oci_key: TestKey, searx: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("e2e-websearch")
    config = write_config(
        directory, fake_session.url, oci_key.config_path, keys_file=write_keys(directory),
        web_search={"backend": "searxng", "url": searx, "timeout": 2},
    )
    with GatewayServer(config) as gw:
        yield gw


def test_claude_code_websearch_searches(
    claude_bin: str, search_gateway: GatewayServer, fake: FakeOCI, tmp_path: Path
) -> None:
    run_claude = ClaudeRunner(claude_bin, search_gateway, tmp_path)
    settings = run_claude.home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"permissions": {"allow": ["WebSearch"]}}))
    query = f"{NESTED} weather in Paris"
    final = "Paris is sunny today, per example.com."
    fake.set_default(Scenario(text="(default emulator answer)"))
    fake.push(
        Scenario(match=MAIN, tool_calls=[tool_call("WebSearch", {"query": query})]),
        Scenario(match=NESTED, tool_calls=[tool_call("web_search", {"query": query})]),
        Scenario(match=NESTED, text="Sunny, 21 C, says https://www.example.com/paris."),
        Scenario(match=MAIN, text=final),
    )
    run = run_claude(f"{MAIN}: what is the weather in Paris?", model="grok", stream_json=True)
    why = run.describe() + "\n" + "\n".join(
        json.dumps(r.body.get("chatRequest", {}).get("messages", []))[:600] for r in fake.requests
    )
    assert run.returncode == 0, why
    assert run.result.get("result") == final, why
    assert len(fake.requests) == 4, why
    # the nested request's second turn carried the search results to the model
    assert "Sunny, 21 C." in json.dumps(fake.requests[2].body["chatRequest"]), why
    # Claude Code's WebSearch result (main turn 2) names the links it found: searches were done
    tool_texts = [
        part["text"]
        for m in fake.requests[3].body["chatRequest"]["messages"] if m["role"] == "TOOL"
        for part in m["content"]
    ]
    # e.g. 'Web search results for query: "…"\n\nLinks: [{"title":"Paris weather","url":…}]…'
    assert len(tool_texts) == 1, why
    assert '"title":"Paris weather","url":"https://www.example.com/paris"' in tool_texts[0], why
    assert "Sunny, 21 C, says" in tool_texts[0], why
