"""The benchmark's scenarios run against a peer: the same bodies, counts and emulator answers as
the gateway's sections in ``bench.run``, through the Bench's own load helpers.

Contract: ``peer_<section>(bench, peer)`` returns a dict whose keys mirror the gateway's entry of
that section (``bench.run`` stores it under ``results["peers"][peer.peer][section]``). A figure
that could not be measured is None, with ``errors``/``first_error`` saying why; a peer that
cannot hold every stream of the ``streams`` section reports how many it completed and held.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import orjson
from orjson import dumps as orjson_dumps

from bench.load import LoadRun, Target, merge
from bench.peers import PeerProcess
from devtools.procfs import cpu_seconds
from devtools.procs import http_request

if TYPE_CHECKING:
    from bench.run import Bench


def _watch(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    assert bench.emulator is not None
    emu = bench.emulator.pid
    return {"peer": peer.worker_cpu, "emulator": lambda: cpu_seconds(emu)}


def peer_ttft(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    """Concurrency 1, peer and emulator requests alternating (the gateway's own scenario)."""
    return bench.ttft_pair(peer.target(bench.anthropic_body()))


def peer_throughput(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    """Concurrency 50, 20 chunks, the peer pinned like the gateway's one worker."""
    p = bench.p
    bench.scenario(p["tp_chunks"], 0.0)
    target = peer.target(bench.anthropic_body())
    bench.windowed(target, p["tp_concurrency"], {}, bench.side_cpus, warmup=0.5, duration=0.5)
    r = bench.windowed(target, p["tp_concurrency"], _watch(bench, peer), bench.side_cpus)
    return {"1w": r}


def _cpu_runs(bench: Bench, peer: PeerProcess, delay: float) -> dict[str, Any]:
    """Two chunk counts -> fixed + per-event CPU (as ``Bench._cpu_runs``)."""
    p = bench.p
    ka, kb = p["cpu_chunks"]
    n, conc = p["cpu_requests"], p["cpu_concurrency"]
    target, watch = peer.target(bench.anthropic_body()), _watch(bench, peer)
    runs = {}
    for k in (ka, kb):
        bench.scenario(k, delay)
        bench.counted(target, conc, max(50, n // 10), watch, bench.side_cpus)  # warm-up
        runs[k] = bench.counted(target, conc, n, watch, bench.side_cpus)
    if not all(r["completed"] for r in runs.values()):
        first = next((r["first_error"] for r in runs.values() if r["first_error"]), None)
        return {"fixed_us": None, "per_event_us": None, "first_error": first}
    per = {k: r["cpu"]["peer"] / r["completed"] for k, r in runs.items()}
    per_event = (per[kb] - per[ka]) / (kb - ka)
    return {
        "chunks": [ka, kb],
        "delay_between_s": delay,
        "cpu_us_per_request": {str(k): v * 1e6 for k, v in per.items()},
        "fixed_us": (per[ka] - ka * per_event) * 1e6,
        "per_event_us": per_event * 1e6,
        "events_per_request": {str(k): r["counts"] for k, r in runs.items()},
        "errors": {str(k): r["errors"] for k, r in runs.items()},
        "first_error": next((r["first_error"] for r in runs.values() if r["first_error"]), None),
        "foreign_cores": max(r["foreign_cores"] for r in runs.values()),
    }


def peer_cpu(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    return {
        "paced": _cpu_runs(bench, peer, bench.p["cpu_delay"]),
        "burst": _cpu_runs(bench, peer, 0.0),
    }


def peer_streams(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    """N streams opened over the ramp, chunks 1 s apart: RSS of the peer's process tree, gaps
    between deltas minus the delay, and how many streams it completed and held at once."""
    from bench.run import _peak_overlap, _sleep_until, pct

    assert bench.emulator is not None
    p = bench.p
    n, chunks, delay = p["streams"], p["stream_chunks"], p["stream_delay"]
    emu = bench.emulator
    bench.scenario(chunks, delay)
    idle = peer.rss()
    cpu0 = peer.worker_cpu()
    start_at = time.monotonic() + 1.0
    # bounded: the gateway's end of run plus 30 s for a slower peer; then the load generator
    # abandons the streams still open and reports the ones that completed
    deadline = start_at + p["stream_ramp"] + chunks * delay + 35
    run = LoadRun(
        bench.specs(
            [peer.target(bench.anthropic_body())],
            n,
            bench.side_cpus,
            record="gaps",
            start_at=start_at,
            ramp=p["stream_ramp"],
            stop_at=deadline,
        )
    )
    m0 = bench.mark()
    peak, peak_upstream = idle, 0
    try:
        _sleep_until(start_at)
        while time.monotonic() < deadline + 10:
            r = peer.rss()
            if sum(r) > sum(peak):
                peak = r
            with contextlib.suppress(Exception):
                _st, body = http_request("GET", emu.url + "/_fake/health", timeout=2)
                peak_upstream = max(peak_upstream, json.loads(body)["activeStreams"])
            if run.ready():
                break
            time.sleep(0.25)
        res = merge(run.results())
    finally:
        run.kill()
    marks = res["marks"]
    w0 = max((a for a, _ in marks), default=0.0)
    w1 = min((b for _, b in marks), default=0.0)
    excess = [(b - a - delay) * 1e3 for a, b in res["gaps"] if a >= w0 and b <= w1]
    excess_all = [(b - a - delay) * 1e3 for a, b in res["gaps"]]
    return {
        "streams": n,
        "completed": res["completed"][0],
        "errors": res["errors"],
        "first_error": res["first_error"],
        "short_streams": sum(1 for c in res["counts"] if c != chunks),
        "abandoned_at_deadline": n - res["completed"][0] - sum(res["errors"].values()),
        "peak_open_client": _peak_overlap(sorted(res["spans"])),
        "peak_open_upstream": peak_upstream,
        "rss_idle_mb": [x / 2**20 for x in idle],
        "rss_peak_mb": [x / 2**20 for x in peak],
        "rss_peak_total_mb": sum(peak) / 2**20,
        "rss_per_stream_kb": (sum(peak) - sum(idle)) / 1024 / n,
        "gap_excess_p50_ms": pct(excess, 50),
        "gap_excess_p99_ms": pct(excess, 99),
        "gap_excess_max_ms": max(excess) if excess else None,
        "gaps": len(excess),
        "all_gap_excess_p99_ms": pct(excess_all, 99),
        "cpu_s": peer.worker_cpu() - cpu0,
        "foreign_cores": bench.foreign(m0, bench.mark(), res["client_cpu"]),
    }


# the model a refused peer is measured on (config/gateway.yaml; xai.grok-4.20-reasoning, no
# Gemini history rules)
PEER_FALLBACK_MODEL = "grok-4.20"


def _without_tools(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without its tool definitions (the history keeps its tool calls and results), on
    :data:`PEER_FALLBACK_MODEL`: for a peer whose OCI request for the real turn is refused."""
    return {**{k: v for k, v in body.items() if k != "tools"}, "model": PEER_FALLBACK_MODEL}


def _no_tools(body: bytes) -> bytes:
    return orjson_dumps(_without_tools(orjson.loads(body)))


def peer_long(bench: Bench, peer: PeerProcess) -> dict[str, Any]:
    """The long-conversation turns of bench/long.py through the peer: CPU per request of its
    whole process tree against the same floor, and the added time to first token against the
    emulator answering the gateway's own ChatDetails (the floor is the emulator's, whoever
    calls it). Memory per in-flight request is the gateway's alone (it restarts the process)."""
    from bench import long

    assert bench.emulator is not None and bench.gateway is not None
    plan = long.QUICK if bench.args.quick else long.FULL
    watch = _watch(bench, peer)
    out: dict[str, Any] = {"model": long.MODEL, "sizes": {}}
    for label, size in long.SIZES:
        cpu_n, ttft_n, _mem = plan[label]
        turns, warm = long.sessions(size, cpu_n)  # the gateway's scenario: the same sessions
        raw = turns[0][0]
        mid = turns[0][len(turns[0]) // 2]
        bench.scenario(long.CHUNKS, 0.0)
        gw = bench.gw_target(bench.gateway, raw, "gateway-long")
        direct = Target(
            "emulator",
            bench.emulator.url + "/20231130/actions/chat",
            long._capture(bench, gw),
            {"content-type": "application/json"},
            b'"TEXT","text"',
        )
        floor = long.floor_s(mid, max(5, min(200, (64 << 20) // len(mid))))
        if "refused" in out:
            turns = [[_no_tools(t) for t in user] for user in turns]
            raw = turns[0][0]
        target = peer.target(raw, f"{peer.peer}-long")
        first, rest = long.session_targets(target, turns, warm)
        bench.counted(first, 4, warm * long.USERS, watch, bench.side_cpus)  # warm-up
        r = bench.counted(rest, 4, cpu_n, watch, bench.side_cpus)
        if not r["completed"] and "refused" not in out:
            # the peer's request was refused (a finding, kept in the results and the notes):
            # measure its CPU on the same bodies, without the tool definitions, on the fallback
            # model from here on
            out["refused"] = {"model": long.MODEL, "first_error": r["first_error"]}
            turns = [[_no_tools(t) for t in user] for user in turns]
            raw = turns[0][0]
            target = peer.target(raw, f"{peer.peer}-long")
            first, rest = long.session_targets(target, turns, warm)
            bench.counted(first, 4, warm * long.USERS, watch, bench.side_cpus)
            r = bench.counted(rest, 4, cpu_n, watch, bench.side_cpus)
        cpu = r["cpu"]["peer"] / r["completed"] if r["completed"] else None
        out["sizes"][label] = {
            "body_bytes": len(raw),
            "requests": r["completed"],
            "errors": r["errors"],
            "first_error": r["first_error"],
            "cpu_ms_per_request": cpu * 1e3 if cpu is not None else None,
            "floor_ms": floor * 1e3,
            "ratio": cpu / floor if cpu is not None and floor else None,
            "ttft": long._ttft(bench, target, direct, ttft_n),
        }
    return out
