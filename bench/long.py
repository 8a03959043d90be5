"""The ``long`` section: Claude Code sessions at 16 KB … 4 MB, against the cost of the body.

Contract: :func:`grow` builds, deterministically, a recorded Claude Code main turn
(``tests/fixtures/anthropic/cc-17-…``, 27 tools) grown to about ``size`` bytes with realistic
tool round trips: an assistant ``tool_use`` (``Read`` of a source file, or ``Bash`` running
``grep -n``) and the user's ``tool_result`` holding what Claude Code would get back -- the
repository's own source files, numbered like Claude Code's ``Read`` output. :func:`session`
makes a user's consecutive turns from it: each adds a round trip and moves the one
``cache_control`` marker to the new last user message, as Claude Code does. :func:`floor_s` is
the floor: parsing (``orjson.loads``), re-encoding (``orjson.dumps``) and SHA-256 hashing the
same body once, timed (CPU time) in this (the orchestrator's) process in the same run.
:func:`section` runs the section on a :class:`bench.run.Bench` and returns its results; per
size: worker CPU per request (``/proc``, one pinned worker) over :data:`USERS` users' sessions
sent turn after turn, against the floor of a turn from the middle of them, and the ratio; at
1 MB also the *first sight* figure (each request a conversation the worker has not seen, so the
conversation cache cannot help: app/anthropic/conversation_cache.py) and ``count_tokens`` CPU
per request; added time to first token (gateway vs straight to the emulator with the
ChatDetails the gateway sent); memory held per in-flight request (worker RSS growth with N
requests held open by a slow emulator answer, / N). :data:`TARGETS` and :func:`rows` are the
pass/fail targets and the printed rows (bench/report.py).

The model is ``gemini-2.5-flash`` (1,048,576-token window): a 4 MB turn is ~1M tokens, over
grok-4.20's 1,000,000 (the prompt_too_long check would answer 400 without calling OCI).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from bench.load import LoadRun, LoadSpec, Target, merge
from devtools import FIXTURES, ROOT
from devtools.procs import http_request

if TYPE_CHECKING:
    from bench.run import Bench

FIXTURE = FIXTURES / "cc-17-interactive-main-turn.json"
MODEL = "gemini-2.5-flash"
SIZES = (("16K", 16 * 1024), ("256K", 256 * 1024), ("1M", 1024 * 1024), ("4M", 4 * 1024 * 1024))
# per size: (CPU requests, TTFT requests each way, in-flight requests held for memory)
FULL = {"16K": (600, 60, 40), "256K": (300, 40, 40), "1M": (120, 30, 20), "4M": (40, 15, 10)}
QUICK = {"16K": (60, 6, 0), "256K": (30, 4, 0), "1M": (16, 4, 8), "4M": (6, 3, 0)}
CHUNKS = 5
#: users whose sessions the CPU figure sends at once, one turn after the other each (the
#: conversation cache sees what it sees from Claude Code: each turn resends the previous one)
USERS = 4
#: a session's growth over its turns at most, a share of its size (sessions())
MAX_GROWTH = 0.10
#: what a session's turn adds (a Bash grep round trip), about
TURN_BYTES = 800
#: conversations sent once each for the first-sight figure
FIRST_SIGHT_N = 24
# the slow emulator answer: long enough to read the RSS with every request held
HOLD_S = {"full": 8.0, "quick": 3.0}


def _sources() -> list[tuple[str, str]]:
    """(relative path, text) of the repository's own source files, in a fixed order."""
    out = []
    for sub in ("app", "emulator", "devtools", "tests", "bench"):
        for path in sorted((ROOT / sub).rglob("*.py")):
            out.append((str(path.relative_to(ROOT)), path.read_text()))
    return out


def _numbered(text: str) -> str:
    # Claude Code's Read result: right-aligned line numbers, a tab, the line
    return "\n".join(f"{i:6d}\t{line}" for i, line in enumerate(text.splitlines(), 1))


