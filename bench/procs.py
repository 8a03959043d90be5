"""The processes under test and what the kernel says about them.

Contract: :class:`Emulator` runs ``python -m tests.fake_oci`` (no signature check, quiet) and
scripts its default scenario over ``/_fake/*``; :class:`Gateway` runs the real deployment
command, ``gunicorn -c python:app.gunicorn_conf``, with a chosen worker count, config and extra
environment; :class:`Sink` runs :mod:`bench.sink` (an OTLP/HTTP endpoint that discards spans).
Each binds a free 127.0.0.1 port, is pinned to the CPUs it is given (``sched_setaffinity`` in the
child before exec, so gunicorn's workers inherit it) and is stopped by its own pid only.

``cpu_seconds``/``rss_bytes``/``machine_cpu`` read ``/proc``: user+system time of a process (all
its threads), resident set size, and the whole machine's busy/total ticks.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NCPU = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (all threads); 0.0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return 0


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", "rb") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])
    return total - idle, total


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    return out


def set_affinity(pid: int, cpus: Iterable[int] | None) -> None:
    """Pin every thread of ``pid`` (the kernel's affinity is per thread)."""
    if cpus is None:
        cpus = range(NCPU)
    cpus = set(cpus)
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _preexec(cpus: set[int] | None) -> Callable[[], None]:
    def run() -> None:
        os.setsid()  # own process group: a Ctrl-C of the bench reaches us only through stop()
        raise_fd_limit()
        if cpus:
            os.sched_setaffinity(0, cpus)

    return run


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "GATEWAY_", "PROMETHEUS_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def http(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _stop(
    proc: subprocess.Popen[bytes], sig: int, grace: float, extra_pids: Iterable[int] = ()
) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    for pid in extra_pids:  # workers that outlived their master
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ---- the emulator ---------------------------------------------------------------------------


class Emulator:
    def __init__(self, workdir: Path, cpus: set[int] | None) -> None:
        self.workdir = workdir
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Emulator:
        log = open(self.workdir / "emulator.log", "wb")
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "tests.fake_oci",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-verify",
                "--quiet",
            ],
            cwd=ROOT,
            env=_clean_env({}),
            stdout=subprocess.PIPE,
            stderr=log,
            preexec_fn=_preexec(self.cpus),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r} (see emulator.log)")
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    def set_default(self, **scenario: Any) -> None:
        status, body = http("PUT", self.url + "/_fake/default", scenario)
        if status != 200:
            raise RuntimeError(f"emulator refused scenario {scenario}: {body[:200]!r}")

    def clear_requests(self) -> None:
        http("DELETE", self.url + "/_fake/requests")

    def requests(self) -> list[dict[str, Any]]:
        status, body = http("GET", self.url + "/_fake/requests", timeout=30)
        return json.loads(body) if status == 200 else []

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM, 5)
            self.proc = None


# ---- the gateway ----------------------------------------------------------------------------


def write_gateway_config(workdir: Path, emulator_url: str) -> tuple[Path, str]:
    """config/gateway.yaml (demo auth, default settings) pointed at the emulator, plus one
    client API key (production gateways authenticate: that cost belongs in the figures).

    ``oci.max_connections`` is raised from its default 1000 to 4096: with 1000, the upstream
    pool would queue half of the 2,000 open streams of the ``streams`` section.
    """
    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    config["oci"]["endpoint"] = emulator_url
    config["oci"]["max_connections"] = 4096
    key = "bench-key-0123456789abcdef"
    keys_file = workdir / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": [{"id": "bench", "key": key}]}))
    config["client_auth"] = {"api_keys_file": str(keys_file)}
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, key


class Gateway:
    def __init__(
        self,
        workdir: Path,
        config: Path,
        workers: int,
        cpus: set[int] | None,
        env: dict[str, str] | None = None,
        label: str = "gateway",
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.workers = workers
        self.cpus = cpus
        self.extra_env = env or {}
        self.label = label
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._multiproc_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def master(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return children(self.master)

    def pids(self) -> list[int]:
        return [self.master, *self.worker_pids()]

    def rss(self) -> tuple[int, int]:
        """(master RSS, sum of the workers' RSS) in bytes."""
        return rss_bytes(self.master), sum(rss_bytes(p) for p in self.worker_pids())

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.worker_pids())

    def start(self) -> Gateway:
        env = {
            "GATEWAY_CONFIG": str(self.config),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_WORKERS": str(self.workers),
            "GATEWAY_RELOAD_INTERVAL": "2",
            **self.extra_env,
        }
        if self.workers > 1:
            # a private multiprocess dir: the gunicorn config empties it at start
            self._multiproc_dir = tempfile.TemporaryDirectory(prefix="bench-prom-")
            env["PROMETHEUS_MULTIPROC_DIR"] = self._multiproc_dir.name
        log = open(self.workdir / f"{self.label}.log", "ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "--no-control-socket"],
            cwd=ROOT,
            env=_clean_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_preexec(self.cpus),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited ({self.proc.returncode}); see "
                    f"{self.workdir / (self.label + '.log')}"
                )
            if len(self.worker_pids()) >= self.workers and self._ready():
                return self
            time.sleep(0.1)
        raise RuntimeError("the gateway did not become ready within 60 s")

    def _ready(self) -> bool:
        try:
            # several probes: with N workers each must have finished its lifespan
            return all(
                http("GET", self.url + "/readyz", timeout=1)[0] == 200
                for _ in range(4 * self.workers)
            )
        except OSError:
            return False

    def metrics_text(self) -> str:
        status, body = http("GET", self.url + "/metrics", timeout=10)
        return body.decode() if status == 200 else ""

    def stop(self) -> None:
        if self.proc is not None:
            workers = self.worker_pids()
            # SIGTERM (graceful: nothing is in flight by now). Not SIGINT/SIGQUIT: gunicorn's
            # quick shutdown sends the workers SIGQUIT, which the uvicorn worker ignores here,
            # so the master waits the whole graceful timeout (600 s) before killing them.
            _stop(self.proc, signal.SIGTERM, 15, workers)
            self.proc = None
        if self._multiproc_dir is not None:
            self._multiproc_dir.cleanup()
            self._multiproc_dir = None


# ---- the OTLP sink --------------------------------------------------------------------------


class Sink:
    def __init__(self, workdir: Path, cpus: set[int] | None) -> None:
        self.workdir = workdir
        self.cpus = cpus
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sink:
        log = open(self.workdir / "sink.log", "wb")
        self.proc = subprocess.Popen(
            [PY, "-m", "bench.sink", "--port", str(self.port)],
            cwd=ROOT,
            env=_clean_env({}),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_preexec(self.cpus),
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if http("GET", self.url + "/stats", timeout=1)[0] == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("the OTLP sink did not start")

    def stats(self) -> dict[str, int]:
        status, body = http("GET", self.url + "/stats")
        return json.loads(body) if status == 200 else {}

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM, 5)
            self.proc = None
