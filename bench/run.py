"""``python -m bench.run``: the gateway's performance benchmark (see bench/README.md).

Starts the OCI emulator, the gateway (``gunicorn -c python:app.gunicorn_conf``, uvicorn workers,
config/gateway.yaml pointed at the emulator) and aiohttp load-generator processes, all on
127.0.0.1 free ports; measures every figure through the gateway AND straight from the emulator
(the floor); prints a table with pass/fail against the targets and writes
``bench/results/latest.json``. Logs of the processes go to ``bench/results/logs/``.

Sections (``--only a,b``): ttft, throughput, streams, ramp, cpu, modes, long, profile.
``--quick`` shrinks every count (< 1 minute, CI smoke; skips the profile).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.config import write_gateway_config
from bench.load import LoadRun, LoadSpec, Target, merge
from bench.report import render, targets_table
from devtools import FIXTURES, ROOT
from devtools.procfs import (
    CLK_TCK,
    NCPU,
    cpu_seconds,
    machine_cpu,
    raise_fd_limit,
    rss_bytes,
    set_affinity,
)
from devtools.procs import EmulatorProcess, GatewayProcess, SinkProcess, http_request

SECTIONS = ("ttft", "throughput", "streams", "ramp", "cpu", "modes", "long", "profile")
RESULTS = ROOT / "bench" / "results"
GW_MARKER = b"event: content_block_delta"
OCI_MARKER = b'"TEXT","text"'
FIXTURE = FIXTURES / "cc-17-interactive-main-turn.json"

FULL = {
    "ttft_requests": 300,
    "ttft_warmup": 30,
    "tp_concurrency": 50,
    "tp_chunks": 20,
    "tp_warmup": 2.0,
    "tp_duration": 8.0,
    "streams": 2000,
    "stream_chunks": 20,
    "stream_delay": 1.0,
    "stream_ramp": 8.0,
    "cpu_requests": 1500,
    "cpu_concurrency": 50,
    "cpu_chunks": (5, 65),
    "cpu_delay": 0.005,
    "cc_requests": 600,
    "profile_seconds": 10,
}
QUICK = {
    "ttft_requests": 40,
    "ttft_warmup": 10,
    "tp_concurrency": 50,
    "tp_chunks": 20,
    "tp_warmup": 0.5,
    "tp_duration": 1.5,
    "streams": 200,
    "stream_chunks": 3,
    "stream_delay": 1.0,
    "stream_ramp": 1.0,
    "cpu_requests": 200,
    "cpu_concurrency": 50,
    "cpu_chunks": (5, 25),
    "cpu_delay": 0.005,
    "cc_requests": 0,
    "profile_seconds": 3,
}


def text_of(chunks: int) -> str:
    """``chunks`` pieces of 6 characters each (``tok07 ``): every event carries the same text."""
    return "".join(f"tok{i % 100:02d} " for i in range(chunks))


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.p = QUICK if args.quick else FULL
        self.logs = RESULTS / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        ncpu = NCPU
        self.pinned = args.pin == "on" and ncpu >= 2
        # gateway on core 0; emulator, load generator, sink and this process on the others
        self.gw_cpus: set[int] | None = {0} if self.pinned else None
        self.side_cpus: set[int] | None = set(range(1, ncpu)) if self.pinned else None
        self.emulator: EmulatorProcess | None = None
        self.gateway: GatewayProcess | None = None
        self.extra: list[Any] = []
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []
        self.gw_config: Path | None = None
        self.key = ""
        self.oci_body = b""
        self.mode_env = self._mode_env(args.metrics, args.tracing)
        self.sink: SinkProcess | None = None
        self.quiet: dict[str, Any] = {}
        self.peers: list[Any] = []  # bench.peers.PeerProcess, with --peers

    # ---- set-up -----------------------------------------------------------------------------

    def _mode_env(self, metrics: str, tracing: str) -> dict[str, str]:
        env: dict[str, str] = {}
        if metrics == "off":
            # app/observability/metrics.py: no-op metrics; section_modes checks it took effect
            env["GATEWAY_METRICS"] = "0"
        if tracing == "on":
            env.update(
                {
                    "OTEL_TRACES_EXPORTER": "otlp",
                    "OTEL_TRACES_SAMPLER": "always_on",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_BSP_SCHEDULE_DELAY": "1000",
                }
            )
        return env

    def _sink_env(self) -> dict[str, str]:
        if self.sink is None:
            self.sink = SinkProcess(self.logs, cpus=self.side_cpus).start()
            self.extra.append(self.sink)
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.url}

    def env_for(self, metrics: str, tracing: str) -> dict[str, str]:
        env = self._mode_env(metrics, tracing)
        if tracing == "on":
            env.update(self._sink_env())
        return env

    def start(self) -> None:
        if self.pinned:
            os.sched_setaffinity(0, self.side_cpus or set())
        self.emulator = EmulatorProcess(self.logs, cpus=self.side_cpus).start()
        self.gw_config, self.key = write_gateway_config(self.logs, self.emulator.url)
        self.scenario(20, 0.0)
        self.gateway = self.start_gateway(1, self.gw_cpus, self.main_env(), "gateway")
        self.oci_body = self.capture_oci_body()
        if self.args.peers:
            from bench.peers import start_peers

            self.peers = start_peers(self, self.args.peers)

    def main_env(self) -> dict[str, str]:
        return self.env_for(self.args.metrics, self.args.tracing)

    def start_gateway(
        self, workers: int, cpus: set[int] | None, env: dict[str, str], label: str
    ) -> GatewayProcess:
        assert self.gw_config is not None
        gw = GatewayProcess(
            self.gw_config,
            self.logs,
            workers=workers,
            cpus=cpus,
            env={"GATEWAY_RELOAD_INTERVAL": "2", **env},
            name=label,
            # multiprocess metrics with several workers only, as every published figure was
            # measured (the container image turns them on for one worker too)
            multiprocess=workers > 1,
        ).start()
        self.extra.append(gw)
        return gw

    def stop_all(self) -> None:
        for thing in reversed(self.extra):
            with contextlib.suppress(Exception):
                thing.stop()
        if self.emulator is not None:
            self.emulator.stop()

    def scenario(self, chunks: int, delay: float) -> None:
        assert self.emulator is not None
        self.emulator.set_default(
            text=text_of(chunks), chunks=chunks, delay_between=delay, style="grok"
        )
        self.emulator.clear_requests()

    def anthropic_body(self) -> bytes:
        return json.dumps(
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "stream": True,
                "messages": [{"role": "user", "content": "Say hello, briefly."}],
            }
        ).encode()

    def gw_target(
        self, gw: GatewayProcess, body: bytes | None = None, name: str = "gateway"
    ) -> Target:
        return Target(
            name,
            gw.url + "/v1/messages",
            body or self.anthropic_body(),
            {
                "content-type": "application/json",
                "anthropic-version": "2023-06-01",
                "x-api-key": self.key,
            },
            GW_MARKER,
        )

    def direct_target(self) -> Target:
        assert self.emulator is not None
        return Target(
            "emulator",
            self.emulator.url + "/20231130/actions/chat",
            self.oci_body,
            {"content-type": "application/json"},
            OCI_MARKER,
        )

    def capture_oci_body(self) -> bytes:
        """The exact ChatDetails the gateway sends for our request: the direct path replays it."""
        assert self.gateway is not None and self.emulator is not None
        t = self.gw_target(self.gateway)
        req = urllib.request.Request(t.url, data=t.body, headers=t.headers, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
        if GW_MARKER not in text:
            raise RuntimeError(f"the gateway did not stream an answer: {text[:300]!r}")
        records = self.emulator.requests()
        self.emulator.clear_requests()
        return json.dumps(records[-1]["body"], separators=(",", ":")).encode()

    # ---- the machine -------------------------------------------------------------------------

    def our_cpu(self) -> float:
        """CPU seconds of every process this benchmark runs, except the load generators (their
        CPU comes back in their results)."""
        pids = [os.getpid()]
        if self.emulator is not None and self.emulator.running:
            pids.append(self.emulator.pid)
        for thing in self.extra:
            if isinstance(thing, GatewayProcess) and thing.running:
                pids.extend(thing.pids())
            elif isinstance(thing, SinkProcess) and thing.running:
                pids.append(thing.pid)
            elif thing in self.peers and thing.running:
                pids.extend(thing.pids())
        return sum(cpu_seconds(p) for p in pids)

    def mark(self) -> tuple[int, float, float]:
        return machine_cpu()[0], self.our_cpu(), time.monotonic()

    @staticmethod
    def foreign(
        m0: tuple[int, float, float], m1: tuple[int, float, float], client_cpu: float
    ) -> float:
        """Cores used by other processes between two marks (minus our load generators')."""
        wall = max(1e-6, m1[2] - m0[2])
        return max(0.0, ((m1[0] - m0[0]) / CLK_TCK - (m1[1] - m0[1]) - client_cpu) / wall)

    def foreign_load(self, seconds: float = 1.0) -> float:
        """Cores used by processes that are not ours, measured over ``seconds`` of our idling."""
        m0, o0 = machine_cpu(), self.our_cpu()
        time.sleep(seconds)
        m1, o1 = machine_cpu(), self.our_cpu()
        return max(0.0, ((m1[0] - m0[0]) / CLK_TCK - (o1 - o0)) / seconds)

    def wait_quiet(self, label: str) -> None:
        """Wait (up to --wait-quiet seconds) until other processes leave the CPUs alone."""
        budget = self.args.wait_quiet
        deadline = time.monotonic() + budget
        load = self.foreign_load(0.5)
        waited = 0.0
        t0 = time.monotonic()
        while load > self.args.quiet_below and time.monotonic() < deadline:
            if waited == 0.0:
                print(
                    f"[bench] {label}: other processes use {load:.2f} cores; waiting up to "
                    f"{budget:g}s for a quiet machine",
                    file=sys.stderr,
                    flush=True,
                )
            load = self.foreign_load(2.0)
            waited = time.monotonic() - t0
        self.quiet[label] = {"foreign_cores_at_start": round(load, 3), "waited_s": round(waited)}
        if load > self.args.quiet_below:
            note = (
                f"{label}: the machine was busy with other processes ({load:.2f} cores) "
                "when the section started: wall-clock figures are pessimistic"
            )
            self.notes.append(note)
            print(f"[bench] WARNING {note}", file=sys.stderr, flush=True)

    # ---- load helpers ----------------------------------------------------------------------

    def specs(
        self,
        targets: list[Target],
        concurrency: int,
        cpus: set[int] | None,
        *,
        deal: bool = False,
        **kw: Any,
    ) -> list[LoadSpec]:
        """Split ``concurrency`` (and ``requests``) over the client processes. With ``deal``,
        the targets are dealt out too (process ``i`` gets ``targets[i::n]``): sessions, each
        sent by one process only."""
        n = max(1, min(self.args.clients, concurrency, len(targets) if deal else concurrency))
        out = []
        requests = kw.pop("requests", None)
        for i in range(n):
            share = concurrency // n + (1 if i < concurrency % n else 0)
            req_share = None
            if requests is not None:
                req_share = requests // n + (1 if i < requests % n else 0)
            mine = targets[i::n] if deal else targets
            out.append(
                LoadSpec(targets=mine, concurrency=share, requests=req_share, cpus=cpus, **kw)
            )
        return out

    def windowed(
        self,
        target: Target,
        concurrency: int,
        watch: dict[str, Any],
        cpus: set[int] | None,
        warmup: float | None = None,
        duration: float | None = None,
        during: Any = None,
    ) -> dict[str, Any]:
        """Keep ``concurrency`` requests in flight; count completions in a timed window and
        the CPU the watched processes used in it."""
        warmup = self.p["tp_warmup"] if warmup is None else warmup
        duration = self.p["tp_duration"] if duration is None else duration
        start_at = time.monotonic() + 0.4
        w0, w1 = start_at + warmup, start_at + warmup + duration
        run = LoadRun(
            self.specs(
                [target],
                concurrency,
                cpus,
                record="count",
                start_at=start_at,
                window_start=w0,
                stop_at=w1,
            )
        )
        try:
            _sleep_until(w0)
            c0 = {k: f() for k, f in watch.items()}
            m0, o0 = machine_cpu(), self.our_cpu()
            if during is not None:
                during()
            _sleep_until(w1)
            c1 = {k: f() for k, f in watch.items()}
            m1, o1 = machine_cpu(), self.our_cpu()
            res = merge(run.results())
        finally:
            run.kill()
        done = res["completed"][0]
        out = {
            "rps": done / duration,
            "completed": done,
            "events_per_request": res["events"][0] / done if done else 0,
            "errors": res["errors"],
            "first_error": res["first_error"],
            "cpu_share": {k: (c1[k] - c0[k]) / duration for k in watch},
            "machine_busy": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
            "client_cpu_share": res["client_cpu"] / res["wall"],
            "client_max_process_share": res["client_cpu_max_share"],
            "client_processes": res["processes"],
            "foreign_cores": max(
                0.0,
                (m1[0] - m0[0]) / CLK_TCK / duration
                - (o1 - o0) / duration
                - res["client_cpu"] / res["wall"],
            ),
            "concurrency": concurrency,
            "duration": duration,
        }
        for k in watch:
            out.setdefault("cpu_us_per_request", {})[k] = (
                (c1[k] - c0[k]) / done * 1e6 if done else None
            )
        return out

    def counted(
        self,
        target: Target | list[Target],
        concurrency: int,
        requests: int,
        watch: dict[str, Any],
        cpus: set[int] | None,
    ) -> dict[str, Any]:
        """``requests`` requests; the CPU the watched processes used for them. A list of
        targets (sessions: ``Target.turns``) is dealt out over the client processes."""
        start_at = time.monotonic() + 0.4
        targets = target if isinstance(target, list) else [target]
        run = LoadRun(
            self.specs(
                targets,
                concurrency,
                cpus,
                deal=isinstance(target, list),
                record="count",
                requests=requests,
                start_at=start_at,
            )
        )
        try:
            _sleep_until(start_at - 0.1)
            c0 = {k: f() for k, f in watch.items()}
            m0, o0 = machine_cpu(), self.our_cpu()
            t0 = time.monotonic()
            res = merge(run.results())
            c1 = {k: f() for k, f in watch.items()}
            m1, o1 = machine_cpu(), self.our_cpu()
            t1 = time.monotonic()
        finally:
            run.kill()
        done = sum(res["completed"])
        return {
            "completed": done,
            "errors": res["errors"],
            "first_error": res["first_error"],
            "events": sum(res["events"]),
            "counts": sorted(set(res["counts"])),
            "cpu": {k: c1[k] - c0[k] for k in watch},
            "client_cpu": res["client_cpu"],
            "wall": t1 - t0,
            "foreign_cores": max(
                0.0, ((m1[0] - m0[0]) / CLK_TCK - (o1 - o0) - res["client_cpu"]) / (t1 - t0)
            ),
        }

    # ---- sections ----------------------------------------------------------------------------

    def section_ttft(self) -> None:
        assert self.gateway is not None
        self.results["ttft"] = self.ttft_pair(self.gw_target(self.gateway))

    def ttft_pair(self, target: Target) -> dict[str, Any]:
        """Concurrency 1, ``target`` and the emulator alternating: time to first token of each,
        p50/p90/p99 and the added latency (the ttft section; bench/peers runs it on a peer)."""
        p = self.p
        self.scenario(p["tp_chunks"], 0.0)
        n = p["ttft_requests"] + p["ttft_warmup"]
        spec = LoadSpec(
            targets=[target, self.direct_target()],
            concurrency=1,
            record="ttft",
            requests=2 * n,
            discard=p["ttft_warmup"],
            start_at=time.monotonic() + 0.5,
            cpus=self.side_cpus,
        )
        m0 = self.mark()
        run = LoadRun([spec])
        try:
            res = merge(run.results())
        finally:
            run.kill()
        gw, direct = res["ttft"]
        out: dict[str, Any] = {
            "requests": len(gw),
            "warmup": p["ttft_warmup"],
            "errors": res["errors"],
            "first_error": res["first_error"],
            "foreign_cores": self.foreign(m0, self.mark(), res["client_cpu"]),
            "client_cpu_share": res["client_cpu"] / res["wall"],
        }
        for q in (50, 90, 99):
            g, d = pct(gw, q), pct(direct, q)
            out[f"gateway_p{q}_ms"] = g * 1e3 if g is not None else None
            out[f"emulator_p{q}_ms"] = d * 1e3 if d is not None else None
            out[f"added_p{q}_ms"] = (g - d) * 1e3 if g is not None and d is not None else None
        out["gateway_mean_ms"] = sum(gw) / len(gw) * 1e3 if gw else None
        out["emulator_mean_ms"] = sum(direct) / len(direct) * 1e3 if direct else None
        return out

    def _watch_gateway(self, gw: GatewayProcess) -> dict[str, Any]:
        assert self.emulator is not None
        emu = self.emulator.pid
        return {"gateway_workers": gw.worker_cpu, "emulator": lambda: cpu_seconds(emu)}

    def _watch_emulator(self) -> dict[str, Any]:
        assert self.emulator is not None
        emu = self.emulator.pid
        return {"emulator": lambda: cpu_seconds(emu)}

    def section_throughput(self) -> None:
        assert self.gateway is not None and self.emulator is not None
        p = self.p
        conc = p["tp_concurrency"]
        self.scenario(p["tp_chunks"], 0.0)
        out: dict[str, Any] = {"chunks": p["tp_chunks"], "concurrency": conc}
        out["emulator_pinned"] = self.windowed(
            self.direct_target(), conc, self._watch_emulator(), self.side_cpus
        )
        out["gateway_1w"] = self.windowed(
            self.gw_target(self.gateway), conc, self._watch_gateway(self.gateway), self.side_cpus
        )
        workers = [w for w in self.args.workers if w != 1]
        for w in workers:
            # several workers: nothing is pinned (the workers need every core; so do the
            # emulator and the clients) — the machine, not one process, is the limit here
            set_affinity(self.emulator.pid, None)
            try:
                gw = self.start_gateway(w, None, self.main_env(), f"gateway-{w}w")
                try:
                    self.scenario(p["tp_chunks"], 0.0)
                    self.windowed(
                        self.gw_target(gw), conc, {}, None, warmup=0.5, duration=0.5
                    )  # every worker's first requests
                    out[f"emulator_unpinned_for_{w}w"] = self.windowed(
                        self.direct_target(), conc, self._watch_emulator(), None
                    )
                    out[f"gateway_{w}w"] = self.windowed(
                        self.gw_target(gw), conc, self._watch_gateway(gw), None
                    )
                finally:
                    gw.stop()
                    self.extra.remove(gw)
            finally:
                set_affinity(self.emulator.pid, self.side_cpus)
        self.results["throughput"] = out

    def section_streams(self) -> None:
        assert self.gateway is not None and self.emulator is not None
        p = self.p
        n, chunks, delay = p["streams"], p["stream_chunks"], p["stream_delay"]
        self.scenario(chunks, delay)
        out: dict[str, Any] = {
            "streams": n,
            "chunks": chunks,
            "delay_s": delay,
            "ramp_s": p["stream_ramp"],
        }
        emu = self.emulator
        gw = self.gateway
        for name, target, rss in (
            ("emulator", self.direct_target(), lambda: (rss_bytes(emu.pid), 0)),
            ("gateway", self.gw_target(gw), gw.rss),
        ):
            self.scenario(chunks, delay)
            idle = rss()
            cpu0 = gw.worker_cpu() if name == "gateway" else cpu_seconds(emu.pid)
            start_at = time.monotonic() + 1.0
            run = LoadRun(
                self.specs(
                    [target],
                    n,
                    self.side_cpus,
                    record="gaps",
                    start_at=start_at,
                    ramp=p["stream_ramp"],
                )
            )
            m0 = self.mark()
            peak = idle
            peak_upstream = 0
            samples = 0
            try:
                _sleep_until(start_at)
                expected_end = start_at + p["stream_ramp"] + chunks * delay + 5
                while time.monotonic() < expected_end + 60:
                    r = rss()
                    if sum(r) > sum(peak):
                        peak = r
                    with contextlib.suppress(Exception):
                        _st, body = http_request("GET", emu.url + "/_fake/health", timeout=2)
                        peak_upstream = max(peak_upstream, json.loads(body)["activeStreams"])
                    samples += 1
                    if run.ready():
                        break
                    time.sleep(0.25)
                res = merge(run.results())
            finally:
                run.kill()
            cpu1 = gw.worker_cpu() if name == "gateway" else cpu_seconds(emu.pid)
            # "held": gaps while every stream was open (after the last stream's first delta and
            # before the first stream's last one); "all": including the opening ramp
            marks = res["marks"]
            w0 = max((a for a, _ in marks), default=0.0)
            w1 = min((b for _, b in marks), default=0.0)
            excess = [(b - a - delay) * 1e3 for a, b in res["gaps"] if a >= w0 and b <= w1]
            excess_all = [(b - a - delay) * 1e3 for a, b in res["gaps"]]
            spans = sorted(res["spans"])
            out[name] = {
                "completed": res["completed"][0],
                "errors": res["errors"],
                "first_error": res["first_error"],
                "short_streams": sum(1 for c in res["counts"] if c != chunks),
                "peak_open_client": _peak_overlap(spans),
                "peak_open_upstream": peak_upstream,
                "rss_idle_mb": [x / 2**20 for x in idle],
                "rss_peak_mb": [x / 2**20 for x in peak],
                "rss_peak_total_mb": sum(peak) / 2**20,
                "rss_per_stream_kb": (sum(peak) - sum(idle)) / 1024 / n,
                "held_window_s": max(0.0, w1 - w0),
                "gap_excess_p50_ms": pct(excess, 50),
                "gap_excess_p99_ms": pct(excess, 99),
                "gap_excess_max_ms": max(excess) if excess else None,
                "gaps": len(excess),
                "all_gap_excess_p50_ms": pct(excess_all, 50),
                "all_gap_excess_p99_ms": pct(excess_all, 99),
                "all_gap_excess_max_ms": max(excess_all) if excess_all else None,
                "all_gaps": len(excess_all),
                "cpu_s": cpu1 - cpu0,
                "client_cpu_share": res["client_cpu"] / res["wall"],
                "foreign_cores": self.foreign(m0, self.mark(), res["client_cpu"]),
            }
        self.results["streams"] = out

    def section_ramp(self) -> None:
        from bench.ramp import section_ramp

        section_ramp(self)

    def _cpu_runs(
        self, gw: GatewayProcess | None, label: str, delay: float | None = None
    ) -> dict[str, Any]:
        """Two runs with different chunk counts -> fixed + per-event CPU cost.

        Paced (``cpu_delay`` between events: one event per socket read/write, as a real model
        streams) by default; ``delay=0`` measures events that arrive back to back.
        """
        p = self.p
        ka, kb = p["cpu_chunks"]
        n, conc = p["cpu_requests"], p["cpu_concurrency"]
        if delay is None:
            delay = p["cpu_delay"]
        if gw is None:
            target, watch, key = self.direct_target(), self._watch_emulator(), "emulator"
        else:
            target, watch, key = self.gw_target(gw), self._watch_gateway(gw), "gateway_workers"
        runs = {}
        for k in (ka, kb):
            self.scenario(k, delay)
            self.counted(target, conc, max(50, n // 10), watch, self.side_cpus)  # warm-up
            runs[k] = self.counted(target, conc, n, watch, self.side_cpus)
        per_a = runs[ka]["cpu"][key] / runs[ka]["completed"]
        per_b = runs[kb]["cpu"][key] / runs[kb]["completed"]
        per_event = (per_b - per_a) / (kb - ka)
        fixed = per_a - ka * per_event
        out = {
            "label": label,
            "chunks": [ka, kb],
            "requests": n,
            "concurrency": conc,
            "delay_between_s": delay,
            "cpu_us_per_request": {str(ka): per_a * 1e6, str(kb): per_b * 1e6},
            "fixed_us": fixed * 1e6,
            "per_event_us": per_event * 1e6,
            "client_us_per_request": {
                str(k): r["client_cpu"] / r["completed"] * 1e6 for k, r in runs.items()
            },
            "errors": {str(k): r["errors"] for k, r in runs.items()},
            "events_per_request": {str(k): r["counts"] for k, r in runs.items()},
            "foreign_cores": max(r["foreign_cores"] for r in runs.values()),
        }
        if gw is not None:
            out["emulator_us_per_request_behind_gateway"] = {
                str(k): r["cpu"]["emulator"] / r["completed"] * 1e6 for k, r in runs.items()
            }
        return out

    def section_cpu(self) -> None:
        assert self.gateway is not None
        out = {
            "emulator": self._cpu_runs(None, "emulator"),
            "gateway": self._cpu_runs(self.gateway, "gateway"),
            "emulator_burst": self._cpu_runs(None, "emulator", delay=0.0),
            "gateway_burst": self._cpu_runs(self.gateway, "gateway", delay=0.0),
        }
        if self.p["cc_requests"] and FIXTURE.exists():
            # a recorded Claude Code main turn (system prompt + 27 tools): the per-request
            # cost that dominates in practice; same answer as run A
            body = json.loads(FIXTURE.read_text())["body"]
            raw = json.dumps(body).encode()
            ka = self.p["cpu_chunks"][0]
            self.scenario(ka, self.p["cpu_delay"])
            target = self.gw_target(self.gateway, raw, "gateway-cc")
            watch = self._watch_gateway(self.gateway)
            self.counted(target, self.p["cpu_concurrency"], 50, watch, self.side_cpus)
            r = self.counted(
                target, self.p["cpu_concurrency"], self.p["cc_requests"], watch, self.side_cpus
            )
            per = r["cpu"]["gateway_workers"] / max(1, r["completed"])
            out["claude_code_turn"] = {
                "body_bytes": len(raw),
                "requests": r["completed"],
                "errors": r["errors"],
                "first_error": r["first_error"],
                "chunks": ka,
                "cpu_us_per_request": per * 1e6,
                "fixed_us": per * 1e6 - ka * out["gateway"]["per_event_us"],
            }
        self.results["cpu"] = out

    def section_modes(self) -> None:
        """Cost of metrics off / tracing on, as ratios to the default gateway."""
        assert self.emulator is not None
        p = self.p
        out: dict[str, Any] = {}
        default_mode = self.args.metrics == "on" and self.args.tracing == "off"
        base_tp = self.results.get("throughput", {}).get("gateway_1w") if default_mode else None
        base_cpu = self.results.get("cpu", {}).get("gateway") if default_mode else None
        if base_tp is None or (base_cpu is None and not self.args.quick):
            gw = self.start_gateway(1, self.gw_cpus, self.env_for("on", "off"), "gateway-default")
            try:
                if base_tp is None:
                    self.scenario(p["tp_chunks"], 0.0)
                    base_tp = self.windowed(
                        self.gw_target(gw),
                        p["tp_concurrency"],
                        self._watch_gateway(gw),
                        self.side_cpus,
                    )
                if base_cpu is None and not self.args.quick:
                    base_cpu = self._cpu_runs(gw, "default")
            finally:
                gw.stop()
                self.extra.remove(gw)
        out["default"] = {
            "rps": base_tp["rps"],
            "fixed_us": base_cpu["fixed_us"] if base_cpu else None,
            "per_event_us": base_cpu["per_event_us"] if base_cpu else None,
        }
        for mode, (metrics, tracing) in (
            ("metrics_off", ("off", "off")),
            ("tracing_on", ("on", "on")),
        ):
            gw = self.start_gateway(
                1, self.gw_cpus, self.env_for(metrics, tracing), f"gateway-{mode}"
            )
            try:
                entry: dict[str, Any] = {}
                if mode == "metrics_off":
                    self.scenario(2, 0.0)
                    self.counted(self.gw_target(gw), 2, 4, {}, self.side_cpus)
                    if "gateway_requests_total{" in gw.metrics_text():
                        entry["supported"] = False
                        entry["note"] = (
                            "no metrics switch in app/: GATEWAY_METRICS=0 had no "
                            "effect (gateway_requests_total still counts)"
                        )
                        out[mode] = entry
                        continue
                entry["supported"] = True
                before = self.sink.stats() if self.sink and tracing == "on" else {}
                self.scenario(p["tp_chunks"], 0.0)
                tp = self.windowed(
                    self.gw_target(gw), p["tp_concurrency"], self._watch_gateway(gw), self.side_cpus
                )
                entry["rps"] = tp["rps"]
                entry["rps_ratio"] = tp["rps"] / base_tp["rps"] if base_tp["rps"] else None
                entry["worker_cpu_us_per_request_20_chunks"] = tp["cpu_us_per_request"][
                    "gateway_workers"
                ]
                entry["default_worker_cpu_us_per_request_20_chunks"] = base_tp[
                    "cpu_us_per_request"
                ]["gateway_workers"]
                if not self.args.quick and base_cpu is not None:
                    c = self._cpu_runs(gw, mode)
                    entry["fixed_us"] = c["fixed_us"]
                    entry["per_event_us"] = c["per_event_us"]
                    entry["fixed_ratio"] = c["fixed_us"] / base_cpu["fixed_us"]
                    entry["per_event_ratio"] = (
                        c["per_event_us"] / base_cpu["per_event_us"]
                        if base_cpu["per_event_us"] > 0
                        else None
                    )
                if tracing == "on" and self.sink is not None:
                    time.sleep(1.5)  # the batch span processor exports every second
                    after = self.sink.stats()
                    entry["otlp_posts"] = after["posts"] - before.get("posts", 0)
                    entry["otlp_bytes"] = after["bytes"] - before.get("bytes", 0)
                out[mode] = entry
            finally:
                gw.stop()
                self.extra.remove(gw)
        self.results["modes"] = out

    def section_profile(self) -> None:
        """py-spy on the worker: under the throughput load (20 chunks, no delay: events arrive
        in a few reads, so per-request work dominates), under a paced load (65 chunks 5 ms
        apart: one event per read, as with a real model) for the per-event path, and with a
        recorded Claude Code main turn (16 KB, 27 tools) for the realistic per-request path."""
        from bench.profile import analyse, record

        assert self.gateway is not None
        p = self.p
        secs = p["profile_seconds"]
        worker = self.gateway.worker_pids()[0]
        out: dict[str, Any] = {"worker_pid": worker}
        runs: list[tuple[str, int, float, tuple[str, ...], bytes | None]] = [
            ("throughput", p["tp_chunks"], 0.0, ("raw", "flamegraph"), None),
            ("paced", p["cpu_chunks"][1], p["cpu_delay"], ("raw",), None),
        ]
        if FIXTURE.exists() and not self.args.quick:
            cc = json.dumps(json.loads(FIXTURE.read_text())["body"]).encode()
            runs.append(("claude-code", p["cpu_chunks"][0], 0.0, ("raw",), cc))
        for label, chunks, delay, fmts, body in runs:
            self.scenario(chunks, delay)
            raw = RESULTS / f"profile-{label}.txt"
            svg = RESULTS / f"profile-{label}.svg"
            recorded: dict[str, Any] = {}

            def during(
                raw: Path = raw,
                svg: Path = svg,
                fmts: tuple[str, ...] = fmts,
                recorded: dict[str, Any] = recorded,
            ) -> None:
                recorded["raw"] = record(worker, raw, secs, "raw")
                if "flamegraph" in fmts:
                    recorded["svg"] = record(worker, svg, secs, "flamegraph")

            tp = self.windowed(
                self.gw_target(self.gateway, body),
                p["tp_concurrency"],
                self._watch_gateway(self.gateway),
                self.side_cpus,
                warmup=2.0,
                duration=len(fmts) * secs + 3,
                during=during,
            )
            entry: dict[str, Any] = {
                "chunks": chunks,
                "delay_between_s": delay,
                "rps_while_sampling": tp["rps"],
                "body_bytes": len(body or self.anthropic_body()),
                "raw": str(raw.relative_to(ROOT)),
                "svg": str(svg.relative_to(ROOT)) if "flamegraph" in fmts else None,
            }
            if recorded.get("raw"):
                entry["error"] = recorded["raw"]
            else:
                entry.update(analyse(raw, worker))
            out[label] = entry
        self.results["profile"] = out

    def section_long(self) -> None:
        """Claude Code turns of 16 KB … 4 MB: CPU, TTFT and memory vs the body's floor."""
        from bench import long

        self.results["long"] = long.section(self)

    # ---- run ---------------------------------------------------------------------------------

    def run(self, sections: list[str]) -> dict[str, Any]:
        t0 = time.monotonic()
        self.start()
        for name in sections:
            self.wait_quiet(name)
            ts = time.monotonic()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            getattr(self, f"section_{name}")()
            self.measure_peers(name)
            self.settle_peers(name)
            print(
                f"[bench] {name} done in {time.monotonic() - ts:.1f}s", file=sys.stderr, flush=True
            )
        return {
            "meta": self.meta(time.monotonic() - t0, sections),
            **self.results,
        }

    def measure_peers(self, section: str) -> None:
        """--peers: the same section's scenarios against each peer, right after the gateway."""
        from bench.peers import measure

        for peer in self.peers:
            got = measure(self, peer, section)
            if got is not None:
                entry = self.results.setdefault("peers", {}).setdefault(peer.peer, {})
                entry["info"] = peer.info
                entry[section] = got

    def settle_peers(self, section: str, idle: float = 0.05, wait_s: float = 20.0) -> None:
        """A peer left busy by a section must not take the gateway's core in the next one: a
        peer counts as one of the bench's own processes (not in ``foreign_load``), and LiteLLM
        went on working on the streams the bench had abandoned at ~1 core for minutes (the
        next ``ramp`` waited half its window for a CPU). Wait up to ``wait_s`` for each peer
        to go idle (under ``idle`` cores), else restart it."""

        def load(peer: Any, seconds: float) -> float:
            c0 = peer.worker_cpu()
            time.sleep(seconds)
            return (peer.worker_cpu() - c0) / seconds

        for peer in self.peers:
            if not peer.running:
                continue
            deadline = time.monotonic() + wait_s
            busy = load(peer, 1.0)
            while busy > idle and time.monotonic() < deadline:
                busy = load(peer, 1.0)
            if busy > idle:
                print(
                    f"[bench] {peer.peer} still uses {busy:.2f} cores after {section}: restarted",
                    file=sys.stderr,
                    flush=True,
                )
                peer.restart()

    def meta(self, elapsed: float, sections: list[str]) -> dict[str, Any]:
        commit = ""
        with contextlib.suppress(Exception):
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "commit": commit,
            "python": platform.python_version(),
            "cpus": NCPU,
            "cpu_model": _cpu_model(),
            "quick": self.args.quick,
            "sections": sections,
            "pinned": self.pinned,
            "gateway_cpus": sorted(self.gw_cpus) if self.gw_cpus else "any",
            "side_cpus": sorted(self.side_cpus) if self.side_cpus else "any",
            "clients": self.args.clients,
            "metrics": self.args.metrics,
            "tracing": self.args.tracing,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.p.items()},
            "elapsed_s": elapsed,
            "machine_quiet": self.quiet,
            "notes": self.notes,
        }


def _peak_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    cur = peak = 0
    for _, d in points:
        cur += d
        peak = max(peak, cur)
    return peak


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="small counts (< 1 min), no profile")
    ap.add_argument("--only", default="", help=f"comma-separated sections of {SECTIONS}")
    ap.add_argument(
        "--workers", default="1,2", help="worker counts for the throughput section (default 1,2)"
    )
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes")
    ap.add_argument(
        "--pin",
        choices=("on", "off"),
        default="on",
        help="gateway on core 0, emulator+clients on the rest (default on)",
    )
    ap.add_argument(
        "--metrics",
        choices=("on", "off"),
        default="on",
        help="gateway mode for every section (off needs a switch in app/)",
    )
    ap.add_argument(
        "--tracing",
        choices=("on", "off"),
        default="off",
        help="on: OTLP/HTTP export of every span to a local sink",
    )
    ap.add_argument("--output", default=str(RESULTS / "latest.json"))
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="seconds to wait before each section for other processes to leave "
        "the CPUs alone (default 180, 0 with --quick)",
    )
    ap.add_argument(
        "--quiet-below",
        type=float,
        default=0.15,
        help="cores other processes may use for the machine to count as quiet",
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument(
        "--peers",
        default="",
        help="other gateways measured in the same run, e.g. litellm (bench/peers/)",
    )
    args = ap.parse_args(argv)
    args.workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    if args.peers:
        from bench.peers import parse_peers

        try:
            args.peers = parse_peers(args.peers)
        except ValueError as err:
            ap.error(str(err))
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 180.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only:
        sections = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            print(f"unknown section(s) {bad}; choose from {SECTIONS}", file=sys.stderr)
            return 2
    else:
        sections = [s for s in SECTIONS if not (args.quick and s == "profile")]
    raise_fd_limit()
    bench = Bench(args)
    atexit.register(bench.stop_all)
    try:
        results = bench.run(sections)
    finally:
        bench.stop_all()
    results["targets"] = targets_table(results)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    print(f"\nwritten: {out}")
    failed = [t for t in results["targets"] if t["pass"] is False]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
