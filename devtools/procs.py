"""The repository's processes, run as children on free 127.0.0.1 ports (tests, bench, soak).

Contract:

* :class:`GatewayProcess` runs the gateway: ``python -m app`` when ``workers`` is ``None``,
  else the deployment command ``gunicorn -c python:app.gunicorn_conf`` with that many uvicorn
  workers. ``start()`` returns once ``/readyz`` answers 200 (and, under gunicorn, every worker
  has been forked and the probes keep answering).
* :class:`EmulatorProcess` runs ``python -m emulator`` (``--port 0``) and finds its URL in the
  ``listening on`` line; it verifies signatures with ``public_key`` or runs ``--no-verify``,
  and scripts the emulator over its ``/_fake/*`` control API.
* :class:`SinkProcess` runs ``python -m bench.sink``, the benchmark's discard-all OTLP endpoint.

Every process gets a cleaned environment (no inherited ``OTEL_*``, ``GATEWAY_*`` or
``PROMETHEUS_*``: a developer's shell must not change what is measured or tested) plus
``PYTHONPATH`` = the repository and the caller's ``env``; its stdout and stderr go to
``<workdir>/<name>.log`` (``output()``); it runs in its own session, optionally pinned to
``cpus``. Readiness is polled within a bound and fails with the tail of the log; nothing waits
a fixed time. ``stop()`` sends SIGTERM, then SIGKILL after ``timeout``, to the process's own
pid, and SIGKILLs only gunicorn workers of that process that outlived their master.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from http.client import HTTPException
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devtools import ROOT
from devtools.procfs import children, cpu_seconds, rss_bytes, start_time

PY = sys.executable
# Prefixes of the variables a child must not inherit from the caller's environment.
_SCRUBBED = ("OTEL_", "GATEWAY_", "PROMETHEUS_")


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago (the kernel's picks).

    All ``n`` sockets stay bound until the last is picked: one at a time, the kernel may hand
    back the port it just released, and a gateway's API and metrics ports then collide.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    return free_ports(1)[0]


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll ``predicate`` until it is true; ``RuntimeError`` naming ``what`` after ``timeout``.

    Connection and protocol errors count as "not yet": a server that is still binding refuses
    connections, one that is starting may close them.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, HTTPException):
            if predicate():
                return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready within {timeout:g} s")
        time.sleep(interval)


def http_request(
    method: str, url: str, body: Any = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One JSON request with the standard library: (status, body); HTTP errors are returned.

    The standard library keeps devtools free of client dependencies and of their pools.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without ``OTEL_*``/``GATEWAY_*``/``PROMETHEUS_*``, plus
    ``PYTHONPATH`` = the repository, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def _lost_a_port(output: str) -> bool:
    """Whether a server's output says a port it was to bind was taken (uvicorn's and the
    metrics listener's OSError, gunicorn's own message)."""
    return "address already in use" in output or "Connection in use" in output


def _pin(cpus: set[int]) -> Callable[[], None]:
    # In the child before exec, so every process and thread it creates inherits the mask
    # (gunicorn forks its workers long after Popen returns).
    def run() -> None:
        os.sched_setaffinity(0, cpus)

    return run


class Process:
    """One child process with its output in a file; the base of the classes below."""

    def __init__(self, name: str, workdir: Path, *, cpus: Iterable[int] | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.out_path = workdir / f"{name}.log"
        self.cpus = set(cpus) if cpus is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: Any = None

    # What a subclass defines: the command and its extra environment, and when it is ready.
    start_timeout = 30.0

    def _command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float | None = None) -> Self:
        """Spawn the process and return once it is ready (``RuntimeError`` otherwise, after
        stopping it): polled every 0.1 s for at most ``timeout`` seconds."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was started already")
        cmd, env = self._command()
        self._out = open(self.out_path, "wb")
        self._proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env(env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            # its own session: a Ctrl-C of the caller reaches it only through stop()
            start_new_session=True,
            preexec_fn=_pin(self.cpus) if self.cpus else None,
        )
        try:
            self._wait_ready(timeout or self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        if self._out is not None and not self._out.closed:
            self._out.flush()
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        def probe() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}); its output "
                    f"({self.out_path}):\n{self.output()[-3000:]}"
                )
            return self._ready()

        try:
            wait_until(probe, timeout, self.name)
        except RuntimeError as err:
            if self.running:  # not ready in time (an exit has its own message already)
                raise RuntimeError(
                    f"{err}; its output ({self.out_path}):\n{self.output()[-3000:]}"
                ) from None
            raise

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def _leftovers(self) -> list[tuple[int, int]]:
        """(pid, start time) of processes to kill if they outlive this one (none by default)."""
        return []

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (``None`` if never started)."""
        if self._proc is None:
            return None
        leftovers = self._leftovers()
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                self._proc.wait(10)
        for pid, started in leftovers:
            # the same process only: a pid the kernel has given to another one is left alone
            if start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._out is not None:
            self._out.close()
        return self._proc.returncode

    def restart(self, timeout: float | None = None) -> Self:
        """:meth:`stop`, then :meth:`start` again with the same command (same port)."""
        self.stop()
        self._proc = None
        return self.start(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ---- the gateway ------------------------------------------------------------------------------


class GatewayProcess(Process):
    """The gateway on a free port with ``config``; see the module docstring.

    ``multiprocess`` (always when gunicorn runs: its master serves the metrics from the
    workers' files, as in the container image) gives it a private
    ``PROMETHEUS_MULTIPROC_DIR``, removed by ``stop()``; an ``env`` entry wins. The metrics are
    on their own port: ``metrics_url`` (``GATEWAY_METRICS_PORT``), never ``url``.
    ``GATEWAY_RELOAD_INTERVAL`` defaults to 0.2 s so config-reload tests are quick.
    """

    start_timeout = 60.0

    def __init__(
        self,
        config: Path,
        workdir: Path,
        *,
        workers: int | None = None,
        env: dict[str, str] | None = None,
        cpus: Iterable[int] | None = None,
        name: str | None = None,
        multiprocess: bool | None = None,
    ) -> None:
        self._pick_ports()
        super().__init__(name or f"gateway-{self.port}", workdir, cpus=cpus)
        self.config = config
        self.workers = workers
        self.extra_env = dict(env or {})
        # under gunicorn always: the master serves the metrics port from the workers' files
        self.multiprocess = workers is not None or bool(multiprocess)
        self._multiproc_dir: str | None = None
        self._ports_fixed = False

    def _pick_ports(self) -> None:
        self.port, self.metrics_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        #: the Prometheus exposition: its own port (the gunicorn master serves it)
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float | None = None) -> Self:
        """As :meth:`Process.start`; a first start takes fresh ports (at most twice more) when
        another process bound a picked one between :func:`free_ports` and the gateway's bind.
        A :meth:`restart` keeps its ports: its callers rely on the same URL."""
        for attempt in range(3):
            try:
                super().start(timeout)
            except RuntimeError:
                if self._ports_fixed or attempt == 2 or not _lost_a_port(self.output()):
                    raise
            else:
                self._ports_fixed = True
                return self
            self.out_path.replace(self.out_path.with_suffix(f".port-taken-{attempt}.log"))
            self._proc = None
            self._pick_ports()
        raise AssertionError("unreachable")

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            "GATEWAY_CONFIG": str(self.config),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_METRICS_PORT": str(self.metrics_port),
            "GATEWAY_RELOAD_INTERVAL": "0.2",
        }
        if self.workers is None:
            return [PY, "-m", "app"], {**env, **self.extra_env}
        env["GATEWAY_WORKERS"] = str(self.workers)
        if self.multiprocess and "PROMETHEUS_MULTIPROC_DIR" not in self.extra_env:
            # private to this gateway: the gunicorn config empties the directory at start
            self._multiproc_dir = tempfile.mkdtemp(prefix=f"{self.name}-prom-")
            env["PROMETHEUS_MULTIPROC_DIR"] = self._multiproc_dir
        # gunicorn 27 otherwise listens on ~/.gunicorn/gunicorn.ctl: one path for every
        # gunicorn of the user, so concurrent gateways would take it from each other
        cmd = [PY, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "--no-control-socket"]
        return cmd, {**env, **self.extra_env}

    def _ready(self) -> bool:
        if self.workers is None:
            return http_request("GET", self.url + "/readyz", timeout=1)[0] == 200
        if len(self.worker_pids()) < self.workers:
            return False
        # several probes: the kernel spreads connections over the workers, and each worker
        # must have finished its lifespan before the gateway counts as ready
        return all(
            http_request("GET", self.url + "/readyz", timeout=1)[0] == 200
            for _ in range(4 * self.workers)
        )

    @property
    def master(self) -> int:
        """The pid started: the gunicorn master, or the only process of ``python -m app``."""
        return self.pid

    def worker_pids(self) -> list[int]:
        """The gunicorn workers ([] for ``python -m app``, which serves in its own process)."""
        return children(self.pid) if self.workers is not None else []

    def pids(self) -> list[int]:
        return [self.pid, *self.worker_pids()]

    def rss(self) -> tuple[int, int]:
        """(master RSS, sum of the workers' RSS) in bytes."""
        return rss_bytes(self.pid), sum(rss_bytes(p) for p in self.worker_pids())

    def worker_cpu(self) -> float:
        """CPU seconds of the processes that serve requests (the workers, or the only one)."""
        if self.workers is None:
            return cpu_seconds(self.pid)
        return sum(cpu_seconds(p) for p in self.worker_pids())

    def metrics_text(self) -> str:
        status, body = http_request("GET", self.metrics_url, timeout=10)
        return body.decode() if status == 200 else ""

    def _leftovers(self) -> list[tuple[int, int]]:
        # Workers that outlive their master (one killed after `timeout`) would keep the port
        # and their upstream connections; remember exactly which processes they are.
        found = ((pid, start_time(pid)) for pid in self.worker_pids())
        return [(pid, started) for pid, started in found if started is not None]

    def stop(self, timeout: float = 30.0) -> int | None:
        # SIGTERM is the graceful stop. Not SIGINT/SIGQUIT: gunicorn's quick shutdown sends
        # the workers SIGQUIT, which the uvicorn worker ignores, so the master would wait the
        # whole graceful timeout before killing them.
        code = super().stop(timeout)
        if self._multiproc_dir is not None:
            shutil.rmtree(self._multiproc_dir, ignore_errors=True)
            self._multiproc_dir = None
        return code


# ---- the OCI emulator -------------------------------------------------------------------------


class EmulatorProcess(Process):
    """``python -m emulator`` on a port the kernel picks; see emulator/README.md.

    ``public_key`` (a PEM file) makes it verify request signatures against that key for any
    keyId; without it the emulator runs ``--no-verify``. ``quiet`` turns off its request log.
    ``args`` are further CLI flags (e.g. ``["--default-delay-between", "0.01"]``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        public_key: Path | None = None,
        quiet: bool = True,
        args: Sequence[str] = (),
        cpus: Iterable[int] | None = None,
        name: str = "emulator",
    ) -> None:
        super().__init__(name, workdir, cpus=cpus)
        self.public_key = public_key
        self.quiet = quiet
        self.args = list(args)
        self.url = ""

    def _command(self) -> tuple[list[str], dict[str, str]]:
        # --port 0: the kernel picks the port, so no other process can take it between a
        # free_port() and the bind; the emulator prints it once it is listening
        cmd = [PY, "-m", "emulator", "--host", "127.0.0.1", "--port", "0"]
        if self.public_key is not None:
            cmd += ["--public-key", str(self.public_key)]
        else:
            cmd.append("--no-verify")
        if self.quiet:
            cmd.append("--quiet")
        return cmd + self.args, {"PYTHONUNBUFFERED": "1"}

    def _ready(self) -> bool:
        for line in self.output().splitlines():
            if " listening on " in line:
                self.url = line.rsplit(" ", 1)[1].strip()
                return True
        return False

    def health(self) -> dict[str, Any]:
        """``GET /_fake/health``: status, pending, requests, activeStreams, connectionsClosed."""
        status, body = http_request("GET", self.url + "/_fake/health")
        if status != 200:
            raise RuntimeError(f"emulator health answered {status}: {body[:200]!r}")
        return json.loads(body)

    def push(self, *scenarios: dict[str, Any]) -> None:
        """Queue scenarios (``emulator.Scenario`` fields as JSON) for the next requests."""
        status, body = http_request("POST", self.url + "/_fake/scenarios", list(scenarios))
        if status != 200:
            raise RuntimeError(f"emulator refused scenarios {scenarios}: {body[:200]!r}")

    def set_default(self, **scenario: Any) -> None:
        """The answer to every request that no queued scenario or inline marker claims."""
        status, body = http_request("PUT", self.url + "/_fake/default", scenario)
        if status != 200:
            raise RuntimeError(f"emulator refused scenario {scenario}: {body[:200]!r}")

    def clear_requests(self) -> None:
        http_request("DELETE", self.url + "/_fake/requests")

    def gc(self, automatic: bool | None = None) -> dict[str, Any]:
        """``POST /_fake/gc``: a full collection now; ``automatic`` turns the emulator's
        automatic collection off (False) or back on (True)."""
        payload = {} if automatic is None else {"automatic": automatic}
        status, body = http_request("POST", self.url + "/_fake/gc", payload, timeout=30)
        if status != 200:
            raise RuntimeError(f"emulator gc answered {status}: {body[:200]!r}")
        return json.loads(body)

    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests (``RecordedRequest.to_dict()``), oldest first."""
        status, body = http_request("GET", self.url + "/_fake/requests", timeout=30)
        return json.loads(body) if status == 200 else []

    def stop(self, timeout: float = 10.0) -> int | None:
        return super().stop(timeout)


# ---- the benchmark's OTLP sink ----------------------------------------------------------------


class SinkProcess(Process):
    """``python -m bench.sink``: accepts OTLP/HTTP spans, counts and discards them."""

    start_timeout = 20.0

    def __init__(
        self, workdir: Path, *, cpus: Iterable[int] | None = None, name: str = "sink"
    ) -> None:
        super().__init__(name, workdir, cpus=cpus)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        return [PY, "-m", "bench.sink", "--port", str(self.port)], {}

    def _ready(self) -> bool:
        return http_request("GET", self.url + "/stats", timeout=1)[0] == 200

    def stats(self) -> dict[str, int]:
        """``{"posts": n, "bytes": n}`` received so far."""
        status, body = http_request("GET", self.url + "/stats")
        return json.loads(body) if status == 200 else {}

    def stop(self, timeout: float = 10.0) -> int | None:
        return super().stop(timeout)


__all__ = [
    "EmulatorProcess",
    "GatewayProcess",
    "Process",
    "SinkProcess",
    "child_env",
    "free_port",
    "free_ports",
    "http_request",
    "wait_until",
]
