"""Input tokens sent to OCI for cc-26 (Claude Code + 100 MCP tools) with and without tool search.

Runs the emulator and a gateway on loopback, posts the fixture twice -- as recorded (the MCP
tools ``defer_loading: true``, Claude Code's ToolSearch: tool search on) and with every tool
inline (``ENABLE_TOOL_SEARCH=false``: no ``defer_loading``, no ToolSearch) -- captures the
ChatDetails each time through the emulator, and prints the gateway's estimate of each
(``app.translate.tokens.raw_estimate``, the uncalibrated figure the context-window check starts
from), the tools sent and the body size. Usage: ``.venv/bin/python scripts/tool_search_tokens.py``.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.translate.tokens import raw_estimate  # noqa: E402
from emulator import FakeOCI, make_test_key  # noqa: E402
from tests.harness import ALICE, GatewayServer, write_config, write_keys  # noqa: E402

FIXTURE = ROOT / "tests/fixtures/anthropic/cc-26-mcp-tool-search.json"


def inline(body: dict[str, Any]) -> dict[str, Any]:
    """The same turn as Claude Code sends it with tool search off."""
    out = copy.deepcopy(body)
    out["tools"] = [
        {k: v for k, v in t.items() if k != "defer_loading"}
        for t in out["tools"]
        if t.get("name") != "ToolSearch"
    ]
    return out


def measure(model: str = "grok") -> dict[str, dict[str, int]]:
    body = json.loads(FIXTURE.read_text())["body"]
    body = {**body, "model": model, "stream": False}
    figures: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        key = make_test_key(Path(tmp))
        with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
            config = write_config(
                Path(tmp), fake.url, key.config_path, keys_file=write_keys(Path(tmp))
            )
            with GatewayServer(config) as gw:
                for label, sent in (("without tool search", inline(body)), ("with", body)):
                    fake.reset()
                    resp = gw.post("/v1/messages", sent, key=ALICE)
                    assert resp.status_code == 200, resp.text
                    details = fake.requests[-1].body
                    figures[label] = {
                        "tools_sent": len(details["chatRequest"].get("tools") or []),
                        "estimated_input_tokens": raw_estimate(details),
                        "body_bytes": len(json.dumps(details)),
                    }
    return figures


if __name__ == "__main__":
    for label, f in measure().items():
        print(f"{label:>20}: {f['tools_sent']:3d} tools, ~{f['estimated_input_tokens']:6d} input "
              f"tokens, {f['body_bytes']:7d} bytes of ChatDetails")
