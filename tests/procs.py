"""Run the gateway as a real process (``python -m app`` or gunicorn) for tests that need one.

Contract: :class:`GatewayProcess` starts the command with the given config and environment on a
free loopback port, waits (bounded) until ``/healthz`` answers, captures stdout/stderr to files,
and on ``stop()`` sends SIGTERM (then SIGKILL after a bound) and returns the exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[1]


class GatewayProcess:
    def __init__(self, config: Path, workdir: Path, *, workers: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out_path = workdir / f"gateway-{self.port}.out"
        full_env = {**os.environ, "GATEWAY_CONFIG": str(config), "GATEWAY_HOST": "127.0.0.1",
                    "GATEWAY_PORT": str(self.port), "PYTHONPATH": str(ROOT),
                    "GATEWAY_RELOAD_INTERVAL": "0.2", **(env or {})}
        if workers is None:
            cmd = [sys.executable, "-m", "app"]
        else:
            full_env["GATEWAY_WORKERS"] = str(workers)
            full_env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(workdir / f"prom-{self.port}"))
            cmd = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf"]
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=self._out,
                                     stderr=subprocess.STDOUT)

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready in {timeout}s: {self.output()[-2000:]}")

    def output(self) -> str:
        self._out.flush()
        return self.out_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()
        return self.proc.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
