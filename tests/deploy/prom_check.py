"""Run Debian's Prometheus with config/prometheus.yml against a running gateway (smoke test).

usage: python tests/deploy/prom_check.py GATEWAY_HOST:PORT

The compose config is used as is, with three test-only rewrites: the scrape target (the
compose service name -> the given address), the rule file path (the container mount -> the
repository file) and 2 s scrape/evaluation intervals. Checks: the gateway target is up under
job "oci-gateway", every recording/alert rule of charts/files/alerts evaluates without error
against the real metrics, and the gateway's request counter is queryable. Exits non-zero with
a message otherwise.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def main(target: str) -> int:
    prometheus = shutil.which("prometheus")
    if not prometheus:
        print("prometheus (Debian package) is not installed", file=sys.stderr)
        return 1
    cfg = yaml.safe_load((ROOT / "config/prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="2s", evaluation_interval="2s")
    cfg["rule_files"] = [str(ROOT / "charts/files/alerts/oci-gateway-rules.yaml")]
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "oci-gateway")
    job["static_configs"][0]["targets"] = [target]
    cfg["scrape_configs"] = [job]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "prometheus.yml"
        conf.write_text(yaml.safe_dump(cfg))
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={conf}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            up = rules_ok = False
            while time.monotonic() < deadline and not (up and rules_ok):
                time.sleep(1)
                try:
                    targets = _get(base + "/api/v1/targets")["data"]["activeTargets"]
                    up = any(
                        t["labels"]["job"] == "oci-gateway" and t["health"] == "up" for t in targets
                    )
                    groups = _get(base + "/api/v1/rules")["data"]["groups"]
                    rules = [r for g in groups for r in g["rules"]]
                    rules_ok = bool(rules) and all(r["health"] == "ok" for r in rules)
                except OSError:
                    continue
            if not up:
                print(f"prometheus: target {target} never up", file=sys.stderr)
                return 1
            if not rules_ok:
                bad = [
                    (r["name"], r["health"], r.get("lastError"))
                    for r in rules
                    if r["health"] != "ok"
                ]
                print(f"prometheus: rules not healthy: {bad}", file=sys.stderr)
                return 1
            query = urllib.parse.quote('sum(gateway_requests_total{job="oci-gateway"})')
            result = _get(f"{base}/api/v1/query?query={query}")["data"]["result"]
            total = float(result[0]["value"][1]) if result else 0.0
            if total <= 0:
                print("prometheus: no gateway_requests_total scraped", file=sys.stderr)
                return 1
            print(
                f"prometheus: job oci-gateway up, {len(rules)} rules evaluated ok, "
                f"gateway_requests_total={total:g}"
            )
            return 0
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
