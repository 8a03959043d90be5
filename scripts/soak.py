"""Bounded soak test of the gateway on loopback: mixed traffic with injected faults.

Usage (from the repository root)::

    python scripts/soak.py                      # ~150 s, 32 concurrent clients, 2 workers
    python scripts/soak.py --duration 60 --concurrency 48 --workers 1

What it does:

1. starts the OCI emulator (``python -m emulator``, verifying request signatures with a
   throw-away API key) and the gateway as deployed (``gunicorn -c python:app.gunicorn_conf``,
   uvicorn workers) with a config in a temporary directory; both bind 127.0.0.1 only
   (``devtools.procs``, the process harness the tests and the benchmark use too);
2. warms up for ``--warmup`` seconds at full concurrency, then records every worker's open file
   descriptors (``/proc/<pid>/fd``) and RSS;
3. drives ``--duration`` seconds of mixed traffic: streamed and JSON messages, count_tokens,
   tool calls, slow streams, and faults injected with inline ``[[scenario:{json}]]`` markers
   (upstream 429/500/503, a connection dropped mid-stream or before a JSON body) plus clients
   that hang up mid-stream;
4. lets the gateway settle, records fds/RSS again, checks that no stream is left open (gateway
   ``gateway_active_streams``, emulator ``activeStreams``) and that no worker restarted or died.

It prints requests and outcomes by kind, worker restarts, and fds/RSS per worker at start and
end, and exits non-zero when: a worker crashed or restarted; an outcome was not the expected one
for its kind (e.g. a 5xx for a healthy request, a malformed stream); a stream stayed open; or a
worker's fds grew by more than ``--max-fd-growth`` (default 25: the upstream keep-alive pool
can settle a little differently) or its RSS by more than ``--max-rss-growth-mb`` (default 40 MB:
allocator noise plus bounded caches). Every loop is bounded in time; only processes this script
started are stopped, by their own pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Run as `python scripts/soak.py`: the repository is not on sys.path by itself then.
from devtools.config import write_config  # noqa: E402
from devtools.procfs import children, fd_count, rss_bytes  # noqa: E402
from devtools.procs import EmulatorProcess, GatewayProcess  # noqa: E402
from devtools.sse_check import check_stream  # noqa: E402
from emulator import inline_marker, make_test_key  # noqa: E402

KEY = "soak-key-0123456789abcdef"
MODELS = ["grok", "llama", "gpt-oss", "gemini", "cohere"]
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]

# kind -> (weight, expected outcomes). An outcome is "ok", "error:<type>" (HTTP error envelope),
# "stream_error:<type>" (an `event: error` in a 200 stream) or "disconnected" (we hung up).
KINDS: dict[str, tuple[int, set[str]]] = {
    "stream": (30, {"ok"}),
    "json": (18, {"ok"}),
    "count_tokens": (6, {"ok"}),
    "tool_stream": (8, {"ok"}),
    "tool_json": (5, {"ok"}),
    "slow_stream": (6, {"ok"}),
    "client_disconnect": (8, {"disconnected"}),
    "upstream_429": (4, {"error:rate_limit_error"}),
    "upstream_500": (3, {"error:api_error"}),
    "upstream_503": (3, {"error:overloaded_error"}),
    "drop_mid_stream": (5, {"stream_error:api_error", "stream_error:overloaded_error"}),
    "drop_json": (4, {"error:api_error", "error:overloaded_error"}),
}


@dataclass
class Stats:
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def record(self, kind: str, outcome: str, took: float) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome] += 1
        self.latencies.append(took)
        if outcome not in KINDS[kind][1] and len(self.unexpected) < 50:
            self.unexpected.append(f"{kind}: {outcome}")

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.outcomes.values())


# ---- processes ---------------------------------------------------------------------------


def start_gateway(workdir: Path, emulator_url: str, oci_config: Path, workers: int
                  ) -> GatewayProcess:
    """The gateway as deployed (gunicorn, ``workers`` uvicorn workers, multiprocess metrics),
    with the tests' model catalog, one client key, fewer retries and longer timeouts."""
    keys = workdir / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"id": "soak", "key": KEY}]}))
    config = write_config(workdir, emulator_url, oci_config, keys_file=keys, oci={
        "compartment_id": "ocid1.compartment.oc1..soak",
        "retries": {"max_attempts": 2, "backoff_base": 0.01, "backoff_max": 0.05},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10}})
    return GatewayProcess(config, workdir, workers=workers, name="gateway", env={
        "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_GRACEFUL_TIMEOUT": "5",
        "GATEWAY_RELOAD_INTERVAL": "0"}).start()


def snapshot(master: int) -> dict[int, tuple[int, float]]:
    """Open fds and RSS (MB) of every worker of ``master``."""
    return {pid: (fd_count(pid), rss_bytes(pid) / 2**20) for pid in children(master)}


