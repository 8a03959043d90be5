"""One worker holds many streams; the CLI check and probe; a wrong OCI key; startup errors;
process settings (``GATEWAY_*``) mean the same under ``python -m app`` and gunicorn."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, make_test_key
from tests.harness import ALICE, GatewayServer, write_config

ROOT = Path(__file__).resolve().parents[1]


def test_200_concurrent_one_second_streams_on_one_worker(gateway: GatewayServer,
                                                         fake: FakeOCI) -> None:
    # ~1 s per stream (5 chunks, 0.2 s apart); a blocking call on the loop would serialise them
    fake.set_default(Scenario(text="one two three four five", chunks=5, delay_between=0.2))
    body = {"model": "grok", "max_tokens": 20, "stream": True,
            "messages": [{"role": "user", "content": "count"}]}

    async def one(client: httpx.AsyncClient) -> str:
        r = await client.post(gateway.url + "/v1/messages", json=body,
                              headers={"x-api-key": ALICE})
        assert r.status_code == 200
        return r.text

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(one(client) for _ in range(200)))

    t0 = time.monotonic()
    try:
        bodies = asyncio.run(run())
    finally:
        fake.set_default(None)
    elapsed = time.monotonic() - t0
    assert len(bodies) == 200
    for text in bodies:
        assert check_stream(text)["text"] == "one two three four five"
    assert elapsed < 6.0, f"200 one-second streams took {elapsed:.1f}s on one worker"


def _env(config: Path) -> dict[str, str]:
    return {**os.environ, "GATEWAY_CONFIG": str(config), "PYTHONPATH": str(ROOT)}


def test_check_and_probe(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    out = subprocess.run([sys.executable, "-m", "app", "check"], env=_env(config),
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "grok: xai.grok-4" in out.stdout and "claude-* -> grok" in out.stdout
    assert "API key (profile DEFAULT)" in out.stdout
    probe = subprocess.run([sys.executable, "-m", "app", "check", "--probe", "--model", "grok"],
                           env=_env(config), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "probe grok: OK" in probe.stdout
    assert fake.requests[-1].body["servingMode"]["modelId"] == "xai.grok-4"
    fake.push(Scenario(error={"status": 404}))
    failed = subprocess.run([sys.executable, "-m", "app", "check", "--probe", "--model", "grok"],
                            env=_env(config), capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert failed.returncode == 1 and "probe grok: FAILED (not_found" in failed.stdout


@pytest.mark.parametrize(
    ("mutation", "needle"),
    [({"aliases": {"claude-*": "nope"}}, "aliases.claude-*: refers to undefined model 'nope'"),
     ({"default_model": "ghost"}, "default_model: refers to undefined model 'ghost'"),
     ({"models": {"x": {"model_id": "a", "endpoint_id": "b"}}}, "exactly one of model_id"),
     ({"models": {"x": {"model_id": "a", "capabilities": ["telepathy"]}}},
      "models.x.capabilities.0"),
     ({"oci": {"auth": "magic"}}, "oci.auth"),
     ({"oci": {"compartment_id": "c", "typo_key": 1}}, "oci.typo_key: unknown key")],
)
def test_bad_config_names_the_key(fake: FakeOCI, oci_key: TestKey, tmp_path: Path,
                                  mutation: dict[str, object], needle: str) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path, **mutation)
    out = subprocess.run([sys.executable, "-m", "app", "check"], env=_env(config),
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 1
    assert needle in out.stderr, out.stderr
    # the server refuses to start with the same message
    serve = subprocess.run([sys.executable, "-m", "app"], env={**_env(config),
                           "GATEWAY_PORT": "0"}, capture_output=True, text=True, timeout=60,
                           cwd=ROOT)
    assert serve.returncode == 1 and needle in serve.stderr


def test_wrong_oci_key_is_a_500_api_error(fake: FakeOCI, tmp_path: Path) -> None:
    other: TestKey = make_test_key(tmp_path / "other")  # the emulator does not know this key
    config = write_config(tmp_path, fake.url, other.config_path)
    with GatewayServer(config) as gw:
        r = gw.post("/v1/messages", {"model": "grok", "max_tokens": 5,
                                     "messages": [{"role": "user", "content": "x"}]}, key=None)
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "api_error" and "credentials" in err["message"]
    assert fake.requests[-1].status == 401  # the emulator did reject the signature


def test_gunicorn_starts_with_a_fractional_graceful_timeout(fake: FakeOCI, oci_key: TestKey,
                                                             tmp_path: Path) -> None:
    # B6: gunicorn_conf used to do int("60.5") and crash before any worker started. The
    # warning filter turns an import of the deprecated uvicorn.workers into a boot failure.
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    env = {"GATEWAY_GRACEFUL_TIMEOUT": "60.5",
           "PYTHONWARNINGS": "error::DeprecationWarning:uvicorn.workers"}
    with GatewayProcess(config, tmp_path, workers=1, env=env) as gw:
        r = httpx.post(gw.url + "/v1/messages", json={
            "model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            timeout=10)
        assert r.status_code == 200


@pytest.mark.parametrize("workers", [None, 1], ids=["python-m-app", "gunicorn"])
def test_keepalive_setting_applies(fake: FakeOCI, oci_key: TestKey, tmp_path: Path,
                                   workers: int | None) -> None:
    # B6: `python -m app` hard-coded 75 s and ignored GATEWAY_KEEPALIVE
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    with GatewayProcess(config, tmp_path, workers=workers,
                        env={"GATEWAY_KEEPALIVE": "1"}) as gw, socket.create_connection(
            ("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        # the server closes the idle connection after ~1 s; recv returns b"" then (bounded by
        # the socket timeout: with the old fixed 75 s this raises TimeoutError)
        while sock.recv(65536):
            pass
        assert time.monotonic() - t0 < 5


_TWO_APPS = """
import sys
import httpx
from pathlib import Path
from tests.harness import GatewayServer
for _ in range(2):
    with GatewayServer(Path(sys.argv[1])) as gw:
        assert httpx.get(gw.url + "/v1/models").status_code == 200
"""


def test_tracing_outlives_the_shutdown_of_an_earlier_app(fake: FakeOCI, oci_key: TestKey,
                                                         tmp_path: Path) -> None:
    # B11: the first app's lifespan shut the process-global tracer provider down, so every app
    # built after it in the same process (the tests build many) exported nothing
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    env = {**_env(config), "OTEL_TRACES_EXPORTER": "console"}
    out = subprocess.run([sys.executable, "-c", _TWO_APPS, str(config)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count('"name": "GET /v1/models"') == 2, out.stdout[-3000:]
