"""Budgets shared by two gateway processes through a real Redis server, the usage CLI over the
same data, fail-open when Redis goes away, and the attribution + audit record in the logs of a
real gateway process (session id, agent id, request class and tags; cost, never content)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devtools.procs import GatewayProcess
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import TEST_MODELS, metric, write_config
from tests.redis_server import REQUIRES_REDIS, RedisServer

KEY = "shared-budget-key-123"
USAGE = {"promptTokens": 100, "completionTokens": 50, "totalTokens": 150}
PRICE = {"input": 1000.0, "output": 2000.0}  # $0.20 a request
BODY = {"model": "grok", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, fake: FakeOCI, oci_key: TestKey, **overrides: Any) -> Path:
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [
        {"id": "erin", "key": KEY, "team": "data", "owner": "erin@example.com"}]}))
    models = {**TEST_MODELS, "grok": {**TEST_MODELS["grok"], "price": PRICE}}
    return write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys, models=models,
                        teams={"data": {"budget": {"usd_per_week": 0.7}}}, **overrides)


def _post(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url + "/v1/messages", json=BODY, timeout=30,
                      headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", **headers})


@pytest.fixture()
def priced(fake: FakeOCI) -> Iterator[FakeOCI]:
    fake.set_default(Scenario(text="hello there", usage=USAGE))
    try:
        yield fake
    finally:
        fake.set_default(None)


def _spent(url: str) -> float:
    windows = httpx.get(url + "/v1/usage", headers={"x-api-key": KEY}).json()["windows"]
    return next(w["spent_usd"] for w in windows if w["scope"] == "team" and w["window"] == "week")


@REQUIRES_REDIS
def test_a_team_budget_holds_across_two_processes_through_redis(
        priced: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    with RedisServer(tmp_path) as redis:
        config = _config(tmp_path, priced, oci_key, limits={"redis_url": redis.url})
        with GatewayProcess(config, tmp_path) as a, GatewayProcess(config, tmp_path) as b:
            codes = []
            for i in range(4):  # 0.0, 0.2, 0.4, 0.6 spent before each: all admitted
                codes.append(_post((a if i % 2 else b).url).status_code)
                deadline = time.monotonic() + 10  # the charge lands in the background
                while _spent(a.url) < 0.2 * (i + 1) - 1e-9 and time.monotonic() < deadline:
                    time.sleep(0.02)
            assert codes == [200] * 4
            assert _spent(b.url) == pytest.approx(0.8)  # both see the shared total
            sent = len(priced.requests)
            refused = _post(a.url), _post(b.url)
            assert [r.status_code for r in refused] == [429, 429]
            assert len(priced.requests) == sent
            assert all(r.headers["x-should-retry"] == "false" for r in refused)
            assert "team 'data'" in refused[0].json()["error"]["message"]
            assert "weekly budget of $0.70" in refused[0].json()["error"]["message"]
            # the usage CLI reads the same data from Redis
            cli = subprocess.run(
                [sys.executable, "-m", "app", "usage", "--config", str(config), "--by", "team",
                 "--since", "7d", "--json"], cwd=ROOT, capture_output=True, text=True,
                timeout=60, check=False)
            assert cli.returncode == 0, cli.stderr
            rows = json.loads(cli.stdout)["rows"]
            assert rows == [{"name": "data", "usd": pytest.approx(0.8), "requests": 4,
                             "input_tokens": 400, "output_tokens": 200}]
            table = subprocess.run(
                [sys.executable, "-m", "app", "usage", "--config", str(config), "--by", "model"],
                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
            assert table.returncode == 0, table.stderr
            assert "grok" in table.stdout and "0.8000" in table.stdout
            # Redis goes away: served anyway (fail-open), counted loudly
            redis.stop()
            r = _post(a.url)
            assert r.status_code == 200  # this process's own count now: nothing spent yet
            assert metric(a.metrics_url, "gateway_spend_backend_errors_total") >= 1


def test_usage_cli_without_redis_says_why(priced: FakeOCI, oci_key: TestKey,
                                          tmp_path: Path) -> None:
    config = _config(tmp_path, priced, oci_key)
    cli = subprocess.run([sys.executable, "-m", "app", "usage", "--config", str(config)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 2
    assert "limits.redis_url" in cli.stderr and "/v1/usage" in cli.stderr


def test_attribution_and_audit_records(priced: FakeOCI, oci_key: TestKey,
                                       tmp_path: Path) -> None:
    config = _config(tmp_path, priced, oci_key)
    session = "d2c318de-5ee9-48f9-8534-db048e7b99ac"
    with GatewayProcess(config, tmp_path) as gw:
        r = _post(gw.url, **{
            "x-claude-code-session-id": session, "x-claude-code-agent-id": "agent-7",
            "x-claude-code-request-class": "subagent", "x-gateway-tags": "CI, proj:x, bad tag!",
        })
        assert r.status_code == 200
        priced.push(Scenario(text="a long answer " * 20, drop_after=2))  # cut off mid-stream
        with httpx.stream("POST", gw.url + "/v1/messages", json={**BODY, "stream": True},
                          headers={"x-api-key": KEY}, timeout=30) as cut:
            assert b"event: error" in b"".join(cut.iter_bytes())
        exposition = httpx.get(gw.metrics_url).text
        deadline = time.monotonic() + 10
        while gw.output().count('"logger":"app.audit"') < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        records = [json.loads(line) for line in gw.output().splitlines() if line.startswith("{")]
    audit = [rec for rec in records if rec["logger"] == "app.audit"]
    access = [rec for rec in records if rec["logger"] == "app.access"]
    assert len(audit) == 2 and len(access) == 2
    first = audit[0]
    assert first["key_id"] == "erin" and first["team"] == "data"
    assert first["owner"] == "erin@example.com" and first["principal_kind"] == "key"
    assert first["model"] == "grok" and first["status"] == 200
    assert first["input_tokens"] == 100 and first["output_tokens"] == 50
    assert first["cost_usd"] == pytest.approx(0.2) and first.get("cost_estimated") is None
    assert first["session_id"] == session and first["agent_id"] == "agent-7"
    assert first["request_class"] == "subagent" and first["tags"] == ["ci", "proj:x"]
    assert access[0]["cost_usd"] == pytest.approx(0.2) and access[0]["session_id"] == session
    assert "hello there" not in json.dumps(audit)  # never content
    cut_off = audit[1]
    assert cut_off["cost_estimated"] is True and cut_off["cost_usd"] > 0
    # no session id reaches a metric label
    assert session not in exposition
    assert 'gateway_spend_usd_total{key_id="erin",model="grok",team="data"}' in exposition
