"""A shared endpoint that holds: disconnects, SIGTERM drains, config/key reloads, limits,
failover and timeouts — with real processes and the emulator over loopback."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import ALICE, GatewayServer, metric, write_config, write_keys

BODY = {"model": "grok", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}




def test_client_disconnect_cancels_upstream_and_releases(gateway: GatewayServer,
                                                         fake: FakeOCI) -> None:
    fake.push(Scenario(text=" ".join(["word"] * 60), chunks=60, delay_between=0.2))
    before = metric(gateway.metrics_url, "gateway_active_streams", model="grok")
    with httpx.Client(timeout=10) as client, client.stream(
        "POST", gateway.url + "/v1/messages", headers={"x-api-key": ALICE},
        json={**BODY, "stream": True}) as r:
        lines = r.iter_lines()  # keep a reference: a collected iterator closes the response
        for line in lines:
            if "text_delta" in line:
                break
        assert metric(gateway.metrics_url, "gateway_active_streams", model="grok") == before + 1
        t_close = time.monotonic()
    # the client went away: the emulator sees its connection closed within a second
    assert fake.wait_until(lambda: fake.requests[-1].client_disconnected_at is not None, 3.0)
    rec = fake.requests[-1]
    assert rec.client_disconnected_at is not None
    assert rec.events_sent < 60
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and metric(gateway.metrics_url, "gateway_active_streams",
                                                   model="grok") != before:
        time.sleep(0.05)
    assert metric(gateway.metrics_url, "gateway_active_streams", model="grok") == before
    assert time.monotonic() - t_close < 3


def _wait_for_metric(metrics_url: str, name: str, at_least: float, **labels: str) -> None:
    """Poll /metrics (bounded) until the metric reaches a value: the observable readiness."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if metric(metrics_url, name, **labels) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels} never reached {at_least}")


def _stream_in_thread(url: str, body: dict[str, Any], out: dict[str, Any], key: str) -> None:
    try:
        r = httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": key}, timeout=30)
        out["status"] = r.status_code
        out["text"] = r.text
    except httpx.HTTPError as err:
        out["exc"] = repr(err)


@pytest.mark.parametrize("workers", [None, 1], ids=["uvicorn", "gunicorn"])
def test_sigterm_drains_streams(fake: FakeOCI, oci_key: TestKey, tmp_path: Path,
                                workers: int | None) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          keys_file=write_keys(tmp_path))
    gw = GatewayProcess(config, tmp_path, workers=workers,
                        env={"GATEWAY_GRACEFUL_TIMEOUT": "4"}).start()
    try:
        fake.push(Scenario(text="short one two three", chunks=4, delay_between=0.3,
                           match="short"),
                  Scenario(text=" ".join(["long"] * 40), chunks=40, delay_between=0.3,
                           match="long"))
        short: dict[str, Any] = {}
        long: dict[str, Any] = {}
        threads = [
            threading.Thread(target=_stream_in_thread, args=(gw.url, {
                **BODY, "stream": True, "messages": [{"role": "user", "content": p}]}, out,
                ALICE)) for p, out in (("short", short), ("long", long))]
        for t in threads:
            t.start()
        # both streams are flowing: each has sent at least one event
        assert fake.wait_until(lambda: len(fake.requests) >= 2 and all(
            r.events_sent >= 1 for r in fake.requests[-2:]), 5)
        t_term = time.monotonic()
        gw.signal(signal.SIGTERM)
        # readiness turns false (or the listener closes): polled, bounded
        ready: int | None = 200
        deadline = time.monotonic() + 3
        while ready == 200 and time.monotonic() < deadline:
            try:
                ready = httpx.get(gw.url + "/readyz", timeout=1).status_code
            except httpx.HTTPError:
                ready = None
        assert ready in (503, None)
        # no new request is accepted: the listener is closed, or the gateway answers 529
        try:
            late = httpx.post(gw.url + "/v1/messages", json=BODY, headers={"x-api-key": ALICE},
                              timeout=2)
            assert late.status_code == 529, late.text
            assert late.json()["error"]["type"] == "overloaded_error"
        except httpx.HTTPError:
            pass
        for t in threads:
            t.join(timeout=15)
        code = gw.proc.wait(timeout=15)
        elapsed = time.monotonic() - t_term
    finally:
        gw.stop()
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown: death by SIGTERM
    assert code in (0, -signal.SIGTERM)
    assert short["status"] == 200 and check_stream(short["text"])["text"] == "short one two three"
    assert long["status"] == 200
    result = check_stream(long["text"], allow_error=True)
    assert result["error"] is not None and result["error"]["type"] == "overloaded_error"
    assert elapsed < 8


