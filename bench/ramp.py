"""The ``ramp`` section: do streams that are opening stall the streams already open?

Contract: :func:`section_ramp` (called as ``Bench.section_ramp``) stores ``results["ramp"]``.
Per target (the gateway, then the emulator alone as the floor) ONE run: ``held`` streams
(default 2,000, ``chunks`` deltas 1.0 s apart) open over ``open_s`` seconds; once all of them
are open, a ``quiet`` window of ``window_s`` seconds with nothing else going on, then a
``ramp`` window of the same length in which separate client processes open ``rate`` new streams
per second (short ones: 5 deltas 0.2 s apart, chosen with the emulator's inline scenario marker,
so they open AND close during the window, as real traffic does). For the held streams only, it
reports p50/p99/max of (gap between two consecutive deltas - 1.0 s) for the gaps that END in
each window; the ramp's cost is the difference between the two windows (same streams, same run).
The ramp streams' own time to first delta is reported too (p50/p99).

Both clocks are CLOCK_MONOTONIC on Linux (``time.monotonic`` for the schedule,
``time.perf_counter`` for the gap stamps the load generator keeps), so windows and gap stamps
compare directly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from bench.load import LoadRun, Target, merge
from bench.run import pct  # run.py imports this module lazily: no cycle
from devtools.procfs import CLK_TCK, cpu_seconds, machine_cpu, run_queue_wait

if TYPE_CHECKING:
    from bench.run import Bench

FULL = {"held": 2000, "open_s": 8.0, "window_s": 6.0, "rate": 250.0, "delay": 1.0}
QUICK = {"held": 200, "open_s": 1.0, "window_s": 2.0, "rate": 50.0, "delay": 1.0}
#: the ramp streams' own answer: short, so they open and close inside the window
RAMP_SCENARIO = {"chunks": 5, "delay_between": 0.2, "text": "tok00 tok01 tok02 tok03 tok04 "}
PROMPT = "Say hello, briefly."


def _summary(excess_ms: list[float]) -> dict[str, Any]:
    return {
        "gaps": len(excess_ms),
        "p50_ms": pct(excess_ms, 50),
        "p99_ms": pct(excess_ms, 99),
        "max_ms": max(excess_ms) if excess_ms else None,
    }


def _window_cpu(
    groups: dict[str, Any], marks: tuple[float, float, float], bench: Bench
) -> dict[str, dict[str, float]]:
    """Per window (quiet, ramp) and group of processes: the cores they used (``/proc``) and
    ``<group>_wait``, the share of the window their main threads spent runnable but waiting for
    a CPU (schedstat: preempted by a neighbour rather than busy); plus the machine's busy cores.
    The bench process wakes only at the three marks."""
    samples = []
    for t in marks:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        cpu = {k: sum(cpu_seconds(p) for p in f()) for k, f in groups.items()}
        wait = {k: sum(run_queue_wait(p) for p in f()) for k, f in groups.items()}
        samples.append((cpu, wait, machine_cpu()[0], time.monotonic()))
    out: dict[str, dict[str, float]] = {}
    for win, (a, b) in (("quiet", (0, 1)), ("ramp", (1, 2))):
        (ca, wa, ma, ta), (cb, wb, mb, tb) = samples[a], samples[b]
        wall = max(1e-6, tb - ta)
        out[win] = {k: round((cb[k] - ca[k]) / wall, 3) for k in groups}
        out[win].update({f"{k}_wait": round((wb[k] - wa[k]) / wall, 3) for k in groups})
        out[win]["machine"] = round((mb - ma) / CLK_TCK / wall, 3)
    return out


def _ramp_target(base: Target) -> Target:
    """The same request with the short-answer scenario inlined in the user's text (works on
    the Anthropic body and on the captured ChatDetails alike: the prompt is a JSON string)."""
    from emulator import inline_marker

    marked = json.dumps(PROMPT + " " + inline_marker(RAMP_SCENARIO))[1:-1].encode()
    body = base.body.replace(PROMPT.encode(), marked, 1)
    assert body != base.body, "the prompt was not found in the request body"
    return Target(base.name + "-ramp", base.url, body, base.headers, base.marker)


def _one_target(bench: Bench, name: str, target: Target, q: dict[str, Any]) -> dict[str, Any]:
    delay = q["delay"]
    held, open_s, window_s = q["held"], q["open_s"], q["window_s"]
    # held streams last through opening + settle + both windows + margin
    chunks = int(open_s + 1.0 + 2 * window_s + 3.0)
    bench.scenario(chunks, delay)
    start_at = time.monotonic() + 1.0
    quiet0 = start_at + open_s + delay + 1.0  # every held stream has had its first delta
    ramp0 = quiet0 + window_s
    ramp1 = ramp0 + window_s
    n_ramp = int(q["rate"] * window_s)
    assert bench.emulator is not None
    # the emulator's collector is off for the run (emulator/server.py, /_fake/gc): a full
    # collection over 2,000 open streams stalled them all for up to 320 ms, in the floor too
    bench.emulator.gc(automatic=False)
    held_run = LoadRun(
        bench.specs([target], held, bench.side_cpus, record="gaps", start_at=start_at, ramp=open_s)
    )
    ramp_run: LoadRun | None = None
    try:
        ramp_run = LoadRun(
            bench.specs(
                [_ramp_target(target)],
                n_ramp,
                bench.side_cpus,
                record="gaps",
                start_at=ramp0,
                ramp=window_s,
            )
        )
        m0 = bench.mark()
        rr = ramp_run
        gw_pids = bench.gateway.worker_pids() if bench.gateway else []
        emu_pid = [bench.emulator.pid]
        # per group: the processes whose CPU (and main-thread run-queue wait) is reported
        groups = {
            "gateway": lambda: gw_pids,
            "emulator": lambda: emu_pid,
            "held_clients": held_run.pids,
            "ramp_clients": rr.pids,
            "bench": lambda: [os.getpid()],
        }
        cpu = _window_cpu(groups, (quiet0, ramp0, ramp1), bench)
        res = merge(held_run.results(timeout=start_at + chunks * delay + 120 - time.monotonic()))
        ramp_res = merge(ramp_run.results(timeout=120))
    finally:
        held_run.kill()
        if ramp_run is not None:
            ramp_run.kill()
        bench.emulator.gc(automatic=True)
    quiet = [(b - a - delay) * 1e3 for a, b in res["gaps"] if quiet0 <= b < ramp0]
    ramped = [(b - a - delay) * 1e3 for a, b in res["gaps"] if ramp0 <= b < ramp1]
    spans, marks = ramp_res["spans"], ramp_res["marks"]
    # paired per stream (a stream with no delta has a span but no mark: then skip the figure)
    ttft = (
        [f - o for (o, _c), (f, _l) in zip(spans, marks, strict=True)]
        if len(spans) == len(marks)
        else []
    )
    out: dict[str, Any] = {
        "held_completed": res["completed"][0],
        "held_errors": res["errors"],
        "held_short_streams": sum(1 for c in res["counts"] if c != chunks),
        "first_error": res["first_error"] or ramp_res["first_error"],
        "quiet": _summary(quiet),
        "ramp": _summary(ramped),
        "ramp_streams_completed": ramp_res["completed"][0],
        "ramp_streams_errors": ramp_res["errors"],
        "ramp_ttft_p50_ms": (pct(ttft, 50) or 0) * 1e3 if ttft else None,
        "ramp_ttft_p99_ms": (pct(ttft, 99) or 0) * 1e3 if ttft else None,
        "window_cores": cpu,
        "client_cpu_share": (res["client_cpu"] + ramp_res["client_cpu"]) / res["wall"],
        "foreign_cores": bench.foreign(
            m0, bench.mark(), res["client_cpu"] + ramp_res["client_cpu"]
        ),
    }
    if out["quiet"]["p99_ms"] is not None and out["ramp"]["p99_ms"] is not None:
        out["ramp_adds_p99_ms"] = out["ramp"]["p99_ms"] - out["quiet"]["p99_ms"]
    print(
        f"[bench] ramp {name}: quiet p99 {out['quiet']['p99_ms']} ms, "
        f"ramp p99 {out['ramp']['p99_ms']} ms, max {out['ramp']['max_ms']} ms; cores {cpu}",
        flush=True,
        file=sys.stderr,
    )
    return out


def section_ramp(bench: Bench) -> None:
    assert bench.gateway is not None
    q = QUICK if bench.args.quick else FULL
    out: dict[str, Any] = {**q, "ramp_scenario": RAMP_SCENARIO}
    out["gateway"] = _one_target(bench, "gateway", bench.gw_target(bench.gateway), q)
    out["emulator"] = _one_target(bench, "emulator", bench.direct_target(), q)
    bench.results["ramp"] = out


def render_rows(results: dict[str, Any], add: Any) -> None:
    """bench/report.py's rows for this section: ``add(section, figure, gw, floor, ratio=...)``."""
    r = results.get("ramp")
    if not r:
        return
    g, e = r["gateway"], r["emulator"]
    sec = f"{r['held']:,} open streams + {r['rate']:g} new/s for {r['window_s']:g}s"
    add(
        sec,
        "held streams completed (short)",
        f"{g['held_completed']} ({g['held_short_streams']})",
        f"{e['held_completed']} ({e['held_short_streams']})",
        ratio="",
    )
    for win, label in (("quiet", "no new streams"), ("ramp", "while new streams open")):
        for k in ("p50", "p99", "max"):
            add(
                sec,
                f"{label}: delay added {k} (ms)",
                g[win][f"{k}_ms"],
                e[win][f"{k}_ms"],
                ratio="",
            )
    add(
        sec, "ramp adds to p99 (ms)", g.get("ramp_adds_p99_ms"), e.get("ramp_adds_p99_ms"), ratio=""
    )
    add(
        sec,
        "new streams completed / TTFT p50 / p99 (ms)",
        f"{g['ramp_streams_completed']} / {g['ramp_ttft_p50_ms'] or 0:.1f} / "
        f"{g['ramp_ttft_p99_ms'] or 0:.1f}",
        f"{e['ramp_streams_completed']} / {e['ramp_ttft_p50_ms'] or 0:.1f} / "
        f"{e['ramp_ttft_p99_ms'] or 0:.1f}",
        ratio="",
    )
    add(
        sec,
        "  other processes' CPU (cores)",
        g.get("foreign_cores"),
        e.get("foreign_cores"),
        ratio="",
    )
