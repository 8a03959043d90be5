"""prometheus_client's multiprocess value class, with the process id read once per process.

Contract: :func:`install` is called once, by :mod:`app.observability.metrics` before it defines
any metric. In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set when prometheus_client was
imported) it replaces ``prometheus_client.values.ValueClass`` with
``MultiProcessValue(cached_pid)``, where :func:`cached_pid` returns this process's id, refreshed
in a forked child by an ``os.register_at_fork`` hook; it returns whether it did. Otherwise
(single-process values) it changes nothing.

Why: the library's multiprocess value calls ``os.getpid()`` on every ``inc``/``set``/``observe``
to notice a fork, and glibc no longer caches ``getpid`` (2.25+), so each metric update is a
system call: 8% of a worker's samples in the bench's throughput profile (``__check_for_pid_change``
was its second-hottest function). The library takes the process identifier as a parameter for
this purpose (prometheus/client_python#509, ``values.ValueClass = values.MultiProcessValue(f)``);
its one rule, distinct values in processes running at the same time, holds: a fork's child
reads its own id in the at-fork hook before any Python code of it runs, and a spawned or
exec'd process imports this module afresh.
"""

from __future__ import annotations

import os

from prometheus_client import values

_pid = os.getpid()


def cached_pid() -> int:
    """This process's id, without a system call."""
    return _pid


def _refresh() -> None:
    global _pid
    _pid = os.getpid()


def install() -> bool:
    """Use the cached-pid multiprocess value class, in multiprocess mode only (see module)."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return False
    if getattr(values.ValueClass, "_cached_pid", False):
        return True  # already installed (a second import of the metrics module)
    os.register_at_fork(after_in_child=_refresh)
    cls = values.MultiProcessValue(process_identifier=cached_pid)
    cls._cached_pid = True
    values.ValueClass = cls
    return True