def _swap(directory: Path, name: str, text: str) -> None:
    """Kubernetes-style atomic update: write a new data dir, swap the ..data symlink."""
    new_dir = directory / f"..{time.monotonic_ns()}"
    new_dir.mkdir()
    (new_dir / name).write_text(text)
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(new_dir.name)
    os.replace(tmp_link, directory / "..data")
    link = directory / name
    if not link.is_symlink():
        link.symlink_to(f"..data/{name}")


def test_config_and_keys_reload_like_a_configmap(fake: FakeOCI, oci_key: TestKey,
                                                 tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    mount = tmp_path / "mount"
    mount.mkdir()
    keys_mount = tmp_path / "keys"
    keys_mount.mkdir()
    keys_text = write_keys(staging).read_text()
    _swap(keys_mount, "keys.yaml", keys_text)
    base = write_config(staging, fake.url, oci_key.config_path,
                        keys_file=keys_mount / "keys.yaml")
    config = yaml.safe_load(base.read_text())
    _swap(mount, "gateway.yaml", yaml.safe_dump(config))
    with GatewayServer(mount / "gateway.yaml", reload_interval=0.1) as gw:
        fake.push(Scenario(text=" ".join(["old"] * 10), chunks=10, delay_between=0.2))
        inflight: dict[str, Any] = {}
        t = threading.Thread(target=_stream_in_thread, args=(gw.url, {
            **BODY, "stream": True}, inflight, ALICE))
        t.start()
        assert fake.wait_until(lambda: len(fake.requests) >= 1, 5)
        # new config: the alias now points at llama
        config["aliases"] = {"claude-*": "llama"}
        _swap(mount, "gateway.yaml", yaml.safe_dump(config))
        deadline = time.monotonic() + 5
        served = None
        while time.monotonic() < deadline:
            gw.post("/v1/messages", {**BODY, "model": "claude-x"})
            served = fake.requests[-1].body["servingMode"]["modelId"]
            if served == "meta.llama-3.3-70b-instruct":
                break
            time.sleep(0.1)
        assert served == "meta.llama-3.3-70b-instruct"
        t.join(timeout=10)
        assert check_stream(inflight["text"])["text"] == " ".join(["old"] * 10)
        # an invalid config is refused; the running one keeps serving
        refused = metric(gw.metrics_url, "gateway_config_reloads_total", file="config",
                          result="error")
        _swap(mount, "gateway.yaml", "models: {}\noci: 5\n")
        _wait_for_metric(gw.metrics_url, "gateway_config_reloads_total", refused + 1, file="config",
                         result="error")
        r = gw.post("/v1/messages", {**BODY, "model": "claude-x"})
        assert r.status_code == 200
        assert fake.requests[-1].body["servingMode"]["modelId"] == "meta.llama-3.3-70b-instruct"
        # keys: add carol by sha256, drop bob; an invalid keys file is refused
        carol = "carol-key-0123456789"
        _swap(keys_mount, "keys.yaml", yaml.safe_dump({"keys": [
            {"id": "alice", "key": ALICE},
            {"id": "carol", "sha256": hashlib.sha256(carol.encode()).hexdigest()}]}))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and gw.post("/v1/messages", BODY,
                                                      key=carol).status_code != 200:
            time.sleep(0.1)
        assert gw.post("/v1/messages", BODY, key=carol).status_code == 200
        refused = metric(gw.metrics_url, "gateway_config_reloads_total", file="keys",
                          result="error")
        _swap(keys_mount, "keys.yaml", "keys: [{id: broken}]\n")
        _wait_for_metric(gw.metrics_url, "gateway_config_reloads_total", refused + 1, file="keys",
                         result="error")
        assert gw.post("/v1/messages", BODY, key=carol).status_code == 200


def _limited_gateway(tmp_path: Path, fake: FakeOCI, oci_key: TestKey,
                     **limits: Any) -> GatewayServer:
    keys = tmp_path / "limited-keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"id": "lim", "key": "limited-key-123456",
                                              **limits}]}))
    config = write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys)
    return GatewayServer(config)