def _round_trip(n: int, sources: list[tuple[str, str]], tag: str = "") -> list[dict[str, Any]]:
    """Round trip ``n`` of a session: an assistant ``tool_use`` and the user's ``tool_result``
    (every third a Bash ``grep -n`` over a source file, the others a ``Read`` of one)."""
    path, text = sources[n % len(sources)]
    tid = f"toolu_{n:04d}{hashlib.sha256((tag + path).encode()).hexdigest()[:16]}"
    if n % 3 == 2:  # every third round trip a Bash grep over the file, the rest Reads
        word = "def " if n % 2 else "return"
        call = {"command": f"grep -n {word!r} {path}", "description": "Find definitions"}
        lines = [f"{i}:{ln}" for i, ln in enumerate(text.splitlines(), 1) if word in ln]
        result: Any = "\n".join(lines) or "(no output)"
        name = "Bash"
    else:
        call = {"file_path": f"/home/user/project/{path}"}
        # a string, as Claude Code sends a text file's Read result (the recorded
        # tests/fixtures/anthropic/cc-11-parallel-tool-results.json); only an image's is a
        # list of blocks (cc-12)
        result = _numbered(text)
        name = "Read"
    return [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"Let me look at `{path}`."},
                {"type": "tool_use", "id": tid, "name": name, "input": call},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tid, "content": result}],
        },
    ]


def grow(size: int) -> dict[str, Any]:
    """The fixture's body with tool round trips until its JSON is about ``size`` bytes."""
    body = json.loads(FIXTURE.read_text())["body"]
    body["model"] = MODEL
    body["stream"] = True
    first, rest = body["messages"][:1], body["messages"][1:]
    turns: list[dict[str, Any]] = []
    used = len(orjson.dumps(body))
    sources = _sources()
    n = 0
    while used < size:
        pair = _round_trip(n, sources)
        extra = len(orjson.dumps(pair))
        if used + extra > size * 1.05 and turns:
            # the last file would overshoot: cut its text to fit (still real source)
            keep = max(200, size - used - 400)
            result = pair[1]["content"][0]["content"]
            pair[1]["content"][0]["content"] = result[:keep]
            extra = len(orjson.dumps(pair))
        turns.extend(pair)
        used += extra
        n += 1
    body["messages"] = first + turns + rest
    return body


def session(size: int, turns: int, user: int = 0) -> list[bytes]:
    """``turns`` consecutive request bodies of one Claude Code session, the first about
    ``size`` bytes: each turn adds one tool round trip and moves the ``cache_control`` marker
    to the new last user message, as Claude Code does (the recorded fixtures cc-06, cc-08,
    cc-11, cc-13: one marker, on the last user message). ``user`` makes the session its own
    (the first message and the tool ids differ), so several users' sessions share nothing."""
    body = grow(size)
    first = body["messages"][0]
    first["content"] = [*first["content"], {"type": "text", "text": f"(session {user})"}]
    grown = body["messages"][1:-1]  # the round trips; the last one is the mid-turn system
    tail = body["messages"][-1:]
    sources = _sources()
    n = len(grown) // 2
    n += (2 - n % 3) % 3  # the next Bash grep round trip (n % 3 == 2): a turn adds ~0.8 KB
    out = []
    for _ in range(turns):
        messages = [first, *grown, *tail]
        for m in messages:
            if isinstance(m["content"], list):
                m["content"] = [
                    {k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]
                ]
        last_user = next(m for m in reversed(messages) if m["role"] == "user")
        last_user["content"][-1] = {**last_user["content"][-1], "cache_control": EPHEMERAL}
        out.append(orjson.dumps({**body, "messages": messages}))
        grown.extend(_round_trip(n, sources, tag=f"user {user}"))
        n += 3  # the next grep
    return out


EPHEMERAL = {"type": "ephemeral"}


