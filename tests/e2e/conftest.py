"""Fixtures for the end-to-end tests with the real Claude Code CLI.

``claude_bin`` installs the pinned CLI into ``.cache/claude-code`` (idempotent, see
install_claude_code.sh) and skips only when node/npm are missing. ``run_claude`` runs
``claude -p`` against the session gateway (tests/conftest.py) in a temp cwd with a temp HOME and
an environment built from scratch, so nothing reaches Anthropic and no user settings leak in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ALICE, GatewayServer

INSTALL_SCRIPT = Path(__file__).with_name("install_claude_code.sh")
RUN_TIMEOUT = 60  # seconds per `claude -p` run (a run normally takes about one second)


@pytest.fixture(scope="session")
def claude_bin() -> str:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"Claude Code end-to-end tests need {' and '.join(missing)} "
            "(Debian: apt-get install nodejs npm)"
        )
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        pytest.fail(f"installing Claude Code failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


@dataclass
class ClaudeRun:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path
    events: list[dict[str, Any]] = field(default_factory=list)  # stream-json lines

    @property
    def result(self) -> dict[str, Any]:
        """The final ``{"type": "result", ...}`` object (json or stream-json output)."""
        if self.events:
            found = [e for e in self.events if e.get("type") == "result"]
            assert found, f"no result event in Claude Code's output:\n{self.describe()}"
            return found[-1]
        try:
            data = json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"Claude Code did not print JSON:\n{self.describe()}") from None
        assert isinstance(data, dict)
        return data

    def blocks(self, role: str) -> list[dict[str, Any]]:
        """Content blocks of the assistant/user messages Claude Code reported (stream-json)."""
        out: list[dict[str, Any]] = []
        for event in self.events:
            if event.get("type") == role:
                content = event.get("message", {}).get("content")
                if isinstance(content, list):
                    out.extend(content)
        return out

    def describe(self) -> str:
        return (
            f"exit code {self.returncode}\n--- stdout ---\n{self.stdout[-4000:]}\n"
            f"--- stderr ---\n{self.stderr[-4000:]}"
        )


class ClaudeRunner:
    """Runs ``claude -p`` in ``cwd`` (a fresh temp dir per test) against the gateway."""

    def __init__(self, binary: str, gateway: GatewayServer, tmp_path: Path) -> None:
        self.binary = binary
        self.gateway = gateway
        self.home = tmp_path / "home"
        self.cwd = tmp_path / "work"
        self.home.mkdir()
        self.cwd.mkdir()

    def __call__(
        self,
        prompt: str,
        *,
        model: str,
        stream_json: bool = False,
        auth: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
    ) -> ClaudeRun:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ANTHROPIC_BASE_URL": self.gateway.url,
            # no telemetry, error reporting, update checks or other calls to Anthropic's hosts
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            # a failing gateway shows up as an "API Error" within seconds instead of ~3 minutes
            # of retries (the gateway retries upstream failures itself)
            "CLAUDE_CODE_MAX_RETRIES": "1",
            **(auth if auth is not None else {"ANTHROPIC_API_KEY": ALICE}),
            **(extra_env or {}),  # e.g. ENABLE_TOOL_SEARCH, or a recording proxy's base URL
        }
        if os.environ.get("TMPDIR"):
            env["TMPDIR"] = os.environ["TMPDIR"]
        # --allowedTools rather than --dangerously-skip-permissions: the latter is refused when
        # running as root (CI containers)
        args = [
            self.binary,
            "-p",
            prompt,
            "--model",
            model,
            "--allowedTools",
            "Bash,Read",
            "--output-format",
            "stream-json" if stream_json else "json",
            *extra_args,
        ]
        if stream_json:
            args.append("--verbose")  # -p with stream-json requires it
        try:
            proc = subprocess.run(
                args,
                cwd=self.cwd,
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            out, err = (_text(exc.stdout), _text(exc.stderr))
            raise AssertionError(
                f"claude -p did not finish within {RUN_TIMEOUT} s\n"
                f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"
            ) from None
        events = []
        if stream_json:
            events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        return ClaudeRun(proc.returncode, proc.stdout, proc.stderr, self.cwd, events)


@pytest.fixture()
def run_claude(claude_bin: str, gateway: GatewayServer, tmp_path: Path) -> ClaudeRunner:
    return ClaudeRunner(claude_bin, gateway, tmp_path)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""
