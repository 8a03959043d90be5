"""The layout rules the design promises (docs/design.md), checked on the source tree.

- every module in ``app/``, ``emulator/`` and ``devtools/`` opens with a docstring (its contract);
- no module in ``app/`` is over 400 lines;
- aiohttp is imported only by the modules that make outbound HTTP calls: ``app/oci/`` (OCI and
  the media it needs) and the IdP's JWKS fetch (``app/security/oidc.py``); no aiohttp object
  reaches the service or the routers;
- nothing shipped or run outside the test suite (``app``, ``emulator``, ``devtools``, ``bench``,
  ``scripts``) imports ``tests``;
- nothing in the repository reads a path outside it (a clone has nothing beside it).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("app", "emulator", "devtools")
OUTSIDE_TESTS = (*SHIPPED, "bench", "scripts")


def _modules(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(*SHIPPED), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_states_its_contract(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if not tree.body:  # an empty __init__.py marks a package, nothing more
        return
    assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"


def test_no_app_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules("app")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long


OUTBOUND_HTTP = {
    "app/security/oidc.py",  # besides app/oci/: the IdP's JWKS
    "app/service/search_backends.py",  # the web_search server tool's search backends
}


def test_aiohttp_stays_in_the_outbound_http_modules() -> None:
    leaks = [
        rel
        for p in _modules("app")
        if (rel := str(p.relative_to(ROOT))) not in OUTBOUND_HTTP
        and "oci" not in p.relative_to(ROOT / "app").parts[:1]
        and any(n == "aiohttp" or n.startswith("aiohttp.") for n in _imported(p))
    ]
    assert not leaks, leaks


def test_only_the_tests_import_tests() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _modules(*OUTSIDE_TESTS)
        if any(n == "tests" or n.startswith("tests.") for n in _imported(p))
    ]
    assert not offenders, offenders


def test_nothing_reads_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", r"\.\./shared|parents\[[0-9]\]\.parent", "--",
         ".", ":!*.md", ":!tests/test_layout.py"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if tracked.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    assert tracked.stdout == "", tracked.stdout
