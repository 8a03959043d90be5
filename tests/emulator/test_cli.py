"""The emulator as a process: ``python -m emulator`` and the ``oci-emulator`` console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devtools.procs import EmulatorProcess, wait_until
from emulator import CHAT_PATH, inline_marker
from tests.emulator.wire import details, send, text_of


def test_standalone_process(tmp_path: Path) -> None:
    """``python -m emulator`` as bench, soak and compose run it, scripted over ``/_fake/*``."""
    with EmulatorProcess(tmp_path, quiet=False,
                         args=["--default-delay-between", "0.001"]) as emu:
        assert emu.health()["status"] == "ok"
        emu.push({"text": "standalone"})
        body = json.dumps(details(stream=True)).encode()
        result = send("POST", emu.url + CHAT_PATH, body, {"content-type": "application/json"})
        assert result.status == 200
        assert text_of(result.events()) == "standalone"
        marker = inline_marker({"text": "inline!"})
        body = json.dumps(details(text=marker)).encode()
        result = send("POST", emu.url + CHAT_PATH, body, {"content-type": "application/json"})
        assert result.json()["chatResponse"]["choices"][0]["message"]["content"][0][
            "text"] == "inline!"
        # one log line per request (not --quiet), written once the answer is sent
        wait_until(lambda: emu.output().count(CHAT_PATH) == 2, 5, "the request log")
        assert [r["path"] for r in emu.requests()] == [CHAT_PATH, CHAT_PATH]
        # /_fake/gc: the benchmark's switch for the process's automatic collection
        assert emu.gc(automatic=False)["automatic"] is False
        assert send("POST", emu.url + CHAT_PATH, body,
                    {"content-type": "application/json"}).status == 200
        assert emu.gc()["automatic"] is False  # a collection alone changes nothing
        assert emu.gc(automatic=True)["automatic"] is True
        bad = send("POST", emu.url + "/_fake/gc", b'{"automatic": "no"}')
        assert bad.status == 400 and "automatic" in bad.json()["message"]
    assert emu.proc.returncode == 0  # SIGTERM is its normal stop


def test_console_script() -> None:
    """``oci-emulator`` is installed with the project ([project.scripts] in pyproject.toml)."""
    script = Path(sys.executable).parent / "oci-emulator"
    assert script.exists(), f"{script} missing: reinstall the project (make venv)"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: oci-emulator")
    for flag in ("--host", "--port", "--public-key", "--no-verify", "--key-id",
                 "--default-delay-between", "--quiet", "--replay"):
        assert flag in done.stdout, flag
    refused = subprocess.run([str(script), "--port", "0"], capture_output=True, text=True,
                             timeout=30)
    assert refused.returncode == 2 and "--public-key PATH or --no-verify" in refused.stderr
