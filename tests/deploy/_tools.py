"""Shared helpers for the deploy tests: repository paths and optional external tools.

The deploy tests use tools that are not runtime dependencies (helm-python-sdk,
kubernetes-validate, hadolint, promtool, docker-compose, check-jsonschema). Locally a missing tool
skips its test with the reason; .ci/deploy.sh installs them all and sets
DEPLOY_TOOLS_REQUIRED=1, which turns every such skip into a failure.
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


def missing(what: str) -> None:
    """Skip (locally) or fail (CI) because a tool is not installed."""
    msg = f"{what} is not installed (.ci/deploy.sh installs it)"
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
