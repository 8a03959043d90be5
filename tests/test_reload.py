"""Config reloads are honest: a reload reported as ``ok`` has every changed key in force
(upstream timeouts and pool size, the Redis limiter, CORS), a change that needs a restart is
refused with a WARNING naming the keys, and no reload turns client authentication off unless
the new config says ``client_auth: {allow_anonymous: true}`` (closed by default), and then it
says so as loudly as start-up does.

Every step waits on ``gateway_config_reloads_total`` (polled, bounded), never on a sleep.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import ALICE, GatewayServer, metric, write_config, write_keys
from tests.redis_server import REQUIRES_REDIS, RedisServer

BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}




def _reload(metrics_url: str, path: Path, change: dict[str, Any], result: str = "ok",
            remove: tuple[str, ...] = ()) -> None:
    """Rewrite the config atomically (a new inode, as a ConfigMap swap gives) with ``change``
    merged into its sections and ``remove`` sections dropped, then wait until the gateway has
    counted one more config reload with ``result``."""
    before = metric(metrics_url, "gateway_config_reloads_total", file="config", result=result)
    config = yaml.safe_load(path.read_text())
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **value}
        else:
            config[section] = value
    for section in remove:
        config.pop(section, None)
    tmp = path.with_suffix(".new")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if metric(metrics_url, "gateway_config_reloads_total", file="config",
                   result=result) >= before + 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"no config reload with result={result} was counted")


def _oci(**changes: Any) -> dict[str, Any]:
    """The ``oci`` section write_config writes, with ``changes`` merged in."""
    base: dict[str, Any] = {
        "retries": {"max_attempts": 1, "backoff_base": 0.01, "backoff_max": 0.05},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5}}
    for name, value in changes.items():
        base[name] = {**base[name], **value} if isinstance(value, dict) else value
    return base


def test_a_lowered_first_byte_timeout_is_in_force_after_reload(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path, oci=_oci())
    with GatewayServer(config) as gw:
        fake.push(Scenario(text="late but in time", delay_before=1.0))
        assert gw.post("/v1/messages", BODY, key=None).status_code == 200
        _reload(gw.metrics_url, config, {"oci": _oci(timeouts={"first_byte": 0.3})})
        fake.push(Scenario(text="too late now", delay_before=1.0))
        r = gw.post("/v1/messages", BODY, key=None)
        assert r.status_code == 529, r.text
        assert "no response headers within 0.3s" in r.json()["error"]["message"]


def _stream(url: str, body: dict[str, Any], out: dict[str, Any]) -> None:
    try:
        r = httpx.post(url + "/v1/messages", json=body, timeout=30)
        out["status"], out["text"] = r.status_code, r.text
    except httpx.HTTPError as err:
        out["exc"] = repr(err)


def test_a_raised_connection_limit_is_in_force_while_a_stream_stays_open(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          oci=_oci(max_connections=1, timeouts={"first_byte": 1}))
    with GatewayServer(config) as gw:
        words = " ".join(["w"] * 40)
        fake.push(Scenario(text=words, chunks=40, delay_between=0.15, match="hold"))
        held: dict[str, Any] = {}
        body = {**BODY, "stream": True, "messages": [{"role": "user", "content": "hold"}]}
        t = threading.Thread(target=_stream, args=(gw.url, body, held))
        t.start()
        try:
            assert fake.wait_until(lambda: bool(fake.requests)
                                   and fake.requests[0].events_sent >= 1, 5)
            # the stream holds the only upstream connection: a second request waits for it
            r = gw.post("/v1/messages", BODY, key=None)
            assert r.status_code == 529 and "did not answer in time" in r.text
            _reload(gw.metrics_url, config, {"oci": _oci(max_connections=4,
                                                         timeouts={"first_byte": 1})})
            assert fake.requests[0].client_disconnected_at is None  # still streaming
            assert gw.post("/v1/messages", BODY, key=None).status_code == 200
        finally:
            t.join(timeout=20)
        # the stream opened before the reload ran to its end on the old pool
        assert held.get("status") == 200, held
        assert check_stream(held["text"])["text"] == words


@REQUIRES_REDIS
def test_a_new_redis_url_swaps_the_limiter(fake: FakeOCI, oci_key: TestKey,
                                           tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"id": "lim", "key": ALICE,
                                              "requests_per_minute": 100}]}))
    config = write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys)
    with RedisServer(tmp_path) as redis, GatewayServer(config) as gw:
        assert gw.post("/v1/messages", BODY).status_code == 200
        assert redis.counted_requests("lim") == 0  # in-process limits
        _reload(gw.metrics_url, config, {"limits": {"redis_url": redis.url}})
        assert gw.post("/v1/messages", BODY).status_code == 200
        assert redis.counted_requests("lim") == 1  # shared limits, from the next request on
        _reload(gw.metrics_url, config, {"limits": {"redis_url": None}})
        assert gw.post("/v1/messages", BODY).status_code == 200
        assert redis.counted_requests("lim") == 1


def _preflight(url: str) -> httpx.Response:
    return httpx.options(url + "/v1/messages", headers={
        "origin": "https://app.example", "access-control-request-method": "POST"})


def test_cors_origins_follow_reloads(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    with GatewayServer(config) as gw:
        assert "access-control-allow-origin" not in _preflight(gw.url).headers
        _reload(gw.metrics_url, config, {"server": {"cors_origins": ["https://app.example"]}})
        r = _preflight(gw.url)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        _reload(gw.metrics_url, config, {"server": {"cors_origins": []}})
        assert "access-control-allow-origin" not in _preflight(gw.url).headers


def _warnings(gw: GatewayProcess) -> list[str]:
    out = []
    for line in gw.output().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") == "warning":
            out.append(str(entry.get("msg")))
    return out


def _keyed_gateway(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> tuple[Path, Path]:
    keys = write_keys(tmp_path)
    return write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys), keys


def test_losing_the_keys_file_keeps_the_keys(fake: FakeOCI, oci_key: TestKey,
                                             tmp_path: Path) -> None:
    config, keys = _keyed_gateway(fake, oci_key, tmp_path)
    with GatewayProcess(config, tmp_path) as gw:
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        # the file is dropped from client_auth: closed by default, the config is refused whole
        _reload(gw.metrics_url, config, {"client_auth": {"api_keys_file": None}},
                result="error")
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        assert httpx.post(gw.url + "/v1/messages", json=BODY,
                          headers={"x-api-key": ALICE}).status_code == 200
        assert "no client authentication is configured" in gw.output()
        # the new config names a keys file that does not exist
        _reload(gw.metrics_url, config, {"client_auth": {"api_keys_file": str(tmp_path / "gone")}})
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        assert any("new keys file refused" in w and "cannot read" in w for w in _warnings(gw))
        # the keys file in use disappears
        before = metric(gw.metrics_url, "gateway_config_reloads_total", file="keys",
                         result="error")
        keys.unlink()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and metric(
                gw.url, "gateway_config_reloads_total", file="keys", result="error") <= before:
            time.sleep(0.05)
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        assert httpx.post(gw.url + "/v1/messages", json=BODY,
                          headers={"x-api-key": ALICE}).status_code == 200
        assert any("keys file change refused" in w for w in _warnings(gw))
        assert not any("OPEN" in w for w in _warnings(gw))


def test_only_allow_anonymous_opens_the_gateway_and_loudly(fake: FakeOCI, oci_key: TestKey,
                                                          tmp_path: Path) -> None:
    config, _ = _keyed_gateway(fake, oci_key, tmp_path)
    with GatewayProcess(config, tmp_path) as gw:
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        assert not any("OPEN" in w for w in _warnings(gw))
        # real OCI credentials and no client_auth: refused, authentication stays on
        _reload(gw.metrics_url, config, {}, remove=("client_auth",), result="error")
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 401
        _reload(gw.metrics_url, config, {"client_auth": {"allow_anonymous": True}})
        assert httpx.post(gw.url + "/v1/messages", json=BODY).status_code == 200
        assert any("the gateway is OPEN" in w for w in _warnings(gw))


def test_a_change_that_needs_a_restart_is_refused_with_a_warning(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    with GatewayProcess(config, tmp_path) as gw:
        _reload(gw.metrics_url, config,
                {"oci": {"profile": "OTHER"}, "aliases": {"claude-*": "llama"}},
                result="restart_required")
        assert any("oci.profile" in w and "restart" in w for w in _warnings(gw))
        # nothing of that config was applied: the alias still points at grok
        r = httpx.post(gw.url + "/v1/messages", json={**BODY, "model": "claude-x"})
        assert r.status_code == 200
        assert fake.requests[-1].body["servingMode"]["modelId"] == "xai.grok-4"
