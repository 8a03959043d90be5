"""End-to-end: Claude Code's MCP tool search through the gateway (issue #13).

The real CLI (tests/e2e/conftest.py) runs with ``ENABLE_TOOL_SEARCH=true`` and one stdio MCP
server of 100 tools (tests/e2e/mcp_tools_server.py, ``--mcp-config`` + ``--strict-mcp-config``),
through :class:`RecordingProxy` in front of the gateway (the gateway keeps no copy of the
Anthropic requests it serves; the proxy keeps what Claude Code really sent). The emulator is
scripted so the model (a) calls Claude Code's own ``ToolSearch``, (b) calls the MCP tool it
found, (c) answers with the token the MCP server returned. Asserted: what Claude Code sends
(2.1.197: ToolSearch and the ``advanced-tool-use-2025-11-20`` beta, no deferred tool in
``tools`` on the first turn; after the search, ``tool_reference`` blocks in the tool_result and
the found tools with ``defer_loading: true``), the deferred MCP schemas not in the first OCI
request, the found tool inline in the next, the token back from the MCP server, and the CLI's
final answer. The second test is the same prompt with ``ENABLE_TOOL_SEARCH=false`` (every tool
inline): the baseline. ``CC27_RECORD=1`` rewrites the cc-27 fixtures from these runs
(tests/test_tool_search.py and scripts/tool_search_tokens.py measure them).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator import FakeOCI, Scenario, tool_call
from tests.e2e.conftest import ClaudeRun, ClaudeRunner
from tests.e2e.mcp_tools_server import TOKEN, TOKEN_TOOL, TOOLS
from tests.harness import FIXTURES, GatewayServer

MAIN = "E2E-TS-MAIN"
SERVER = "inv"  # the MCP server's name in --mcp-config: tools are mcp__inv__<tool>
MCP_TOOL = f"mcp__{SERVER}__{TOKEN_TOOL}"
PROMPT = f"{MAIN}: which warehouse bin holds part PN-1042? Give me its access token."
CLI_VERSION = "2.1.197"  # tests/e2e/install_claude_code.sh
SESSION = "00000000-0000-4000-8000-000000000027"
RECORDED_ON = "cc-27-mcp-tool-search-recorded.json"
RECORDED_OFF = "cc-27-mcp-tool-search-off-recorded.json"
DESCRIPTION_ON = (
    f"RECORDED from the real Claude Code {CLI_VERSION} CLI (claude -p, ENABLE_TOOL_SEARCH=true, "
    "one stdio MCP server of 100 tools, tests/e2e/mcp_tools_server.py): the first main turn. "
    "Claude Code sends 9 tools incl. its client-side ToolSearch, NO deferred tool in `tools` "
    "(their names only, in a mid-conversation role-system message), beta "
    "advanced-tool-use-2025-11-20")
RECORDED_LOADED = "cc-27-mcp-tool-search-loaded-recorded.json"
DESCRIPTION_LOADED = (
    f"RECORDED from the real Claude Code {CLI_VERSION} CLI, the same run as "
    "cc-27-mcp-tool-search-recorded.json, second main turn: after ToolSearch('warehouse bin') "
    "the tool_result holds tool_reference blocks and `tools` gains the 2 found MCP tools with "
    "defer_loading: true (the gateway sends them inline because they are referenced)")
DESCRIPTION_OFF = (
    f"RECORDED from the real Claude Code {CLI_VERSION} CLI, the same run with "
    "ENABLE_TOOL_SEARCH=false: the first main turn with all 124 tools inline (24 built-in + "
    "100 MCP); the baseline of the tool-search measurement")
_HOP = {"connection", "transfer-encoding", "content-length", "content-encoding", "keep-alive",
        "host"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class RecordingProxy:
    """HTTP on 127.0.0.1 that forwards every request to ``target`` and keeps a copy.

    Answers are buffered then sent whole (Claude Code reads an SSE body the same either way)."""

    def __init__(self, target: str) -> None:
        self.records: list[Recorded] = []
        client = httpx.Client(base_url=target, timeout=30)
        records = self.records

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                records.append(Recorded(self.command, self.path, headers, body))
                resp = client.request(self.command, self.path, content=raw, headers=headers)
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("content-length", str(len(resp.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.content)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._client = client

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def messages(self) -> list[Recorded]:
        return [r for r in self.records
                if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]


@pytest.fixture()
def proxy(gateway: GatewayServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(gateway.url) as rec:
        yield rec


def _mcp_config(tmp_path: Path) -> Path:
    server = Path(__file__).with_name("mcp_tools_server.py")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {SERVER: {
        "type": "stdio", "command": sys.executable, "args": [str(server)]}}}))
    return path


def _names(chat_request: dict[str, Any]) -> list[str]:
    return [t.get("name") or t.get("function", {}).get("name")
            for t in chat_request.get("tools") or []]


def _run(claude_bin: str, gateway: GatewayServer, proxy: RecordingProxy, tmp_path: Path,
         tool_search: str) -> ClaudeRun:
    run_claude = ClaudeRunner(claude_bin, gateway, tmp_path)
    settings = run_claude.home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"permissions": {"allow": [MCP_TOOL]}}))
    return run_claude(
        PROMPT, model="grok", stream_json=True,
        extra_args=["--mcp-config", str(_mcp_config(tmp_path)), "--strict-mcp-config"],
        # ENABLE_TOOL_SEARCH: code.claude.com/docs/en/env-vars ("true" / "false" / "auto[:N]")
        extra_env={"ENABLE_TOOL_SEARCH": tool_search, "ANTHROPIC_BASE_URL": proxy.url},
    )


def _save(record: Recorded, run: ClaudeRun, name: str, description: str) -> None:
    """Write the recorded request as a fixture, machine-specific values replaced."""
    root = str(run.cwd.parent)
    text = json.dumps(record.body)
    text = text.replace(root, "/home/user/session")
    text = text.replace(re.sub(r"[^A-Za-z0-9]", "-", root), "-home-user-session")
    text = re.sub(r'device_id\\":\\"[0-9a-f]+', 'device_id\\\\":\\\\"' + "0" * 64, text)
    sid = record.headers.get("X-Claude-Code-Session-Id", "")
    if sid:
        text = text.replace(sid, SESSION)
    headers = [[k, SESSION if k == "X-Claude-Code-Session-Id" else
                "test-key" if k.lower() == "x-api-key" else v]
               for k, v in record.headers.items()]
    path, _, query = record.path.partition("?")
    fixture = {"description": description,
               "captured_from": f"claude -p (Claude Code {CLI_VERSION}) through a recording "
                                "proxy in front of the gateway: "
                                "tests/e2e/test_claude_code_toolsearch.py with CC27_RECORD=1",
               "method": record.method, "path": path, "query": query, "headers": headers,
               "body": json.loads(text)}
    (FIXTURES / name).write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")


def _why(run: ClaudeRun, fake: FakeOCI) -> str:
    return run.describe() + "\n" + "\n".join(
        json.dumps(r.body.get("chatRequest", {}).get("messages", []))[-600:]
        for r in fake.requests)


def test_claude_code_tool_search_finds_and_calls_the_mcp_tool(
    claude_bin: str, proxy: RecordingProxy, gateway: GatewayServer, fake: FakeOCI,
    tmp_path: Path,
) -> None:
    final = f"The bin's access token is {TOKEN}."
    fake.set_default(Scenario(text="(default emulator answer)"))
    fake.push(
        Scenario(match=MAIN, tool_calls=[tool_call("ToolSearch", {"query": "warehouse bin",
                                                                  "max_results": 5})]),
        # later turns end with a tool_result, not the prompt: FIFO, not matched
        Scenario(tool_calls=[tool_call(MCP_TOOL, {"part_number": "PN-1042"})]),
        Scenario(text=final),
    )
    run = _run(claude_bin, gateway, proxy, tmp_path, "true")
    why = _why(run, fake)
    assert run.returncode == 0, why
    assert run.result.get("result") == final, why
    sent = proxy.messages()
    assert len(sent) == 3 and len(fake.requests) == 3, why

    # what Claude Code 2.1.197 sends with tool search on: its ToolSearch tool, the beta, and the
    # deferred tools NOT in `tools` at all (only their names, in a mid-conversation system
    # message) -- not the defer_loading: true list Anthropic's docs describe
    first = sent[0]
    assert "advanced-tool-use-2025-11-20" in first.headers.get("anthropic-beta", ""), why
    names = [t["name"] for t in first.body["tools"]]
    assert "ToolSearch" in names and not any(n.startswith("mcp__") for n in names), names
    assert not any(t.get("defer_loading") for t in first.body["tools"])
    # (a) the deferred MCP schemas were not inline in the first OCI request
    oci_first = fake.requests[0].body
    assert not any(n.startswith("mcp__") for n in _names(oci_first["chatRequest"])), why
    assert "Look up which warehouse bin" not in json.dumps(oci_first), why

    # (b) ToolSearch answered with tool_reference blocks; Claude Code then sends the found tools
    # with defer_loading: true, and the gateway sends them inline (they are referenced)
    refs = next(b for b in run.blocks("user") if b.get("type") == "tool_result")["content"]
    found = [r["tool_name"] for r in refs if r.get("type") == "tool_reference"]
    assert MCP_TOOL in found, refs
    second = sent[1].body["tools"]
    assert {t["name"] for t in second if t.get("defer_loading")} == set(found), why
    oci_second = fake.requests[1].body["chatRequest"]
    assert MCP_TOOL in _names(oci_second), why
    assert sorted(n for n in _names(oci_second) if n.startswith("mcp__")) == sorted(found)
    assert f"Tool loaded: {MCP_TOOL}" in json.dumps(oci_second["messages"]), why

    # (c) the MCP server really ran the tool: its token reached the model as the tool result
    tool_msgs = [m for m in fake.requests[2].body["chatRequest"]["messages"]
                 if m["role"] == "TOOL"]
    assert TOKEN in json.dumps(tool_msgs[-1]), why
    if os.environ.get("CC27_RECORD"):
        _save(first, run, RECORDED_ON, DESCRIPTION_ON)
        _save(sent[1], run, RECORDED_LOADED, DESCRIPTION_LOADED)


def test_claude_code_without_tool_search_inlines_every_mcp_tool(
    claude_bin: str, proxy: RecordingProxy, gateway: GatewayServer, fake: FakeOCI,
    tmp_path: Path,
) -> None:
    """The same prompt with ENABLE_TOOL_SEARCH=false: the baseline of the measurement."""
    fake.push(Scenario(match=MAIN, text="ok"))
    run = _run(claude_bin, gateway, proxy, tmp_path, "false")
    why = _why(run, fake)
    assert run.returncode == 0 and run.result.get("result") == "ok", why
    first = proxy.messages()[0]
    assert "advanced-tool-use-2025-11-20" not in first.headers.get("anthropic-beta", "")
    names = _names(fake.requests[0].body["chatRequest"])
    assert len([n for n in names if n.startswith("mcp__")]) == len(TOOLS) == 100, names
    assert "ToolSearch" not in names
    if os.environ.get("CC27_RECORD"):
        _save(first, run, RECORDED_OFF, DESCRIPTION_OFF)
