"""Multiprocess metric values read the process id once per process, and forks stay apart.

What is pinned (in fresh interpreters, since prometheus_client picks its value class per
process): with ``PROMETHEUS_MULTIPROC_DIR`` set, importing the gateway's metrics installs the
cached-pid value class, metric updates make no ``getpid`` call, and a forked child's updates go to
its own file, so the collector sums parent and child; without the variable nothing changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devtools import ROOT
from devtools.procs import child_env

FORK_AND_COUNT = r"""
import json, os, sys
import app.observability.metrics as m
from prometheus_client import CollectorRegistry, multiprocess, values

calls = 0
real_getpid = os.getpid
def counting_getpid():
    global calls
    calls += 1
    return real_getpid()
os.getpid = counting_getpid
LABELS = {"route": "/v1/messages", "model": "grok", "status_class": "2xx", "key_id": "k"}
m.REQUESTS.labels(**LABELS).inc()
m.TOKENS.labels(requested_model="g", model="grok", oci_model="x", key_id="k", type="input").inc(5)
updates_getpid = calls
os.getpid = real_getpid

child = os.fork()
if child == 0:
    m.REQUESTS.labels(**LABELS).inc(2)
    os._exit(0)
os.waitpid(child, 0)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry, path=sys.argv[1])
total = registry.get_sample_value("gateway_requests_total", LABELS)
print(json.dumps({
    "installed": bool(getattr(values.ValueClass, "_cached_pid", False)),
    "getpid_calls": updates_getpid,
    "total": total,
    "files": sorted(os.listdir(sys.argv[1])),
    "parent": os.getpid(),
    "child": child,
}))
"""


def _run(code: str, env_dir: Path | None) -> dict:
    # child_env: the caller's environment without PROMETHEUS_* (a developer's shell must not
    # switch the mode under test), the repository on PYTHONPATH
    extra = {} if env_dir is None else {"PROMETHEUS_MULTIPROC_DIR": str(env_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(env_dir)],
        env=child_env(extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_multiprocess_values_skip_getpid_and_forks_write_their_own_files(tmp_path: Path) -> None:
    r = _run(FORK_AND_COUNT, tmp_path)
    assert r["installed"] is True
    assert r["getpid_calls"] == 0  # the library's own class calls it on every update
    assert r["total"] == 3.0  # the parent's 1 and the child's 2, from two files
    assert f"counter_{r['parent']}.db" in r["files"]
    assert f"counter_{r['child']}.db" in r["files"]


def test_single_process_values_are_left_alone(tmp_path: Path) -> None:
    code = (
        "import json, app.observability.metrics as m\n"
        "from prometheus_client import values\n"
        "from app.observability import prom_values\n"
        "print(json.dumps({'mutex': values.ValueClass is values.MutexValue,"
        " 'install': prom_values.install()}))\n"
    )
    r = _run(code, None)
    assert r == {"mutex": True, "install": False}