# ---- traffic -----------------------------------------------------------------------------


def _body(kind: str, model: str, n: int) -> dict[str, Any]:
    text = f"soak request {n}: tell me something about the number {n}"
    scenario: dict[str, Any] | None = None
    stream = kind in ("stream", "tool_stream", "slow_stream", "client_disconnect",
                      "drop_mid_stream") or (kind.startswith("upstream_") and n % 2 == 0)
    body: dict[str, Any] = {"model": model, "max_tokens": 300, "stream": stream}
    if kind in ("tool_stream", "tool_json"):
        body["tools"] = TOOLS
        scenario = {"tool_calls": [{"name": "get_weather",
                                    "arguments": json.dumps({"city": f"City {n}"})}]}
    elif kind == "slow_stream":
        scenario = {"text": "slowly " * 20, "chunks": 20, "delay_between": 0.05}
    elif kind == "client_disconnect":
        scenario = {"text": "long answer " * 200, "chunks": 100, "delay_between": 0.01}
    elif kind.startswith("upstream_"):
        status = int(kind.split("_")[1])
        scenario = {"error": {"status": status}}
    elif kind == "drop_mid_stream":
        scenario = {"text": "this will break " * 10, "chunks": 10, "drop_after": 3}
    elif kind == "drop_json":
        scenario = {"drop_after": n % 2}
    if scenario is not None:
        text += " " + inline_marker(scenario)
    body["messages"] = [{"role": "user", "content": text}]
    return body


