"""The process harness fails loudly: a child that dies while starting is reported with its exit
code and output, within the bound, and stopping is idempotent.

The happy paths (gateway under ``python -m app`` and gunicorn, emulator, sink) are what the
observability, resilience, slow-client, emulator CLI tests and the benchmark run on.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from devtools.procs import (
    EmulatorProcess,
    GatewayProcess,
    free_port,
    free_ports,
    http_request,
    wait_until,
)
from emulator import FakeOCI, TestKey
from tests.harness import write_config


def test_free_port_is_bindable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_free_ports_are_distinct_and_bindable() -> None:
    # one by one, the kernel may hand back the port it just released: a CI run once gave a
    # gateway the same API and metrics port
    for _ in range(50):
        ports = free_ports(3)
        assert len(set(ports)) == 3
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", ports[0]))
        b.bind(("127.0.0.1", ports[1]))


def test_a_gateway_whose_port_was_taken_starts_on_fresh_ones(
    fake: FakeOCI, oci_key: TestKey, tmp_path: Path
) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    with socket.socket() as squatter:  # another process took the port after it was picked
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        gw = GatewayProcess(config, tmp_path)
        gw.port, gw.url = taken, f"http://127.0.0.1:{taken}"
        with gw:
            assert gw.port != taken
            assert http_request("GET", gw.url + "/readyz", timeout=5)[0] == 200
            assert http_request("GET", gw.metrics_url, timeout=5)[0] == 200
            first = gw.out_path.with_suffix(".port-taken-0.log").read_text()
            assert "address already in use" in first
            assert str(taken) in first


def test_a_child_that_exits_is_reported_with_its_output(tmp_path: Path) -> None:
    emu = EmulatorProcess(tmp_path, args=["--key-id"])  # argparse: the flag needs a value
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"emulator exited \(2\)") as err:
        emu.start(timeout=20)
    assert time.monotonic() - started < 20  # noticed as soon as it exited, not at the bound
    assert "--key-id: expected one argument" in str(err.value)
    assert not emu.running
    assert emu.stop() == 2  # stopping again is harmless


def test_a_gateway_that_cannot_start_is_reported(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path / "missing.yaml", tmp_path)
    with pytest.raises(RuntimeError, match=r"gateway-\d+ exited") as err:
        gw.start(timeout=30)
    assert "missing.yaml" in str(err.value)  # its own error message is in the report
    assert gw.out_path.exists()


def test_wait_until_names_what_was_not_ready() -> None:
    with pytest.raises(RuntimeError, match=r"the thing not ready within 0\.2 s"):
        wait_until(lambda: False, 0.2, "the thing", interval=0.05)


def test_never_started_process_stops_cleanly(tmp_path: Path) -> None:
    assert EmulatorProcess(tmp_path).stop() is None
