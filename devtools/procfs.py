"""What the kernel says about a process, read from ``/proc`` (Linux only).

Contract: every reader takes a pid and returns a neutral value when the process is gone
(0, 0.0, -1, ``None`` or ``[]`` as documented), so a caller sampling a process that just exited
never has to catch anything. ``machine_cpu`` reads the whole machine; ``set_affinity`` and
``raise_fd_limit`` change this process or a child, never anything else.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NCPU = os.cpu_count() or 1


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name is in parentheses and may itself contain spaces or parentheses
    return stat[stat.rindex(b")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (all its threads); 0.0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_queue_wait(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (the second
    field of ``/proc/<pid>/schedstat``, kernel schedstats); 0.0 when it is gone or not
    available. Beside the CPU time it separates "busy" from "preempted by someone else"."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot; ``None`` when it is gone.

    A pid plus its start time names one process for good: a recycled pid has another one.
    """
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def rss_bytes(pid: int) -> int:
    """Resident set size in bytes; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return 0


def fd_count(pid: int) -> int:
    """Open file descriptors; -1 when the process is gone (or not ours to read)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def children(pid: int) -> list[int]:
    """Direct children of a process (of all its threads), sorted; [] when it is gone."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    return sorted(out)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", "rb") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])
    return total - idle, total


def set_affinity(pid: int, cpus: Iterable[int] | None) -> None:
    """Pin every thread of ``pid`` to ``cpus`` (all CPUs when ``None``).

    The kernel's affinity is per thread, so pinning only the pid would leave the running
    threads of an already started process where they were.
    """
    wanted = set(range(NCPU) if cpus is None else cpus)
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), wanted)


def raise_fd_limit() -> None:
    """Raise this process's soft open-file limit to the hard one (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


__all__ = [
    "CLK_TCK",
    "NCPU",
    "children",
    "cpu_seconds",
    "fd_count",
    "machine_cpu",
    "raise_fd_limit",
    "rss_bytes",
    "set_affinity",
    "start_time",
]