def test_per_key_models_and_request_limit(fake: FakeOCI, oci_key: TestKey,
                                          tmp_path: Path) -> None:
    with _limited_gateway(tmp_path, fake, oci_key, models=["grok"],
                          requests_per_minute=3) as gw:
        r = gw.post("/v1/messages", {**BODY, "model": "llama"}, key="limited-key-123456")
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
        codes = [gw.post("/v1/messages", BODY, key="limited-key-123456").status_code
                 for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        r = gw.post("/v1/messages", BODY, key="limited-key-123456")
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert metric(gw.metrics_url, "gateway_rate_limited_total", key_id="lim",
                       limit="requests") >= 1


def test_per_key_token_and_stream_limits(fake: FakeOCI, oci_key: TestKey,
                                         tmp_path: Path) -> None:
    with _limited_gateway(tmp_path, fake, oci_key, tokens_per_minute=150,
                          max_concurrent_streams=1) as gw:
        fake.push(Scenario(text="x", usage={"promptTokens": 100, "completionTokens": 60,
                                            "totalTokens": 160}))
        assert gw.post("/v1/messages", BODY, key="limited-key-123456").status_code == 200
        # the real usage (160) is over 150: the next request is refused
        r = gw.post("/v1/messages", BODY, key="limited-key-123456")
        assert r.status_code == 429 and "tokens per minute" in r.json()["error"]["message"]
    with _limited_gateway(tmp_path, fake, oci_key, max_concurrent_streams=1) as gw:
        fake.push(Scenario(text="a b c d", chunks=4, delay_between=0.4))
        out: dict[str, Any] = {}
        sent = len(fake.requests)
        t = threading.Thread(target=_stream_in_thread, args=(gw.url, {
            **BODY, "stream": True}, out, "limited-key-123456"))
        t.start()
        # the slot is taken before the upstream call, so once OCI has the request it is held
        assert fake.wait_until(lambda: len(fake.requests) > sent, 5)
        r = gw.post("/v1/messages", {**BODY, "stream": True}, key="limited-key-123456")
        assert r.status_code == 429 and "concurrent streams" in r.json()["error"]["message"]
        t.join(timeout=10)
        assert out["status"] == 200
        # the slot was released when the stream ended
        assert gw.post("/v1/messages", {**BODY, "stream": True},
                       key="limited-key-123456").status_code == 200


def test_failover_to_a_second_region(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    with FakeOCI(public_keys={oci_key.key_id: oci_key.public_pem}) as second:
        models = {"grok": {"model_id": "xai.grok-4", "capabilities": ["tools"],
                           "failover": [{"endpoint": second.url}]}}
        config = write_config(tmp_path, fake.url, oci_key.config_path, models=models,
                              aliases={})
        with GatewayServer(config) as gw:
            fake.push(Scenario(error={"status": 429}))
            second.push(Scenario(text="served by the second region"))
            r = gw.post("/v1/messages", BODY, key=None)
            assert r.status_code == 200
            assert r.json()["content"][0]["text"] == "served by the second region"
            assert len(fake.requests) == 1 and len(second.requests) == 1
            assert metric(gw.metrics_url, "gateway_upstream_failovers_total", model="grok") == 1


def test_connect_and_first_byte_timeouts(fake: FakeOCI, oci_key: TestKey,
                                         tmp_path: Path) -> None:
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"  # nothing listens: refused
    config = write_config(tmp_path, dead_url, oci_key.config_path)
    with GatewayServer(config) as gw:
        t0 = time.monotonic()
        r = gw.post("/v1/messages", BODY, key=None)
        assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
        assert "cannot reach" in r.json()["error"]["message"]
        assert time.monotonic() - t0 < 5
    slow = tmp_path / "slow"
    slow.mkdir()
    config = write_config(slow, fake.url, oci_key.config_path,
                          oci={"timeouts": {"connect": 2, "first_byte": 0.5, "idle": 5},
                               "retries": {"max_attempts": 1}})
    with GatewayServer(config) as gw:
        fake.push(Scenario(text="late", delay_before=2.0))
        t0 = time.monotonic()
        r = gw.post("/v1/messages", BODY, key=None)
        assert r.status_code == 529 and "did not answer in time" in r.json()["error"]["message"]
        assert time.monotonic() - t0 < 2.0


def test_stalled_request_body_gets_408(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          server={"body_timeout": 0.5})
    with GatewayServer(config) as gw, socket.create_connection(
            ("127.0.0.1", gw.settings.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mo")
        t0 = time.monotonic()
        answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 408")
        assert "timeout_error" in answer and time.monotonic() - t0 < 3
        assert gw.post("/v1/messages", BODY, key=None).status_code == 200


def test_client_gone_before_the_stream_started_frees_everything(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    with _limited_gateway(tmp_path, fake, oci_key, max_concurrent_streams=1) as gw:
        # OCI takes 1 s to answer; the client hangs up after 0.2 s, before any byte came back
        fake.push(Scenario(text=" ".join(["w"] * 50), chunks=50, delay_before=1.0,
                           delay_between=0.1))
        body = json.dumps({**BODY, "stream": True}).encode()
        with socket.create_connection(("127.0.0.1", gw.settings.port), timeout=5) as sock:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: "
                         b"limited-key-123456\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(0.2)
        # the upstream answer is abandoned as soon as it arrives, not streamed to nobody
        assert fake.wait_until(lambda: fake.requests[-1].client_disconnected_at is not None, 4)
        assert fake.requests[-1].events_sent < 50
        # the key's only stream slot is free again
        fake.push(Scenario(text="next"))
        r = gw.post("/v1/messages", {**BODY, "stream": True}, key="limited-key-123456")
        assert r.status_code == 200 and check_stream(r.text)["text"] == "next"
        assert metric(gw.metrics_url, "gateway_active_streams", model="grok") == 0
