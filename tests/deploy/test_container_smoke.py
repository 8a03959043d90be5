"""The container smoke test (tests/deploy/container_smoke.sh) with a real engine.

Gated: runs only with CONTAINER_TESTS=1 (set by .ci/deploy.sh after it installed podman,
buildah, debootstrap and friends). It needs root, the Debian mirror and PyPI (the image build
downloads the pinned wheels) and takes a few minutes; see the script for what it checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy._tools import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("CONTAINER_TESTS") != "1",
    reason="set CONTAINER_TESTS=1 (needs podman/buildah as root)",
)


@pytest.mark.timeout(1500)
def test_container_smoke(tmp_path: Path) -> None:
    log = tmp_path / "container_smoke.log"
    with log.open("w") as out:
        done = subprocess.run(
            ["bash", str(ROOT / "tests/deploy/container_smoke.sh")],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
            env={**os.environ, "PYTHON": sys.executable},
        )
    text = log.read_text()
    # the summary lines (sizes, timings, checks) go to the pytest report either way
    print(
        "\n".join(
            ln
            for ln in text.splitlines()
            if not ln.startswith(
                ("[", "-->", "STEP", "COMMIT", "time=", "Getting", "Copying", "Writing", "Storing")
            )
        )
    )
    assert done.returncode == 0, text[-4000:]
