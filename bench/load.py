"""The load generator: aiohttp clients in separate processes, with minimal parsing.

Contract: :func:`run_load` forks one process per :class:`LoadSpec` (pinned to ``spec.cpus``,
uvloop, fd limit raised, the inherited heap frozen out of the garbage collector, which is off
altogether in ``gaps`` mode), runs it and returns one result dict per process. A client never parses
JSON: it counts occurrences of the target's ``marker`` (``event: content_block_delta`` through
the gateway, the emulator's ``"TEXT","text"`` straight from the emulator) in the raw bytes as they
arrive, and notes the arrival time of the first one (time to first token) or of every chunk that
holds one (inter-chunk gaps). Every result carries the client's own CPU time (``os.times``) so
the report can show the load generator is not the bottleneck.

Modes (``spec.record``):

* ``count`` — keep ``concurrency`` requests in flight, taking the targets in turn (a target
  with ``turns`` sends its next turn each time). With ``stop_at`` (monotonic clock, shared
  by every process on the machine), requests completed within ``[window_start, stop_at]`` are
  counted and whatever is in flight at ``stop_at`` is abandoned; otherwise ``requests`` requests
  are made and all are counted.
* ``ttft`` — like ``count``, plus per-target time-to-first-token lists (targets alternate
  request by request, so gateway and emulator samples interleave in time).
* ``gaps`` — ``concurrency`` requests, one per task, started evenly over ``ramp`` seconds; keeps
  every gap between two chunks holding a marker as ``(t_before, t_after)`` (perf_counter, the
  same clock in every process), each stream's request/close times and first/last marker times.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from devtools.procfs import raise_fd_limit


@dataclass
class Target:
    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    marker: bytes
    #: a session's request bodies in order (then ``body`` is unused): a process sends them one
    #: after the other, as a user's turns, and starts again after the last
    turns: tuple[bytes, ...] = ()


@dataclass
class LoadSpec:
    targets: list[Target]
    concurrency: int
    record: str = "count"  # count | ttft | gaps
    requests: int | None = None
    start_at: float = 0.0
    window_start: float | None = None
    stop_at: float | None = None
    discard: int = 0  # ttft: the first N requests of each target are warm-up
    ramp: float = 0.0
    cpus: set[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BadStatus(Exception):
    pass


async def _one(
    session: aiohttp.ClientSession, target: Target, want_times: bool, body: bytes | None = None
) -> tuple[float | None, int, list[float] | None, float, float]:
    """One streamed request (of ``body``, else the target's): (ttft, markers seen, marker
    arrival times, t_open, t_close)."""
    marker = target.marker
    keep = len(marker) - 1
    first: float | None = None
    count = 0
    times: list[float] | None = [] if want_times else None
    tail = b""
    t0 = time.perf_counter()
    data_out = target.body if body is None else body
    async with session.post(target.url, data=data_out, headers=target.headers) as resp:
        if resp.status != 200:
            body = await resp.read()
            raise BadStatus(f"HTTP {resp.status}: {body[:200]!r}")
        async for chunk in resp.content.iter_any():
            data = tail + chunk if tail else chunk
            k = data.count(marker)
            if k:
                now = time.perf_counter()
                if first is None:
                    first = now - t0
                count += k
                if times is not None:
                    times.append(now)
            tail = data[-keep:]
    return first, count, times, t0, time.perf_counter()


async def _run(spec: LoadSpec) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, enable_cleanup_closed=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    ntargets = len(spec.targets)
    ttft: list[list[float]] = [[] for _ in range(ntargets)]
    events = [0] * ntargets
    done = [0] * ntargets
    errors: dict[str, int] = {}
    first_error: list[str] = []
    gaps: list[tuple[float, float]] = []
    spans: list[tuple[float, float]] = []
    marks: list[tuple[float, float]] = []
    counts: list[int] = []
    issued = 0
    turn = [0] * ntargets  # the next of each target's turns
    window_start = spec.window_start or 0.0

    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    ) as session:
        now = time.monotonic()
        if spec.start_at > now:
            await asyncio.sleep(spec.start_at - now)
        cpu0 = os.times()
        wall0 = time.monotonic()

        def record_error(exc: BaseException) -> None:
            name = type(exc).__name__
            errors[name] = errors.get(name, 0) + 1
            if not first_error:
                first_error.append(f"{name}: {exc}"[:300])

        async def worker(task_no: int) -> None:
            nonlocal issued
            if spec.record == "gaps":
                if spec.ramp:
                    await asyncio.sleep(spec.ramp * task_no / max(1, spec.concurrency))
                target = spec.targets[task_no % ntargets]
                try:
                    _f, n, times, t_open, t_close = await _one(session, target, True)
                except Exception as exc:
                    record_error(exc)
                    return
                assert times is not None
                gaps.extend(itertools.pairwise(times))
                spans.append((t_open, t_close))
                if times:
                    marks.append((times[0], times[-1]))
                counts.append(n)
                done[0] += 1
                events[0] += n
                return
            while True:
                if spec.stop_at is None:
                    if spec.requests is not None and issued >= spec.requests:
                        return
                elif time.monotonic() >= spec.stop_at:
                    return
                i = issued
                issued += 1
                ti = i % ntargets
                target = spec.targets[ti]
                body = None
                if target.turns:
                    body = target.turns[turn[ti] % len(target.turns)]
                    turn[ti] += 1
                try:
                    first, n, _t, _o, _c = await _one(session, target, False, body)
                except Exception as exc:
                    record_error(exc)
                    await asyncio.sleep(0.01)
                    continue
                finished = time.monotonic()
                if spec.stop_at is not None and not (window_start <= finished <= spec.stop_at):
                    continue
                if spec.record == "ttft" and i // ntargets < spec.discard:
                    continue
                done[ti] += 1
                events[ti] += n
                if first is not None:
                    ttft[ti].append(first)
                counts.append(n)

        tasks = [asyncio.create_task(worker(i)) for i in range(spec.concurrency)]
        if spec.stop_at is not None:
            _finished, pending = await asyncio.wait(
                tasks, timeout=max(0.0, spec.stop_at - time.monotonic()) + 0.05
            )
            for t in pending:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*pending, return_exceptions=True)
        else:
            await asyncio.gather(*tasks)
        wall1 = time.monotonic()
        cpu1 = os.times()

    return {
        "targets": [t.name for t in spec.targets],
        "completed": done,
        "events": events,
        "ttft": ttft,
        "gaps": gaps,
        "spans": spans,
        "marks": marks,
        "counts": counts,
        "errors": errors,
        "first_error": first_error[0] if first_error else None,
        "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "wall": wall1 - wall0,
    }


def _child(spec: LoadSpec, conn: Any) -> None:
    # The forked child inherits the orchestrator's heap: a collection walking it would also
    # copy every page it touches (copy-on-write). Frozen, no collection looks at it again. In
    # ``gaps`` mode the collector is off altogether: with 1,000 streams in one process, a full
    # collection stalled them all for 80-210 ms (gc.callbacks, bench/ramp.py), and the process
    # lives for one bounded run.
    gc.freeze()
    if spec.record == "gaps":
        gc.disable()
    try:
        raise_fd_limit()
        if spec.cpus:
            os.sched_setaffinity(0, spec.cpus)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover - uvloop is a gateway dependency
            pass
        conn.send(asyncio.run(_run(spec)))
    except BaseException as exc:  # report rather than hang the parent
        conn.send({"fatal": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


class LoadRun:
    """Client processes started now; :meth:`results` waits for them."""

    def __init__(self, specs: list[LoadSpec]) -> None:
        ctx = mp.get_context("fork")
        self._procs = []
        self._conns = []
        for spec in specs:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(spec, child), daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)

    def results(self, timeout: float = 900) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        for proc, conn in zip(self._procs, self._conns, strict=True):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                proc.kill()
                raise RuntimeError("a load-generator process did not report in time")
            result = conn.recv()
            proc.join(10)
            if "fatal" in result:
                raise RuntimeError(f"load generator failed: {result['fatal']}")
            out.append(result)
        return out

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc.pid is not None]

    def ready(self) -> bool:
        """Every process has reported (a large result blocks its sender until it is read)."""
        return all(
            conn.poll() or not proc.is_alive()
            for proc, conn in zip(self._procs, self._conns, strict=True)
        )

    def kill(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum/concatenate the per-process results (target by target: processes given dealt
    targets, ``Bench.specs(deal=True)``, add up position by position)."""
    n = max(len(r["completed"]) for r in results)

    def at(key: str, i: int) -> list[Any]:
        return [r[key][i] for r in results if i < len(r[key])]

    merged: dict[str, Any] = {
        "completed": [sum(at("completed", i)) for i in range(n)],
        "events": [sum(at("events", i)) for i in range(n)],
        "ttft": [[x for t in at("ttft", i) for x in t] for i in range(n)],
        "gaps": [g for r in results for g in r["gaps"]],
        "spans": [s for r in results for s in r["spans"]],
        "marks": [m for r in results for m in r["marks"]],
        "counts": [c for r in results for c in r["counts"]],
        "errors": {},
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "client_cpu": sum(r["cpu"] for r in results),
        "client_cpu_max_share": max(r["cpu"] / r["wall"] if r["wall"] else 0 for r in results),
        "wall": max(r["wall"] for r in results),
        "processes": len(results),
    }
    for r in results:
        for k, v in r["errors"].items():
            merged["errors"][k] = merged["errors"].get(k, 0) + v
    return merged
