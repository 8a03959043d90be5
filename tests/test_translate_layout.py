"""The dependency rules of translate/ and catalog/ (DESIGN.md "Dependency direction"), checked on
the source, function-local imports included.

- no import cycle among the modules of ``app/translate`` and ``app/catalog``;
- ``translate`` imports only wire models, catalog specs, errors and its own modules: never
  ``config``, ``oci``, ``service``, ``observability``, ``security`` or ``api``;
- ``catalog`` imports neither ``config`` (which imports it) nor ``translate``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
PACKAGES = ("translate", "catalog")


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``app.*`` module imported anywhere in the file (``from app.x import y`` counts
    ``app.x.y`` when that is a module, else ``app.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("app."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _exists(sub) else node.module)
    return found


def _exists(module: str) -> bool:
    base = APP.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


GRAPH = {_module(p): _imports(p) for pkg in PACKAGES for p in sorted((APP / pkg).glob("*.py"))}


def test_no_import_cycle() -> None:
    def visit(node: str, stack: list[str]) -> None:
        for dep in sorted(GRAPH.get(node, ())):
            if dep in stack:
                cycle = [*stack[stack.index(dep):], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep in GRAPH:
                visit(dep, [*stack, dep])

    for module in GRAPH:
        visit(module, [module])


@pytest.mark.parametrize(("package", "forbidden"), [
    ("app.translate", ("app.config", "app.oci", "app.service", "app.observability",
                       "app.security", "app.api", "app.main")),
    ("app.catalog", ("app.config", "app.translate", "app.oci", "app.service")),
])
def test_dependency_direction(package: str, forbidden: tuple[str, ...]) -> None:
    bad = {(mod, dep) for mod, deps in GRAPH.items() if mod.startswith(package)
           for dep in deps if dep.startswith(forbidden)}
    assert not bad, sorted(bad)
