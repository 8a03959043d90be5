"""Per-key limits shared by two gateway replicas through a real Redis server (Debian's
redis-server, started here on loopback): never exceeded under concurrent requests (admission is
one atomic script), fail-open when Redis goes away, shared again when it returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devtools.procs import GatewayProcess
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import GatewayServer, write_config
from tests.redis_server import REQUIRES_REDIS, RedisServer

pytestmark = REQUIRES_REDIS
KEY = "shared-limit-key-123"
SECOND = "second-limit-key-123"
BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def _config(tmp_path: Path, fake: FakeOCI, oci_key: TestKey, redis_url: str,
            keys: list[dict[str, Any]]) -> Path:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": keys}))
    return write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys_file,
                        limits={"redis_url": redis_url})


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture()
def replicas(fake: FakeOCI, oci_key: TestKey, tmp_path: Path, redis_server: RedisServer
             ) -> Iterator[tuple[GatewayServer, GatewayServer]]:
    config = _config(tmp_path, fake, oci_key, redis_server.url, [
        {"id": "team", "key": KEY, "requests_per_minute": 4},
        {"id": "second", "key": SECOND, "requests_per_minute": 2}])
    a, b = GatewayServer(config).start(), GatewayServer(config).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def _backend_errors(metrics_url: str) -> float:
    lines = [line for line in httpx.get(metrics_url).text.splitlines()
             if line.startswith("gateway_ratelimit_backend_errors_total")]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def _back_on_redis(replica: GatewayServer, redis_server: RedisServer) -> None:
    """Poll (bounded) until a request through ``replica`` is counted in Redis again: its
    back-off after the outage is over. Refusals by its in-process limits meanwhile are fine."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        before = redis_server.counted_requests("team")
        replica.post("/v1/messages", BODY, key=KEY)
        if redis_server.counted_requests("team") > before:
            return
        time.sleep(0.1)
    raise AssertionError("the replica never used Redis again")


def test_limits_hold_across_replicas_and_fail_open(
        replicas: tuple[GatewayServer, GatewayServer], redis_server: RedisServer,
        tmp_path: Path) -> None:
    a, b = replicas
    codes = [(a if i % 2 else b).post("/v1/messages", BODY, key=KEY).status_code
             for i in range(5)]
    # 4 per minute in total, not 4 per replica
    assert codes == [200, 200, 200, 200, 429]
    refused = a.post("/v1/messages", BODY, key=KEY)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # Redis goes away (stop() returns once the process has exited): both replicas keep
    # serving (per-process limits meanwhile), and count it
    redis_server.stop()
    errors = _backend_errors(b.metrics_url)
    r = b.post("/v1/messages", BODY, key=KEY)
    assert r.status_code == 200
    assert _backend_errors(b.metrics_url) >= errors + 1
    # Redis returns (empty): each replica counts in it again once its short back-off is over
    with RedisServer(tmp_path, port=redis_server.port) as back:
        _back_on_redis(a, back)
        _back_on_redis(b, back)
        # shared again: 2 per minute across both replicas (per-process limits would allow 4)
        codes = [(a if i % 2 else b).post("/v1/messages", BODY, key=SECOND).status_code
                 for i in range(4)]
        assert codes == [200, 200, 429, 429]


def _two_processes(config: Path, tmp_path: Path) -> tuple[GatewayProcess, GatewayProcess]:
    a = GatewayProcess(config, tmp_path)
    b = GatewayProcess(config, tmp_path)  # both boot at once
    try:
        return a.start(), b.start()
    except Exception:
        a.stop()
        b.stop()
        raise


async def _burst(urls: list[str], count: int, body: dict[str, Any], key: str,
                 hold: bool) -> list[httpx.Response]:
    """``count`` concurrent requests, spread over ``urls``. With ``hold`` every admitted
    response stays open until all ``count`` statuses are known, so no slot frees early."""
    all_in = asyncio.Event()
    answers: list[httpx.Response] = []

    async def one(client: httpx.AsyncClient, url: str) -> None:
        async with client.stream("POST", url + "/v1/messages", json=body,
                                 headers={"x-api-key": key}) as r:
            answers.append(r)
            if len(answers) == count:
                all_in.set()
            if r.status_code != 200 or not hold:
                await r.aread()
                return
            await asyncio.wait_for(all_in.wait(), 20)

    limits = httpx.Limits(max_connections=count + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.wait_for(asyncio.gather(
            *(one(client, urls[i % len(urls)]) for i in range(count))), 60)
    return answers


def _assert_refused(answers: list[httpx.Response], admitted: int) -> None:
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * admitted + [429] * (len(answers) - admitted), codes
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1


def test_requests_per_minute_never_exceeded_by_a_burst_on_two_replicas(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path, redis_server: RedisServer) -> None:
    # check-then-increment let every request of a burst read the same count (review §6)
    n = 6
    config = _config(tmp_path, fake, oci_key, redis_server.url,
                     [{"id": "burst", "key": KEY, "requests_per_minute": n}])
    a, b = _two_processes(config, tmp_path)
    try:
        answers = asyncio.run(_burst([a.url, b.url], 3 * n, BODY, KEY, hold=False))
    finally:
        a.stop()
        b.stop()
    _assert_refused(answers, n)
    assert redis_server.counted_requests("burst") == n


def test_concurrent_streams_never_exceeded_on_two_replicas(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path, redis_server: RedisServer) -> None:
    n = 3
    config = _config(tmp_path, fake, oci_key, redis_server.url,
                     [{"id": "streamer", "key": KEY, "max_concurrent_streams": n}])
    a, b = _two_processes(config, tmp_path)
    # each admitted stream would run ~6 s; the burst closes them as soon as all statuses are in
    fake.set_default(Scenario(text=" ".join(["w"] * 30), chunks=30, delay_between=0.2))
    try:
        answers = asyncio.run(_burst([a.url, b.url], 3 * n, {**BODY, "stream": True}, KEY,
                                     hold=True))
        _assert_refused(answers, n)
        # the clients left: every slot is given back (polled, bounded)
        slots = "ocigw:{streamer}:streams"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and redis_server.client.zcard(slots) > 0:
            time.sleep(0.05)
        assert redis_server.client.zcard(slots) == 0
    finally:
        fake.set_default(None)
        a.stop()
        b.stop()