async def one(client: httpx.AsyncClient, kind: str, n: int) -> str:
    model = MODELS[n % len(MODELS)]
    if kind == "count_tokens":
        r = await client.post("/v1/messages/count_tokens", json={
            "model": model, "messages": [{"role": "user", "content": f"count {n}"}]})
        return "ok" if r.status_code == 200 and r.json()["input_tokens"] > 0 else \
            f"http:{r.status_code}"
    body = _body(kind, model, n)
    if not body["stream"]:
        r = await client.post("/v1/messages", json=body)
        if r.status_code == 200:
            msg = r.json()
            want = "tool_use" if kind == "tool_json" else "end_turn"
            return "ok" if msg.get("stop_reason") == want else f"bad_stop:{msg.get('stop_reason')}"
        try:
            return f"error:{r.json()['error']['type']}"
        except (ValueError, KeyError, TypeError):
            return f"http:{r.status_code}"
    async with client.stream("POST", "/v1/messages", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            try:
                return f"error:{r.json()['error']['type']}"
            except (ValueError, KeyError, TypeError):
                return f"http:{r.status_code}"
        if kind == "client_disconnect":
            async for chunk in r.aiter_bytes():
                if b"content_block_delta" in chunk:
                    return "disconnected"  # leaving the block closes the connection
            return "completed_before_disconnect"
        text = (await r.aread()).decode()
    try:
        result = check_stream(text, allow_error=True)
    except (AssertionError, ValueError, KeyError) as err:
        return f"malformed_stream:{str(err)[:80]}"
    if result["error"] is not None:
        return f"stream_error:{result['error']['type']}"
    want = "tool_use" if kind == "tool_stream" else "end_turn"
    return "ok" if result["stop_reason"] == want else f"bad_stop:{result['stop_reason']}"


async def drive(url: str, seconds: float, concurrency: int, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    names = list(KINDS)
    weights = [KINDS[k][0] for k in names]
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            kind = rng.choices(names, weights)[0]
            n = next(counter)
            t0 = time.monotonic()
            try:
                outcome = await asyncio.wait_for(one(client, kind, n), timeout=30)
            except TimeoutError:
                outcome = "client_timeout_30s"
            except httpx.HTTPError as err:
                outcome = f"transport:{type(err).__name__}"
            stats.record(kind, outcome, time.monotonic() - t0)

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=httpx.Timeout(30, connect=5)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def active_streams(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    return sum(float(v) for v in re.findall(r"^gateway_active_streams\{[^}]*\} (\S+)$", text,
                                            flags=re.M))


def restarts_in(log: str, workers: int) -> tuple[int, list[str]]:
    booted = len(re.findall(r"Booting worker", log))
    bad = [line for line in log.splitlines() if re.search(
        r"WORKER TIMEOUT|was sent SIG|exited with code|Worker \(pid:\d+\) exited|"
        r"Traceback|Exception in ASGI", line)]
    return max(0, booted - workers), bad[:10]


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of soak traffic")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-fd-growth", type=int, default=25)
    parser.add_argument("--max-rss-growth-mb", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600 or not 1 <= args.concurrency <= 500:
        parser.error("--duration must be 1..3600 s and --concurrency 1..500")

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gateway-soak-") as tmp:
        workdir = Path(tmp)
        key = make_test_key(workdir / "oci-key")
        emulator = EmulatorProcess(workdir, public_key=key.public_key_path).start()
        emu_url = emulator.url
        gateway: GatewayProcess | None = None
        try:
            gateway = start_gateway(workdir, emu_url, key.config_path, args.workers)
            gw_url = gateway.url
            master = gateway.master
            pids_start = children(master)
            print(f"gateway {gw_url} (gunicorn master {master}, workers {pids_start}), "
                  f"emulator {emu_url}; warm-up {args.warmup:.0f}s, soak {args.duration:.0f}s "
                  f"at concurrency {args.concurrency}", flush=True)

            warm = Stats()
            asyncio.run(drive(gw_url, args.warmup, args.concurrency, warm, args.seed))
            time.sleep(2)
            before = snapshot(master)

            stats = Stats()
            t0 = time.monotonic()
            asyncio.run(drive(gw_url, args.duration, args.concurrency, stats, args.seed + 1))
            elapsed = time.monotonic() - t0

            settled = False
            for _ in range(100):  # <= 10 s for the last streams to close
                if (active_streams(gateway.metrics_url) == 0
                        and emulator.health()["activeStreams"] == 0):
                    settled = True
                    break
                time.sleep(0.1)
            time.sleep(2)
            after = snapshot(master)
            emu_health = emulator.health()
            gw_streams = active_streams(gateway.metrics_url)
            log = gateway.output()
            restarts, bad_lines = restarts_in(log, args.workers)
            pids_end = children(master)
            crashed = not gateway.running

            # ---- report ----
            print(f"\nrequests: {stats.total} in {elapsed:.0f}s "
                  f"({stats.total / elapsed:.0f}/s), warm-up {warm.total}")
            lat = sorted(stats.latencies)
            if lat:
                print(f"latency: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
                      f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms, "
                      f"max {lat[-1] * 1000:.0f} ms")
            print("outcomes by kind:")
            for kind in KINDS:
                counts = stats.outcomes.get(kind, Counter())
                shown = ", ".join(f"{o} {n}" for o, n in counts.most_common())
                print(f"  {kind:18} {sum(counts.values()):6}  {shown}")
            errors = Counter(o for c in stats.outcomes.values() for o, n in c.items()
                             for _ in range(n) if o not in ("ok", "disconnected"))
            print("errors by kind (injected faults included): "
                  + (", ".join(f"{o} {n}" for o, n in errors.most_common()) or "none"))
            print(f"unexpected outcomes: {len(stats.unexpected)}"
                  + (f" e.g. {stats.unexpected[:5]}" if stats.unexpected else ""))
            print(f"worker restarts: {restarts}; workers at start {pids_start}, at end "
                  f"{pids_end}; master alive: {not crashed}")
            if bad_lines:
                print("gateway log lines of concern:\n  " + "\n  ".join(bad_lines))
            print(f"open streams after settle: gateway {gw_streams:.0f}, emulator "
                  f"{emu_health['activeStreams']} ({emu_health['connectionsClosed']} upstream "
                  f"streams closed early by the gateway)")
            print("per worker (after warm-up -> end):")
            for pid in sorted(set(before) | set(after)):
                fd0, rss0 = before.get(pid, (-1, -1.0))
                fd1, rss1 = after.get(pid, (-1, -1.0))
                print(f"  pid {pid}: fds {fd0} -> {fd1} ({fd1 - fd0:+d}), "
                      f"RSS {rss0:.1f} -> {rss1:.1f} MB ({rss1 - rss0:+.1f})")
                if pid not in before or pid not in after:
                    failures.append(f"worker {pid} was not there for the whole soak")
                    continue
                if fd1 - fd0 > args.max_fd_growth:
                    failures.append(f"worker {pid}: fds grew by {fd1 - fd0} "
                                    f"(> {args.max_fd_growth})")
                if rss1 - rss0 > args.max_rss_growth_mb:
                    failures.append(f"worker {pid}: RSS grew by {rss1 - rss0:.1f} MB "
                                    f"(> {args.max_rss_growth_mb})")
            if crashed or restarts or pids_end != pids_start:
                failures.append(f"gateway crashes/restarts: {restarts}, master alive "
                                f"{not crashed}, workers {pids_start} -> {pids_end}")
            if bad_lines:
                failures.append(f"{len(bad_lines)} worrying gateway log lines")
            if stats.unexpected:
                failures.append(f"{len(stats.unexpected)} unexpected outcomes")
            if not settled or gw_streams or emu_health["activeStreams"]:
                failures.append("streams were left open after the traffic stopped")
            if stats.total == 0:
                failures.append("no request was made")
        finally:
            if gateway is not None:
                gateway.stop()
            emulator.stop()
    print("\nSOAK " + ("FAILED:\n  " + "\n  ".join(failures) if failures else "PASSED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
