"""The metrics live on their own port (``GATEWAY_METRICS_PORT``), never on the API port.

Under ``python -m app`` the single process serves them; under gunicorn with two workers the
master alone binds the port and serves the sum of both workers' multiprocess files: every
request counted by either worker appears, exactly. ``/metrics`` on the API port is a 404.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from devtools.procs import GatewayProcess
from emulator import FakeOCI, TestKey
from tests.harness import write_config

BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def _access_log_pids(log: str) -> set[int]:
    """The processes that wrote an access-log line for /v1/messages (JSON lines with a pid)."""
    pids = set()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == "request" and \
                entry.get("route") == "/v1/messages":
            pids.add(int(entry["pid"]))
    return pids


def _requests_total(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(float(v) for v in re.findall(
        r'^gateway_requests_total\{[^}]*route="/v1/messages"[^}]*\} (\S+)$', text, flags=re.M))


@pytest.mark.parametrize("workers", [None, 2])
def test_metrics_on_their_own_port_and_not_on_the_api_port(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path, workers: int | None) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    with GatewayProcess(config, tmp_path, workers=workers) as gw:
        assert gw.metrics_port != gw.port
        api = httpx.get(gw.url + "/metrics")
        assert api.status_code == 404 and api.json()["error"]["type"] == "not_found_error"
        before = _requests_total(gw.metrics_url)
        sent = 0
        served_by: set[int] = set()
        deadline = time.monotonic() + 30
        # new connections each time, so the kernel spreads them over the workers; bounded
        while sent < 200 and time.monotonic() < deadline:
            with httpx.Client() as client:
                assert client.post(gw.url + "/v1/messages", json=BODY).status_code == 200
            sent += 1
            if workers is None:
                if sent == 5:
                    break
                continue
            served_by = _access_log_pids(gw.output())
            if sent >= 10 and len(served_by) == workers:
                break
        if workers is not None:
            assert len(served_by) == 2, "both workers should have served requests"
            assert served_by <= set(gw.worker_pids())  # the master serves no API request
        assert _requests_total(gw.metrics_url) == before + sent
        # the exposition is complete Prometheus text (not just our counters)
        text = httpx.get(gw.metrics_url).text
        assert "# TYPE gateway_requests_total counter" in text
