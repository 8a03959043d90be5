"""Sampling profile of a gateway worker under load (py-spy), summarised by where time goes.

Contract: :func:`record` runs ``py-spy record`` against a pid for some seconds (``raw`` =
collapsed stacks, or ``flamegraph`` SVG) and returns an error string or None (py-spy missing:
``.venv/bin/pip install py-spy``). :func:`analyse` reads the collapsed stacks and returns the
share of samples per category (per-request vs per-event work, by function), the hottest
functions by self time, and the hottest ``app/`` functions by inclusive time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def _py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def record(pid: int, out: Path, seconds: int, fmt: str) -> str | None:
    exe = _py_spy()
    if exe is None:
        return "py-spy is not installed (.venv/bin/pip install py-spy)"
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "250",
        "--format",
        fmt,
        "--output",
        str(out),
        "--nolineno",
        "--threads",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0 or not out.exists():
        return (proc.stderr or proc.stdout).strip()[-500:] or f"exit {proc.returncode}"
    return None


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")

# (category, needles): a stack goes to the category of its DEEPEST frame that contains one of the
# needles (leaf first), so e.g. a metric update inside the stream loop counts as metrics and
# time spent in Starlette itself (not in what it calls) counts as Starlette.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "per-request: OCI request signing (oci.signer / RSA)",
        ("oci/signer.py", "OciAuth.sign", "sign_now"),
    ),
    (
        "per-request: body parse + validation (msgspec)",
        ("parse (app/service/parse.py)", "check_depth", "app/anthropic/decode.py",
         "app/anthropic/text.py"),
    ),
    (
        "per-request: Anthropic -> OCI translation",
        ("to_oci (app/translate", "raw_estimate", "Calibrator.estimate"),
    ),
    ("per-request: access log (JSON logging)", ("access_log", "JsonFormatter", "logging/")),
    ("metrics (prometheus_client, all paths)", ("prometheus_client/",)),
    ("tracing (opentelemetry, all paths)", ("opentelemetry/",)),
    (
        "per-request: upstream connect/send (aiohttp client request)",
        ("ClientSession._request", "OciClient.open"),
    ),
    ("per-request: FastAPI/Starlette routing + middleware", ("starlette/", "fastapi/")),
    ("per-event: OCI SSE parse (SseReader.feed)", ("SseReader.feed",)),
    ("per-event: translation to Anthropic SSE (StreamTranslator.feed)", ("StreamTranslator.feed",)),
    (
        "per-event: upstream read (aiohttp StreamReader, read_chunks)",
        ("read_chunks", "aiohttp/streams.py"),
    ),
    (
        "per-event: response write (uvicorn send, SSEResponse)",
        ("uvicorn/protocols/http", "SSEResponse.__call__"),
    ),
    (
        "per-event: stream generator (service/finish.py _stream)",
        ("_stream (app/service/finish.py",),
    ),
    (
        "aiohttp client protocol (data_received / parser)",
        ("aiohttp/client_proto.py", "aiohttp/http_parser.py"),
    ),
    (
        "per-request: handler (create_message, MessagesService.messages)",
        ("create_message", "MessagesService.messages"),
    ),
)
OTHER = "event loop, asyncio, uvicorn/httptools protocol, other"


# frames whose inclusive share is worth a line of its own (substring of "func (file)")
KEY_FRAMES = (
    ("per-request", "OciAuth.sign (app/oci/auth.py)"),
    ("per-request", "_sign_rsa (oci/"),
    ("per-request", "ClientSession._request (aiohttp/client.py)"),
    ("per-request", "parse (app/service/parse.py)"),
    ("per-request", "to_oci (app/translate/to_oci.py)"),
    ("per-request", "to_oci_generic (app/translate/to_oci_generic.py)"),
    ("per-request", "finish_call (app/service/accounting.py)"),
    ("per-request", "access_log (app/observability/logging.py)"),
    ("per-request", "account_usage (app/service/accounting.py)"),
    ("per-request", "solve_dependencies (fastapi/"),
    ("per-request", "read_body (app/api/deps.py)"),
    ("per-request", "authenticate (app/api/deps.py)"),
    ("per-request", "create_task (asyncio/tasks.py)"),
    ("per-event", "read_chunks (app/oci/stream.py)"),
    ("per-event", "SseReader.feed (app/oci/sse.py)"),
    ("per-event", "StreamTranslator.feed (app/translate/stream.py)"),
    ("per-event", "sender (starlette/_exception_handler.py)"),
    ("per-event", "RequestResponseCycle.send (uvicorn/"),
    ("per-event", "data_received (aiohttp/client_proto.py)"),
    ("per-event", "(asyncio/timeouts.py)"),
    ("all", "(prometheus_client/"),
    ("all", "(opentelemetry/"),
)


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    return f"{m['func']} ({m['file']})"


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for label, needles in CATEGORIES:
            if any(nd in frame for nd in needles):
                return label
    return OTHER


_THREAD = re.compile(r"^thread \((?P<tid>\d+)\)")


def analyse(raw: Path, pid: int, top: int = 15) -> dict[str, Any]:
    """Main-thread samples only: the event loop is where requests are served. Other threads
    (the default executor's idle workers, which py-spy does not always see as idle; the span
    exporter with tracing on) are counted apart as ``other_threads_pct``."""
    stacks: Counter[str] = Counter()
    others = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        m = _THREAD.match(stack)
        if m and int(m["tid"]) != pid:
            others += int(count)
            continue
        stacks[stack.split(";", 1)[1] if m else stack] += int(count)
    total = sum(stacks.values())
    if not total:
        return {"samples": 0}
    cat: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    incl_app: Counter[str] = Counter()
    for stack, n in stacks.items():
        frames = _frames(stack)
        self_t[_name(frames[-1])] += n
        seen = set()
        for f in frames:
            name = _name(f)
            if "(app/" in name and name not in seen:
                seen.add(name)
                incl_app[name] += n
        cat[_category(frames)] += n

    keys: Counter[str] = Counter()
    for stack, n in stacks.items():
        for kind, needle in KEY_FRAMES:
            if needle in stack:
                keys[f"[{kind}] {needle}"] += n

    def rows(c: Counter[str], k: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "pct": 100 * n / total, "samples": n} for name, n in c.most_common(k)
        ]

    return {
        "samples": total,
        "other_threads_samples": others,
        "categories": rows(cat, len(CATEGORIES) + 1),
        "key_frames": [
            {
                "name": f"[{kind}] {needle}",
                "pct": 100 * keys[f"[{kind}] {needle}"] / total,
                "samples": keys[f"[{kind}] {needle}"],
            }
            for kind, needle in KEY_FRAMES
        ],
        "top_self": rows(self_t, top),
        "top_app_inclusive": rows(incl_app, top),
    }