def floor_s(raw: bytes, rounds: int) -> float:
    """Median CPU seconds of loads + dumps + sha256 of ``raw`` (the least a proxy must do).
    CPU time of this thread, as the gateway's figure is CPU time: on a busy machine the wall
    clock also counts the time other processes held the core (the floor varied 2x that way)."""
    times = []
    for _ in range(rounds):
        t0 = time.thread_time()
        obj = orjson.loads(raw)
        orjson.dumps(obj)
        hashlib.sha256(raw).digest()
        times.append(time.thread_time() - t0)
    times.sort()
    return times[len(times) // 2]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[len(s) // 2]


def _capture(bench: Bench, target: Target) -> bytes:
    """The ChatDetails the gateway sent for ``target``'s body (the direct path replays it)."""
    assert bench.emulator is not None
    bench.emulator.clear_requests()
    req = urllib.request.Request(target.url, target.body, target.headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read()
    if b"content_block_delta" not in text:
        raise RuntimeError(f"the gateway did not stream an answer: {text[:300]!r}")
    records = bench.emulator.requests()
    bench.emulator.clear_requests()
    return orjson.dumps(records[-1]["body"])


def _ttft(bench: Bench, gw: Target, direct: Target, n: int) -> dict[str, Any]:
    spec = LoadSpec(
        targets=[gw, direct],
        concurrency=1,
        record="ttft",
        requests=2 * (n + 2),
        discard=2,
        start_at=time.monotonic() + 0.3,
        cpus=bench.side_cpus,
    )
    run = LoadRun([spec])
    try:
        res = merge(run.results())
    finally:
        run.kill()
    g, d = (_median(x) for x in res["ttft"])
    return {
        "gateway_ms": g * 1e3 if g is not None else None,
        "emulator_ms": d * 1e3 if d is not None else None,
        "added_ms": (g - d) * 1e3 if g is not None and d is not None else None,
        "errors": res["errors"],
        "first_error": res["first_error"],
    }


def _memory(bench: Bench, raw: bytes, n: int, label: str, hold: float) -> dict[str, Any]:
    """Worker RSS growth with ``n`` requests of ``raw`` held open (a fresh gateway: memory
    freed by earlier requests but kept by the allocator would hide the growth)."""
    assert bench.emulator is not None
    gw = bench.start_gateway(1, bench.gw_cpus, bench.main_env(), f"gateway-long-mem-{label}")
    try:
        target = bench.gw_target(gw, raw, "gateway-long")
        bench.scenario(CHUNKS, 0.0)
        bench.counted(target, 1, 2, {}, bench.side_cpus)  # first-request imports, caches
        idle = gw.rss()[1]
        bench.emulator.set_default(text="tok ", chunks=1, delay_before=hold, style="grok")
        run = LoadRun(bench.specs([target], n, bench.side_cpus, record="count", requests=n))
        peak, held = idle, 0
        try:
            deadline = time.monotonic() + hold - 0.5
            while time.monotonic() < deadline:
                _st, h = http_request("GET", bench.emulator.url + "/_fake/health", timeout=2)
                held = max(held, json.loads(h).get("pending", 0))
                peak = max(peak, gw.rss()[1])
                time.sleep(0.2)
            res = merge(run.results())
        finally:
            run.kill()
        per = (peak - idle) / max(1, n)
        return {
            "in_flight": n,
            "held_seen_by_emulator": held,
            "worker_rss_idle_mb": idle / 2**20,
            "worker_rss_peak_mb": peak / 2**20,
            "per_request_bytes": per,
            "per_request_x_body": per / len(raw),
            "errors": res["errors"],
        }
    finally:
        gw.stop()
        bench.extra.remove(gw)


def sessions(size: int, cpu_n: int) -> tuple[list[list[bytes]], int]:
    """:data:`USERS` users' sessions at ``size`` for ``cpu_n`` measured requests and their
    warm-up, and how many turns of each the warm-up takes. A session grows by at most
    :data:`MAX_GROWTH` of ``size`` (a turn adds ~0.8 KB): a smaller size goes round its turns
    again after the last, which the worker then sees as a new conversation once a round."""
    warm = max(1, max(4, cpu_n // 10) // USERS)
    cap = max(2, int(size * MAX_GROWTH / TURN_BYTES))
    turns = min(cap, warm + -(-cpu_n // USERS) + 1)
    return [session(size, turns, user=u) for u in range(USERS)], warm


def session_targets(
    target: Target, turns: list[list[bytes]], warm: int
) -> tuple[list[Target], list[Target]]:
    """Per user, ``target`` sending that user's first ``warm`` turns (the warm-up), and
    ``target`` sending the turns after them."""
    first = [
        replace(target, name=f"{target.name}-{u}", turns=tuple(t[:warm]))
        for u, t in enumerate(turns)
    ]
    rest = [
        replace(target, name=f"{target.name}-{u}", turns=tuple(t[warm:]))
        for u, t in enumerate(turns)
    ]
    return first, rest


def section(bench: Bench) -> dict[str, Any]:
    assert bench.gateway is not None and bench.emulator is not None
    plan = QUICK if bench.args.quick else FULL
    watch = bench._watch_gateway(bench.gateway)
    out: dict[str, Any] = {"model": MODEL, "chunks": CHUNKS, "users": USERS, "sizes": {}}
    for label, size in SIZES:
        cpu_n, ttft_n, mem_n = plan[label]
        turns, warm = sessions(size, cpu_n)
        raw = turns[0][0]  # TTFT, count_tokens and memory: one user's first turn, repeated
        mid = turns[0][len(turns[0]) // 2]
        bench.scenario(CHUNKS, 0.0)
        gw = bench.gw_target(bench.gateway, raw, "gateway-long")
        oci = _capture(bench, gw)
        direct = Target(
            "emulator",
            bench.emulator.url + "/20231130/actions/chat",
            oci,
            {"content-type": "application/json"},
            b'"TEXT","text"',
        )
        # the floor of a turn from the middle of the sessions (they grow ~0.8 KB a turn)
        floor = floor_s(mid, max(5, min(200, (64 << 20) // len(mid))))
        conc = 4
        first, rest = session_targets(gw, turns, warm)
        bench.counted(first, conc, warm * USERS, watch, bench.side_cpus)  # warm-up
        r = bench.counted(rest, conc, cpu_n, watch, bench.side_cpus)
        cpu = r["cpu"]["gateway_workers"] / max(1, r["completed"])
        entry: dict[str, Any] = {
            "body_bytes": len(raw),
            "last_turn_bytes": len(turns[0][-1]),
            "turns_per_user": len(turns[0]),
            "oci_body_bytes": len(oci),
            "messages": len(orjson.loads(raw)["messages"]),
            "requests": r["completed"],
            "errors": r["errors"],
            "first_error": r["first_error"],
            "cpu_ms_per_request": cpu * 1e3,
            "floor_ms": floor * 1e3,
            "ratio": cpu / floor if floor else None,
            "ttft": _ttft(bench, gw, direct, ttft_n),
        }
        if label == "1M":
            entry["first_sight"] = _first_sight(bench, gw, size, watch, floor)
            ct = Target(
                "gateway-count-tokens",
                bench.gateway.url + "/v1/messages/count_tokens",
                raw,
                gw.headers,
                b"input_tokens",
            )
            bench.counted(ct, conc, 8, watch, bench.side_cpus)
            c = bench.counted(ct, conc, cpu_n, watch, bench.side_cpus)
            ccpu = c["cpu"]["gateway_workers"] / max(1, c["completed"])
            entry["count_tokens"] = {
                "requests": c["completed"],
                "errors": c["errors"],
                "cpu_ms_per_request": ccpu * 1e3,
                "ratio": ccpu / floor if floor else None,
            }
        if mem_n:
            entry["memory"] = _memory(
                bench, raw, mem_n, label, HOLD_S["quick" if bench.args.quick else "full"]
            )
        out["sizes"][label] = entry
    return out


def _first_sight(
    bench: Bench, gw: Target, size: int, watch: dict[str, Any], floor: float
) -> dict[str, Any]:
    """CPU per request of conversations the worker has not seen (each request another
    user's first turn): what a turn costs after a restart, or when the conversation cache
    (``server.conversation_cache_mb``) is too small for the users. Informational: no target."""
    n = 8 if bench.args.quick else FIRST_SIGHT_N
    bodies = [session(size, 1, user=1000 + i)[0] for i in range(n)]
    targets = [replace(gw, name=f"first-sight-{i}", turns=(b,)) for i, b in enumerate(bodies)]
    r = bench.counted(targets, 4, n, watch, bench.side_cpus)
    cpu = r["cpu"]["gateway_workers"] / max(1, r["completed"])
    return {
        "requests": r["completed"],
        "errors": r["errors"],
        "cpu_ms_per_request": cpu * 1e3,
        "ratio": cpu / floor if floor else None,
    }


def _size(r: dict[str, Any], label: str, *keys: str) -> Any:
    node: Any = r.get("long", {}).get("sizes", {}).get(label)
    for k in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node


# (name, where in results, unit, comparison, limit): bench/report.py's TARGETS shape
TARGETS = (
    ("long 1 MB: CPU / floor", ("long", "sizes", "1M", "ratio"), "x", "<=", 2.0),
    ("long 4 MB: CPU / floor", ("long", "sizes", "4M", "ratio"), "x", "<=", 2.0),
    (
        "long 1 MB: count_tokens CPU / floor",
        ("long", "sizes", "1M", "count_tokens", "ratio"),
        "x",
        "<=",
        2.0,
    ),
    (
        "long 1 MB: memory per in-flight request / body",
        ("long", "sizes", "1M", "memory", "per_request_x_body"),
        "x",
        "<=",
        3.0,
    ),
)


def rows(results: dict[str, Any], add: Any, verdict: Any) -> None:
    """Print rows through bench/report.py's ``_Table.add`` (gateway / floor / ratio)."""
    long = results.get("long")
    if not long:
        return
    users = long.get("users")
    who = f", {users} users' sessions" if users else ""
    sec = f"long conversations ({long['model']}, {long['chunks']} chunks{who})"
    for label, _size_b in SIZES:
        e = long["sizes"].get(label)
        if not e:
            continue
        kb = e["body_bytes"] / 1024
        head = f"{label} ({kb:,.0f} KB, {e['messages']} msgs)"
        t = _verdict_for(label, "CPU / floor", verdict)
        add(
            sec,
            f"{head}: CPU per request vs floor (ms)",
            e["cpu_ms_per_request"],
            e["floor_ms"],
            target=t[0],
            result=t[1],
        )
        fs = e.get("first_sight")
        if fs:
            add(
                sec,
                f"  {label}: first sight (a conversation new to the worker) vs floor (ms)",
                fs["cpu_ms_per_request"],
                e["floor_ms"],
            )
        tt = e["ttft"]
        add(sec, f"  {label}: time to first token (ms)", tt["gateway_ms"], tt["emulator_ms"])
        add(sec, f"  {label}: added TTFT (ms)", tt["added_ms"], ratio="")
        ct = e.get("count_tokens")
        if ct:
            t = _verdict_for(label, "count_tokens CPU / floor", verdict)
            add(
                sec,
                f"  {label}: count_tokens CPU per request vs floor (ms)",
                ct["cpu_ms_per_request"],
                e["floor_ms"],
                target=t[0],
                result=t[1],
            )
        m = e.get("memory")
        if m:
            t = _verdict_for(label, "memory per in-flight request / body", verdict)
            add(
                sec,
                f"  {label}: RSS per in-flight request vs body (KB, n={m['in_flight']})",
                m["per_request_bytes"] / 1024,
                e["body_bytes"] / 1024,
                target=t[0],
                result=t[1],
            )
        if e.get("errors") or tt.get("errors"):
            add(sec, f"  {label}: errors {e.get('errors')} {tt.get('errors')}", ratio="")


def _verdict_for(label: str, what: str, verdict: Any) -> tuple[str, str]:
    size = {"1M": "1 MB", "4M": "4 MB"}.get(label)
    return verdict(f"long {size}: {what}") if size else ("", "")
