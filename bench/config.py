"""The gateway config the benchmark measures: the shipped demo config, aimed at the emulator.

Contract: :func:`write_gateway_config` writes ``<workdir>/gateway.yaml`` (config/gateway.yaml
with ``oci.endpoint`` = the emulator and ``oci.max_connections`` = 4096) and
``<workdir>/keys.yaml`` with one client API key, and returns (config path, key). Production
gateways authenticate their clients, so that cost belongs in the figures.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devtools import ROOT

KEY = "bench-key-0123456789abcdef"


def write_gateway_config(workdir: Path, emulator_url: str) -> tuple[Path, str]:
    """``oci.max_connections`` is raised from its default 1000 to 4096: with 1000, the
    upstream pool would queue half of the 2,000 open streams of the ``streams`` section."""
    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    config["oci"]["endpoint"] = emulator_url
    config["oci"]["max_connections"] = 4096
    keys_file = workdir / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": [{"id": "bench", "key": KEY}]}))
    config["client_auth"] = {"api_keys_file": str(keys_file)}
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, KEY
