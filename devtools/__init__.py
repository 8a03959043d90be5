"""Development tools shared by the tests, the benchmark and the soak script (never by ``app``).

Contract: ``devtools.procs`` runs the repository's processes (the gateway, the OCI emulator,
the benchmark's OTLP sink) on free loopback ports and waits for them by polling;
``devtools.procfs`` reads what the kernel says about them; ``devtools.sse_check`` checks an
Anthropic SSE body against the stream invariants; ``devtools.config`` writes a gateway config
aimed at an emulator. ``ROOT`` is the repository checkout and ``FIXTURES`` its recorded client
requests: devtools works from a checkout (``make venv`` installs it editable), not from a wheel.
Nothing here imports ``tests``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "anthropic"

__all__ = ["FIXTURES", "ROOT"]
