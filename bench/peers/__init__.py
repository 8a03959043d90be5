"""Peers: other gateways measured side by side with ours, in the same run (``--peers litellm``).

Contract: a peer is a :class:`PeerProcess` — a server on a free 127.0.0.1 port that speaks the
Anthropic Messages API in front of the run's OCI emulator — that any section can take like the
gateway: :meth:`PeerProcess.target` (the load generator's target for a body),
:meth:`PeerProcess.worker_cpu` and :meth:`PeerProcess.rss` (``/proc`` of its whole process tree),
:meth:`PeerProcess.pids`. :func:`start_peers` installs (once, cached) and starts the named peers
against the run's emulator; :func:`measure` runs one section's scenarios against a peer with the
same counts as the gateway (``bench.peers.sections``) and returns the figures, which
``bench.run`` stores under ``results["peers"][<peer>][<section>]`` and ``bench.peers.report``
prints as extra columns (peer, peer / gateway) beside the gateway's figures.

Without ``--peers`` nothing here is imported by the run and nothing is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load import Target
from devtools.procfs import children, cpu_seconds, rss_bytes
from devtools.procs import Process

if TYPE_CHECKING:
    from bench.run import Bench

KNOWN = ("litellm",)


class PeerProcess(Process):
    """A peer gateway process; subclasses give the command, readiness and request shape."""

    peer = ""  # short name: the results key and the --peers value
    label = ""  # what the report prints (name, version, endpoint)
    marker = b"event: content_block_delta"  # one per streamed text delta (Anthropic SSE)
    path = "/v1/messages"

    def __init__(self, name: str, workdir: Path, *, cpus: set[int] | None = None) -> None:
        super().__init__(name, workdir, cpus=cpus)
        self.url = ""
        self.info: dict[str, Any] = {}  # version, settings, checks: goes to results["peers"]

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def target(self, body: bytes, name: str | None = None) -> Target:
        return Target(name or self.peer, self.url + self.path, body, self.headers(), self.marker)

    def pids(self) -> list[int]:
        """The process and all its descendants (workers, helpers): everything it costs."""
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children(pid))
        return out

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def rss(self) -> tuple[int, int]:
        """(the started process, the sum of its descendants) in bytes, like the gateway's
        (master, workers)."""
        pids = self.pids()
        return rss_bytes(pids[0]), sum(rss_bytes(p) for p in pids[1:])


def parse_peers(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in KNOWN]
    if bad:
        raise ValueError(f"unknown peer(s) {bad}; choose from {KNOWN}")
    return names


def start_peers(bench: Bench, names: list[str]) -> list[PeerProcess]:
    """Install (cached) and start each peer against the bench's emulator, on the gateway's
    CPUs (same conditions: one core to itself, idle while the other is measured)."""
    out: list[PeerProcess] = []
    for name in names:
        if name == "litellm":
            from bench.peers.litellm import start_litellm

            out.append(start_litellm(bench))
    return out


def measure(bench: Bench, peer: PeerProcess, section: str) -> dict[str, Any] | None:
    """The peer's figures for ``section`` (None for sections with no peer counterpart)."""
    from bench.peers import sections

    fn = getattr(sections, f"peer_{section}", None)
    return fn(bench, peer) if fn is not None else None
