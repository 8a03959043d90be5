"""Spend in USD and budgets: pure window and header rules with an injected clock, then over HTTP
with the anthropic SDK against the gateway and the OCI emulator (prices, the 429 that Claude
Code does not retry, the anthropic-ratelimit-unified-* headers on JSON and stream answers,
GET /v1/usage and who may read whose usage)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from calendar import timegm
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from app.catalog.price import Price, cost
from app.config import Budgets as BudgetsConfig
from app.security.budgets import BudgetExceeded, Budgets, unified_headers, window_span
from app.security.policy import Budget, Principal
from app.security.spend_store import LocalStore
from emulator import FakeOCI, Scenario, TestKey
from tests.harness import TEST_MODELS, GatewayServer, metric, write_config

ADMIN = "admin-key-0123456789"
CAROL = "carol-key-0123456789"
DAVE = "dave-key-0123456789"
# 100 prompt + 50 completion tokens at 1000/2000 USD per million: $0.20 a request
USAGE = {"promptTokens": 100, "completionTokens": 50, "totalTokens": 150}
PRICE = {"input": 1000.0, "output": 2000.0}
PER_REQUEST = 0.2
BODY = {"model": "grok", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _epoch(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return timegm((y, mo, d, h, mi, s, 0, 0, 0))


# --------------------------------------------------------------------------- pure rules


def test_windows_are_utc_calendar_periods() -> None:
    now = _epoch(2026, 12, 31, 23, 59, 59)  # a Thursday
    assert window_span("day", now) == ("2026-12-31", _epoch(2026, 12, 31), _epoch(2027, 1, 1))
    assert window_span("week", now) == ("2026-W53", _epoch(2026, 12, 28), _epoch(2027, 1, 4))
    assert window_span("month", now) == ("2026-12", _epoch(2026, 12, 1), _epoch(2027, 1, 1))
    assert window_span("month", _epoch(2026, 2, 10))[2] == _epoch(2026, 3, 1)
    assert window_span("day", _epoch(2027, 1, 1))[0] == "2027-01-01"  # the reset itself


def test_cost_per_million_tokens_and_cached_input() -> None:
    price = Price(input=3.0, output=15.0, cached_input=0.3)
    usage = {"input_tokens": 1000, "cache_read_input_tokens": 10000, "output_tokens": 2000}
    assert cost(price, usage) == pytest.approx((3000 + 3000 + 30000) / 1e6)
    assert cost(Price(input=3.0, output=15.0), usage) == pytest.approx((33000 + 30000) / 1e6)
    assert cost(None, usage) == 0.0


def test_budget_windows_with_an_injected_clock() -> None:
    """Allowed -> warning -> rejected (429, x-should-retry false, retry-after at the day's
    reset, the message names the budget) -> allowed again the next UTC day; the team's monthly
    cap is counted separately and binds across days."""
    clock = [float(_epoch(2026, 5, 14, 22, 0))]
    budgets = Budgets(LocalStore(), clock=lambda: clock[0])
    who = Principal("alice", team="platform", budget=Budget(usd_per_day=1.0),
                    team_budget=Budget(usd_per_month=2.5))
    config = BudgetsConfig()

    async def spend(usd: float) -> dict[str, str]:
        ticket = await budgets.admit(who, config)
        ticket.charge(usd, {"model": ["grok"]}, (100, 50))
        return ticket.headers

    async def scenario() -> None:
        first = await spend(0.5)
        assert first["anthropic-ratelimit-unified-status"] == "allowed"
        assert first["anthropic-ratelimit-unified-utilization"] == "0.0000"
        second = await spend(0.3)  # 0.5 of 1.0 spent before it
        assert second["anthropic-ratelimit-unified-status"] == "allowed"
        third = await spend(0.3)  # 0.8 spent: over warn_at
        assert third["anthropic-ratelimit-unified-status"] == "allowed_warning"
        assert third["anthropic-ratelimit-unified-reset"] == str(_epoch(2026, 5, 15))
        with pytest.raises(BudgetExceeded) as refused:  # 1.1 of 1.0
            await budgets.admit(who, config)
        err = refused.value
        assert err.status == 429 and err.retry_after == 2 * 3600
        headers = err.headers()
        assert headers["x-should-retry"] == "false"
        assert headers["retry-after"] == "7200"
        assert headers["anthropic-ratelimit-unified-status"] == "rejected"
        assert headers["anthropic-ratelimit-unified-reset"] == str(_epoch(2026, 5, 15))
        assert "API key 'alice'" in err.message and "daily budget of $1.00" in err.message
        assert "2026-05-15T00:00:00Z" in err.message
        clock[0] = _epoch(2026, 5, 15, 0, 0, 1)  # the next UTC day: the daily cap is fresh
        fourth = await spend(1.0)  # the team has 1.1 of 2.5 this month
        assert fourth["anthropic-ratelimit-unified-status"] == "allowed"
        assert fourth["anthropic-ratelimit-unified-utilization"] == "0.4400"  # the team's
        with pytest.raises(BudgetExceeded) as team:  # alice 1.0/1.0 today, team 2.1/2.5
            await budgets.admit(who, config)
        assert team.value.retry_after == 86400 - 1
        clock[0] = _epoch(2026, 5, 16, 1)
        await spend(0.5)  # team: 2.6 of 2.5 for the month now
        with pytest.raises(BudgetExceeded) as monthly:
            await budgets.admit(who, config)
        assert "team 'platform'" in monthly.value.message
        assert "monthly budget of $2.50" in monthly.value.message
        assert monthly.value.headers()["anthropic-ratelimit-unified-reset"] == str(
            _epoch(2026, 6, 1))
        report = await budgets.store.report("model", "2026-05-14", "2026-05-16")
        assert report["grok"] == pytest.approx([2.6, 5, 500, 250])

    asyncio.run(scenario())


def test_no_budget_no_headers() -> None:
    budgets = Budgets(LocalStore())
    ticket = asyncio.run(budgets.admit(Principal("bob"), BudgetsConfig()))
    assert ticket.headers == {}
    assert unified_headers([], 0.75) == {}


# --------------------------------------------------------------------------- over HTTP


def _write(tmp_path: Path, fake: FakeOCI, oci_key: TestKey, budgets: Any = None,
           **overrides: Any) -> Path:
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [
        {"id": "carol", "sha256": hashlib.sha256(CAROL.encode()).hexdigest(), "team": "platform",
         "owner": "carol@example.com", "budget": {"usd_per_day": 0.5}},
        {"id": "dave", "key": DAVE, "team": "platform"},
        {"id": "root", "key": ADMIN, "admin": True},
    ]}))
    models = {**TEST_MODELS, "grok": {**TEST_MODELS["grok"], "price": PRICE}}
    return write_config(tmp_path, fake.url, oci_key.config_path, keys_file=keys, models=models,
                        teams={"platform": {"budget": {"usd_per_month": 100}}},
                        **({"budgets": budgets} if budgets else {}), **overrides)


@pytest.fixture()
def priced(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> Iterator[GatewayServer]:
    fake.set_default(Scenario(text="hello there", usage=USAGE))
    try:
        with GatewayServer(_write(tmp_path, fake, oci_key)) as server:
            yield server
    finally:
        fake.set_default(None)


def _client(server: GatewayServer, key: str, retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=retries)


def test_budget_over_http_with_the_sdk(priced: GatewayServer, fake: FakeOCI) -> None:
    carol = _client(priced, CAROL, retries=3)
    rejected = metric(priced.metrics_url, "gateway_budget_rejected_total", scope="key",
                      window="day")  # the registry is the process's: count from here
    first = carol.messages.with_raw_response.create(**BODY)
    assert first.headers["anthropic-ratelimit-unified-status"] == "allowed"
    assert first.headers["anthropic-ratelimit-unified-utilization"] == "0.0000"
    assert int(first.headers["anthropic-ratelimit-unified-reset"]) % 86400 == 0
    assert first.parse().usage.input_tokens == 100 and first.parse().usage.output_tokens == 50
    assert metric(priced.metrics_url, "gateway_spend_usd_total", model="grok", key_id="carol",
                  team="platform") == pytest.approx(PER_REQUEST)
    second = carol.messages.with_raw_response.create(**BODY)  # 0.2 of 0.5 before it
    assert second.headers["anthropic-ratelimit-unified-status"] == "allowed"
    with carol.messages.with_streaming_response.create(**BODY, stream=True) as third:
        # 0.4 of 0.5 before it: a stream carries the headers too
        assert third.headers["anthropic-ratelimit-unified-status"] == "allowed_warning"
        assert third.headers["anthropic-ratelimit-unified-utilization"] == "0.8000"
        events = list(third.iter_lines())
    assert any("message_stop" in line for line in events)
    sent = len(fake.requests)
    with pytest.raises(anthropic.RateLimitError) as refused:  # 0.6 of 0.5: the SDK must not retry
        carol.messages.create(**BODY)
    assert len(fake.requests) == sent  # no OCI call, and no SDK retry reached the gateway
    response = refused.value.response
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["anthropic-ratelimit-unified-status"] == "rejected"
    reset = int(response.headers["anthropic-ratelimit-unified-reset"])
    assert 0 < int(response.headers["retry-after"]) <= 86400
    body = response.json()
    assert body["error"]["type"] == "rate_limit_error"
    assert "API key 'carol'" in body["error"]["message"]
    assert "daily budget of $0.50" in body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]
    assert metric(priced.metrics_url, "gateway_budget_rejected_total", scope="key",
                  window="day") == rejected + 1
    page = httpx.get(priced.metrics_url).text  # (metric() cannot take a label called "name")
    assert 'gateway_budget_usd{name="platform",scope="team",window="month"} 100.0' in page
    assert 'gateway_spend_window_usd{name="carol",scope="key",window="day"} 0.6' in page
    # the caller's own usage: key and team windows
    usage = httpx.get(priced.url + "/v1/usage", headers={"x-api-key": CAROL}).json()
    windows = {(w["scope"], w["window"]): w for w in usage["windows"]}
    day = windows[("key", "day")]
    assert day["spent_usd"] == pytest.approx(0.6) and day["budget_usd"] == 0.5
    assert day["remaining_usd"] == 0 and day["status"] == "rejected" and day["reset"] == reset
    assert windows[("key", "month")]["budget_usd"] is None
    team = windows[("team", "month")]
    assert team["spent_usd"] == pytest.approx(0.6) and team["remaining_usd"] == pytest.approx(99.4)
    assert team["status"] == "allowed"
    # dave is in the same team and has no budget of his own: the team's still counts for him
    dave = _client(priced, DAVE).messages.with_raw_response.create(**BODY)
    assert dave.headers["anthropic-ratelimit-unified-status"] == "allowed"
    assert dave.headers["anthropic-ratelimit-unified-utilization"] == "0.0060"


def test_who_may_read_whose_usage(priced: GatewayServer) -> None:
    def get(credential: str, **query: str) -> httpx.Response:
        return httpx.get(priced.url + "/v1/usage", params=query,
                         headers={"x-api-key": credential})

    _client(priced, CAROL).messages.create(**BODY)
    assert get(DAVE, key="carol").status_code == 403
    assert get(DAVE, key="carol").json()["error"]["type"] == "permission_error"
    assert get(DAVE, team="platform").status_code == 200  # his own team
    assert get(CAROL, key="carol").status_code == 200
    assert get(ADMIN, key="nobody").status_code == 404
    assert get(ADMIN, team="nope").status_code == 404
    assert get(ADMIN, key="carol", team="platform").status_code == 400
    seen = get(ADMIN, key="carol").json()
    assert seen["scope"] == "key" and seen["name"] == "carol"
    assert {(w["scope"], w["window"]) for w in seen["windows"]} == {
        (s, w) for s in ("key", "team") for w in ("day", "week", "month")}
    user = get(ADMIN, user="someone@example.com").json()
    assert [w["spent_usd"] for w in user["windows"]] == [0, 0, 0]
    assert get("wrong-key-0123456789").status_code == 401


def test_list_prices_apply_unless_the_entry_opts_out(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    """An on-demand model without ``price`` costs its shipped list price (xai.grok-4: 3/15 USD
    per 1M); ``price: null``, an unknown OCI id and a dedicated endpoint cost nothing."""
    models = {
        "grok-listed": TEST_MODELS["grok"],  # xai.grok-4: listed (a fresh label: the registry
        # is the test process's)
        "grok-free": {**TEST_MODELS["grok"], "price": None},
        "grok-fast": TEST_MODELS["grok-fast"],  # xai.grok-4-fast-non-reasoning: not listed
        "dedicated": {"endpoint_id": "ocid1.generativeaiendpoint.oc1..x",
                      "base_model": "xai.grok-4"},
    }
    path = write_config(tmp_path, fake.url, oci_key.config_path, models=models)
    fake.set_default(Scenario(text="hello there", usage=USAGE))
    try:
        with GatewayServer(path) as server:
            for name in ("grok-listed", "grok-free", "grok-fast"):
                r = server.post("/v1/messages", {**BODY, "model": name})
                assert r.status_code == 200, r.text
                assert "anthropic-ratelimit-unified-status" not in r.headers  # no budget applies
            listed = (100 * 3.0 + 50 * 15.0) / 1_000_000
            assert metric(server.metrics_url, "gateway_spend_usd_total",
                          model="grok-listed") == pytest.approx(listed)
            for name in ("grok-free", "grok-fast"):
                assert metric(server.metrics_url, "gateway_spend_usd_total", model=name) == 0
            checked = subprocess.run([sys.executable, "-m", "app", "check", "--config", str(path)],
                                     capture_output=True, text=True, timeout=60)
            assert "price: in 3.0 / out 15.0 USD per 1M (list)" in checked.stdout
            assert checked.stdout.count("price: none (costs 0 USD)") == 3
    finally:
        fake.set_default(None)
