"""Input tokens sent to OCI for cc-26 (Claude Code + 100 MCP tools) with and without tool search.

The measurement is ``tests/test_tool_search.py::test_the_measurement_reports_the_saving``
(emulator and gateway on loopback; the fixture posted as recorded, MCP tools deferred, and with
every tool inline as with ``ENABLE_TOOL_SEARCH=false``; the ChatDetails captured at the emulator
and estimated with ``app.translate.tokens.raw_estimate``); this runs it and shows its table.
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
