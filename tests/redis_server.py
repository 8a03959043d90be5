"""A real redis-server (Debian's package) on a free loopback port, for the shared-limit tests.

Contract: :class:`RedisServer` starts ``redis-server`` bound to 127.0.0.1 without persistence,
waits (bounded) until it answers ``PING``, and :meth:`~RedisServer.stop` ends it and waits for
the process to exit, so "Redis is down" is a fact once it returns, not a guess. ``client`` is a
synchronous redis-py client for inspecting what the gateway stored. :data:`REQUIRES_REDIS`
skips a test (naming the Debian package) when the server is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.harness import free_port

REQUIRES_REDIS = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (apt-get install redis-server)")


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._proc: subprocess.Popen[bytes] | None = None
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self, timeout: float = 10.0) -> RedisServer:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client.ping():
                    return self
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.client.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def counted_requests(self, key_id: str) -> int:
        """Requests the gateway counted for a client key, summed over the minute windows."""
        return sum(int(self.client.get(name) or 0)
                   for name in self.client.scan_iter(f"ocigw:{{{key_id}}}:req:*"))

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
