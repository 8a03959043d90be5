"""Slow and stalled clients cannot block the gateway, and stalled streams hold bounded memory.

A real gateway process (``python -m app``, one worker) in front of the in-process emulator:

* slowloris: many connections that send their request headers a byte at a time, or a partial
  body and then nothing — other requests still complete quickly;
* stalled stream readers: raw sockets with a small receive buffer that ask for a long streamed
  answer, read a little and stop reading — the gateway must apply backpressure (stop reading
  upstream) instead of buffering, so its RSS stays within a bound, other requests stay fast,
  and once the stalled clients go away every stream, upstream connection and descriptor is
  released.

Every loop is bounded in count and time; sockets are closed in ``finally`` blocks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import httpx
import pytest

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, make_test_key
from tests.harness import ALICE, write_config, write_keys

NORMAL_BUDGET_S = 2.0  # one normal request while others are stalled (typically ~10 ms)
STALLED_STREAMS = 10
# ~21 MB of text per stalled stream: far more than the kernel socket buffers on the way
# (loopback send buffers autotune up to 4 MB), so without backpressure the gateway itself would
# have to hold most of the 210 MB
STALL_WORDS = 3_500_000
STALL_CHUNKS = 2000
RSS_GROWTH_LIMIT_MB = 50


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, FakeOCI]]:
    workdir = tmp_path_factory.mktemp("slow-clients")
    key = make_test_key(workdir / "oci-key")
    with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
        config = write_config(workdir, fake.url, key.config_path, keys_file=write_keys(workdir),
                              oci={"timeouts": {"connect": 2, "first_byte": 5, "idle": 60}})
        gw = GatewayProcess(config, workdir, env={"GATEWAY_LOG_LEVEL": "WARNING"})
        gw.start()
        try:
            yield gw, fake
        finally:
            gw.stop()


def _host_port(gw: GatewayProcess) -> tuple[str, int]:
    return "127.0.0.1", gw.port


def _body(text: str, stream: bool = False, max_tokens: int = 50) -> bytes:
    return json.dumps({"model": "grok", "max_tokens": max_tokens, "stream": stream,
                       "messages": [{"role": "user", "content": text}]}).encode()


def _request_bytes(gw: GatewayProcess, body: bytes) -> bytes:
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n"
            f"x-api-key: {ALICE}\r\nanthropic-version: 2023-06-01\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _normal_requests_are_fast(gw: GatewayProcess, rounds: int = 5) -> list[float]:
    """JSON, streamed and count_tokens requests; each must finish within the budget."""
    took: list[float] = []
    headers = {"x-api-key": ALICE, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=gw.url, headers=headers, timeout=NORMAL_BUDGET_S * 3) as client:
        for i in range(rounds):
            t0 = time.monotonic()
            r = client.post("/v1/messages", content=_body(f"normal {i}"))
            assert r.status_code == 200, r.text
            t1 = time.monotonic()
            r = client.post("/v1/messages", content=_body(f"normal stream {i}", stream=True))
            assert r.status_code == 200
            assert check_stream(r.text)["stop_reason"] == "end_turn"
            t2 = time.monotonic()
            r = client.post("/v1/messages/count_tokens", json={
                "model": "grok", "messages": [{"role": "user", "content": "count me"}]})
            assert r.status_code == 200
            t3 = time.monotonic()
            assert client.get("/healthz").status_code == 200
            took += [t1 - t0, t2 - t1, t3 - t2, time.monotonic() - t3]
    worst = max(took)
    assert worst < NORMAL_BUDGET_S, f"a normal request took {worst:.2f}s next to slow clients"
    return took


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _tcp_wmem_max() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def _active_streams(gw: GatewayProcess) -> float:
    text = httpx.get(gw.metrics_url, timeout=5).text
    return sum(float(v) for v in re.findall(r"^gateway_active_streams\{[^}]*\} (\S+)$", text,
                                            flags=re.M))


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


class _Dribbler:
    """Sends one byte per ``interval`` on each socket until stopped (bounded by ``limit_s``)."""

    def __init__(self, socks: list[tuple[socket.socket, bytes]], interval: float,
                 limit_s: float) -> None:
        self.socks = socks
        self.interval = interval
        self.limit_s = limit_s
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        pos = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            for sock, data in self.socks:
                if pos < len(data):
                    try:
                        sock.send(data[pos:pos + 1])
                        self.sent += 1
                    except OSError:
                        pass
            pos += 1
            self.stop.wait(self.interval)

    def __enter__(self) -> _Dribbler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_slowloris_headers_do_not_block_others(env: tuple[GatewayProcess, FakeOCI]) -> None:
    gw, _fake = env
    fds_before = _fds(gw.proc.pid)
    with ExitStack() as stack:
        socks = []
        for i in range(50):
            sock = stack.enter_context(closing(socket.create_connection(_host_port(gw),
                                                                        timeout=5)))
            socks.append((sock, _request_bytes(gw, _body(f"slowloris {i}"))))
        # first bytes of the request line at once, then the headers one byte at a time
        for sock, data in socks:
            sock.send(data[:10])
        with _Dribbler([(s, d[10:]) for s, d in socks], interval=0.2, limit_s=20) as dribbler:
            time.sleep(0.5)
            _normal_requests_are_fast(gw)
            assert dribbler.sent > 0
        assert _fds(gw.proc.pid) >= fds_before + 40, "the slow connections were not open"
    # once they hang up, their descriptors go too
    assert _wait(lambda: _fds(gw.proc.pid) <= fds_before + 5, 10), (
        _fds(gw.proc.pid), fds_before)


def test_partial_body_then_stall_does_not_block_others(
        env: tuple[GatewayProcess, FakeOCI]) -> None:
    gw, _fake = env
    fds_before = _fds(gw.proc.pid)
    with ExitStack() as stack:
        for i in range(30):
            sock = stack.enter_context(closing(socket.create_connection(_host_port(gw),
                                                                        timeout=5)))
            data = _request_bytes(gw, _body(f"partial body {i} " + "x" * 2000))
            sock.sendall(data[: len(data) - 1500])  # headers and part of the body, then silence
        time.sleep(0.5)
        _normal_requests_are_fast(gw)
        # nothing has been answered to the stalled ones (they owe the gateway 1500 bytes)
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert _wait(lambda: _fds(gw.proc.pid) <= fds_before + 5, 10), (
        _fds(gw.proc.pid), fds_before)


def _stalled_stream(gw: GatewayProcess, marker: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.settimeout(10)
    sock.connect(_host_port(gw))
    sock.sendall(_request_bytes(gw, _body(f"{marker} tell me everything", stream=True,
                                          max_tokens=16000)))
    got = b""
    deadline = time.monotonic() + 10
    while b"content_block_delta" not in got and time.monotonic() < deadline:
        chunk = sock.recv(2048)
        if not chunk:
            break
        got += chunk
    assert b"200 OK" in got.split(b"\r\n", 1)[0], got[:200]
    assert b"content_block_delta" in got, got[:500]
    return sock  # and never read again


def test_stalled_stream_readers_get_backpressure_not_buffers(
        env: tuple[GatewayProcess, FakeOCI]) -> None:
    gw, fake = env
    pid = gw.proc.pid
    _normal_requests_are_fast(gw, rounds=3)  # warm-up: imports, pools, caches
    rss_before, fds_before = _rss_mb(pid), _fds(pid)
    text = "lorem " * STALL_WORDS
    fake.push(*[Scenario(text=text, chunks=STALL_CHUNKS, match="STALL-READER")
                for _ in range(STALLED_STREAMS)])
    socks: list[socket.socket] = []
    try:
        for _ in range(STALLED_STREAMS):
            socks.append(_stalled_stream(gw, "STALL-READER"))
        assert fake.pending == 0
        # let every pipe fill up: the emulator stops making progress once backpressured
        def progress() -> int:
            return sum(r.events_sent or 0 for r in fake.requests if r.stream)

        seen = progress()
        for _ in range(30):  # at most ~15 s
            time.sleep(0.5)
            now = progress()
            if now == seen:
                break
            seen = now
        full = sum(1 for r in fake.requests if r.stream and r.completed_at is not None
                   and "STALL" in json.dumps(r.body))
        if len(text) > 3 * _tcp_wmem_max():  # more than the kernel can hold on the way
            assert full == 0, f"{full} stalled streams were sent to the end: no backpressure"
        rss_stalled = _rss_mb(pid)
        took = _normal_requests_are_fast(gw)
        assert _active_streams(gw) >= STALLED_STREAMS
        growth = rss_stalled - rss_before
        print(f"\nstalled streams: {STALLED_STREAMS}; RSS {rss_before:.1f} -> "
              f"{rss_stalled:.1f} MB; fds {fds_before} -> {_fds(pid)}; "
              f"worst normal request {max(took) * 1000:.0f} ms; "
              f"emulator events sent {seen} of {STALLED_STREAMS * STALL_CHUNKS}")
        assert growth < RSS_GROWTH_LIMIT_MB, (
            f"RSS grew {growth:.1f} MB with {STALLED_STREAMS} stalled streams")
    finally:
        for sock in socks:
            sock.close()
    # the stalled clients are gone: streams, upstream connections and descriptors are released
    assert _wait(lambda: _active_streams(gw) == 0, 15), _active_streams(gw)
    assert _wait(lambda: fake.connections_closed >= STALLED_STREAMS, 15), (
        fake.connections_closed)
    assert _wait(lambda: _fds(pid) <= fds_before + 5, 15), (_fds(pid), fds_before)
    _normal_requests_are_fast(gw, rounds=2)


def test_memory_stays_bounded_over_rounds_of_stalled_streams(
        env: tuple[GatewayProcess, FakeOCI]) -> None:
    """Stalled streams that are abandoned round after round leave nothing behind."""
    gw, fake = env
    pid = gw.proc.pid
    _normal_requests_are_fast(gw, rounds=2)
    rss_start, fds_start = _rss_mb(pid), _fds(pid)
    text = "ipsum " * 20_000
    for round_ in range(4):
        fake.push(*[Scenario(text=text, chunks=1000, match=f"ROUND-{round_}")
                    for _ in range(10)])
        socks = [_stalled_stream(gw, f"ROUND-{round_}") for _ in range(10)]
        time.sleep(0.3)
        for sock in socks:
            sock.close()
        assert _wait(lambda: _active_streams(gw) == 0, 15)
    assert _wait(lambda: _fds(pid) <= fds_start + 5, 10), (_fds(pid), fds_start)
    growth = _rss_mb(pid) - rss_start
    assert growth < 20, f"RSS grew {growth:.1f} MB over 40 abandoned streams"
