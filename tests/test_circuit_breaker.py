"""Failover that remembers, over real HTTP with two emulators: a model whose primary is the
session emulator and whose failover entry is a second ``FakeOCI`` on its own port. After the
primary fails ``failures`` times (503s, or stalls past a short first-byte timeout) requests go
straight to the second until the cooldown ends; then one probe reaches the primary, a failed
probe re-opens the circuit, and a healthy primary takes the traffic back. The circuit metrics
are read from the gateway's metrics endpoint; weighted spreading is checked on a fixed seed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emulator import FakeOCI, Scenario, TestKey
from tests.harness import GatewayServer, metric, write_config

MODEL = "cb-grok"  # a name of its own: its gauge series are this file's alone
BODY = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}
PRIMARY = {"oci_model": "xai.grok-4", "target": "us-chicago-1"}  # write_config's oci.region
STATE = "gateway_upstream_circuit_state"
MOVES = "gateway_upstream_circuit_transitions_total"


def _metric(gw: GatewayServer, name: str, **labels: str) -> float:
    return metric(gw.metrics_url, name, **labels)


@contextmanager
def _two_regions(fake: FakeOCI, oci_key: TestKey, tmp_path: Path, *, cooldown: float,
                 first_byte: float = 5, **model: object) -> Iterator[tuple[GatewayServer, FakeOCI]]:
    with FakeOCI(public_keys={oci_key.key_id: oci_key.public_pem}) as second:
        models = {MODEL: {"model_id": "xai.grok-4", "capabilities": ["tools"],
                          "failover": [{"endpoint": second.url, **model.pop("second", {})}],
                          **model}}
        config = write_config(
            tmp_path, fake.url, oci_key.config_path, models=models, aliases={},
            oci={"circuit_breaker": {"failures": 3, "cooldown": cooldown},
                 "timeouts": {"connect": 2, "first_byte": first_byte, "idle": 5}})
        with GatewayServer(config) as gw:
            yield gw, second


def _ok(gw: GatewayServer) -> None:
    r = gw.post("/v1/messages", BODY, key=None)
    assert r.status_code == 200, r.text


def _until_primary_is_probed(gw: GatewayServer, fake: FakeOCI, seen: int) -> None:
    """Send requests (bounded by a deadline) until one reaches the primary: the probe."""
    deadline = time.monotonic() + 10
    while len(fake.requests) == seen:
        assert time.monotonic() < deadline, "the primary was never probed"
        _ok(gw)
        time.sleep(0.05)


def test_open_circuit_skips_the_primary_until_its_cooldown_then_one_probe_closes_it(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    cooldown = 1.5
    with _two_regions(fake, oci_key, tmp_path, cooldown=cooldown) as (gw, second):
        secondary = {"oci_model": "xai.grok-4", "target": second.url}
        opened = _metric(gw, MOVES, **PRIMARY, to="open")
        half = _metric(gw, MOVES, **PRIMARY, to="half_open")
        closed = _metric(gw, MOVES, **PRIMARY, to="closed")
        fake.push(*[Scenario(error={"status": 503})] * 4)  # 3 to open, 1 for the first probe

        for i in range(1, 4):  # each: 503 from the primary, then served by the second
            _ok(gw)
            assert (len(fake.requests), len(second.requests)) == (i, i)
        t_open = time.monotonic()  # the circuit opened before this
        assert _metric(gw, STATE, model=MODEL, **PRIMARY) == 2
        assert _metric(gw, STATE, model=MODEL, **secondary) == 0
        assert _metric(gw, MOVES, **PRIMARY, to="open") == opened + 1

        # open: straight to the second; the primary's count stops growing
        skipped = 0
        while skipped < 5 and time.monotonic() - t_open < cooldown * 0.8:
            _ok(gw)
            skipped += 1
            assert len(fake.requests) == 3 and len(second.requests) == 3 + skipped
        assert skipped >= 1

        # the cooldown ends: one probe reaches the primary, fails (the 4th 503), re-opens
        _until_primary_is_probed(gw, fake, 3)
        assert len(fake.requests) == 4
        assert _metric(gw, MOVES, **PRIMARY, to="half_open") == half + 1
        assert _metric(gw, MOVES, **PRIMARY, to="open") == opened + 2
        assert _metric(gw, STATE, model=MODEL, **PRIMARY) == 2
        t_reopen = time.monotonic()
        via_second = len(second.requests)
        _ok(gw)
        if time.monotonic() - t_reopen < cooldown * 0.8:
            assert len(fake.requests) == 4 and len(second.requests) == via_second + 1

        # the next probe succeeds: the circuit closes and the primary takes the traffic back
        via_second = len(second.requests)
        _until_primary_is_probed(gw, fake, 4)
        assert len(fake.requests) == 5
        assert _metric(gw, MOVES, **PRIMARY, to="closed") == closed + 1
        assert _metric(gw, STATE, model=MODEL, **PRIMARY) == 0
        via_second = len(second.requests)
        for i in range(1, 6):
            _ok(gw)
            assert len(fake.requests) == 5 + i
        assert len(second.requests) == via_second


def test_a_hung_primary_costs_the_first_byte_timeout_only_until_its_circuit_opens(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    first_byte = 0.5
    with _two_regions(fake, oci_key, tmp_path, cooldown=30, first_byte=first_byte) as (
            gw, second):
        fake.push(*[Scenario(text="late", delay_before=5.0)] * 3)
        slow = []
        for _ in range(3):
            t0 = time.monotonic()
            _ok(gw)
            slow.append(time.monotonic() - t0)
        assert all(s >= first_byte for s in slow), slow  # timed out on the primary, then failover
        assert _metric(gw, STATE, model=MODEL, **PRIMARY) == 2
        fast = []
        for _ in range(5):
            t0 = time.monotonic()
            _ok(gw)
            fast.append(time.monotonic() - t0)
        assert max(fast) < first_byte, fast  # no more waiting on the hung region
        assert len(fake.requests) == 3 and len(second.requests) == 8


def test_weighted_spreading_sends_traffic_to_both_targets(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    with _two_regions(fake, oci_key, tmp_path, cooldown=30, spread="weighted", weight=3,
                      second={"weight": 1}) as (gw, second):
        gw.app.state.gateway.circuits.breakers.rng.seed(20240613)  # the draw is deterministic
        failovers = _metric(gw, "gateway_upstream_failovers_total", model=MODEL)
        for _ in range(40):
            _ok(gw)
        primary, other = len(fake.requests), len(second.requests)
        assert primary + other == 40  # each request served by its first target, no failover
        assert other >= 3 and 20 <= primary <= 37, (primary, other)
        assert _metric(gw, STATE, model=MODEL, **PRIMARY) == 0
        # one process-wide registry: earlier tests' series are there too, so compare
        assert _metric(gw, "gateway_upstream_failovers_total", model=MODEL) == failovers
