"""Input tokens sent to OCI for Claude Code + 100 MCP tools with and without tool search.

The measurement is ``tests/test_tool_search.py::test_the_measurement_reports_the_saving``
(emulator and gateway on loopback; the ChatDetails captured at the emulator and estimated with
``app.translate.tokens.raw_estimate``) on two requests: cc-27, Claude Code 2.1.197's first main
turn RECORDED from the real CLI with ``ENABLE_TOOL_SEARCH=true`` and with ``=false``
(tests/e2e/test_claude_code_toolsearch.py, CC27_RECORD=1), and cc-26, SYNTHESISED (cc-17 plus
100 deferred MCP tools, and the same turn with every tool inline); this runs it and shows its
table.
Usage: ``.venv/bin/python scripts/tool_search_tokens.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_tool_search.py::test_the_measurement_reports_the_saving"

if __name__ == "__main__":
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST]
    sys.exit(subprocess.run(cmd, cwd=ROOT).returncode)
