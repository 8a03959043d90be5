"""Per-key limits shared by two gateway replicas through a real Redis server (Debian's
redis-server, started here on loopback), and fail-open when Redis goes away."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from emulator import FakeOCI, TestKey
from tests.harness import GatewayServer, free_port, write_config

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (apt-get install redis-server)")
KEY = "shared-limit-key-123"
BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                             text=True)
        if out.stdout.strip() == "PONG":
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture()
def replicas(fake: FakeOCI, oci_key: TestKey, tmp_path: Path
             ) -> Iterator[tuple[GatewayServer, GatewayServer, int]]:
    port = free_port()
    redis = _start_redis(port, tmp_path)
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"id": "team", "key": KEY,
                                              "requests_per_minute": 4}]}))
    config = write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys,
                          limits={"redis_url": f"redis://127.0.0.1:{port}/0"})
    a, b = GatewayServer(config).start(), GatewayServer(config).start()
    try:
        yield a, b, port
    finally:
        a.stop()
        b.stop()
        redis.kill()
        redis.wait(timeout=10)


def test_limits_hold_across_replicas_and_fail_open(replicas: tuple[GatewayServer,
                                                                   GatewayServer, int],
                                                   tmp_path: Path) -> None:
    a, b, port = replicas
    codes = [(a if i % 2 else b).post("/v1/messages", BODY, key=KEY).status_code
             for i in range(5)]
    # 4 per minute in total, not 4 per replica
    assert codes == [200, 200, 200, 200, 429]
    refused = a.post("/v1/messages", BODY, key=KEY)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # Redis goes away: both replicas keep serving (per-process limits meanwhile), and count it
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    time.sleep(0.3)
    r = b.post("/v1/messages", BODY, key=KEY)
    assert r.status_code == 200
    metrics = httpx.get(b.url + "/metrics").text
    assert "gateway_ratelimit_backend_errors_total" in metrics
    errors = [line for line in metrics.splitlines()
              if line.startswith("gateway_ratelimit_backend_errors_total")]
    assert float(errors[0].rsplit(" ", 1)[1]) >= 1
    # Redis returns (empty): shared limits apply again after the short back-off
    redis = _start_redis(port, tmp_path)
    try:
        time.sleep(2.5)
        codes = [a.post("/v1/messages", BODY, key=KEY).status_code for _ in range(5)]
        assert codes[-1] == 429 and codes.count(200) == 4
    finally:
        redis.kill()
        redis.wait(timeout=10)
