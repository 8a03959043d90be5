"""Model resolution: which gateway model (and so which :class:`ModelSpec`) serves a name.

Contract: :meth:`Catalog.resolve` maps the client's ``model`` string to a :class:`Resolved` —
exact gateway model name first, then the alias glob patterns in file order (first match wins),
then ``default_model``; a ``[1m]`` suffix (Claude Code's 1M-context variants) is ignored.
Anything else raises :class:`~app.errors.NotFound` naming the model and the valid names.
``Resolved.requested`` is a bounded label (a catalog name, an alias pattern or ``default``),
never the raw client string, so it is safe for metrics.

The catalog reads only ``models``, ``aliases`` and ``default_model`` of what it is given
(:class:`CatalogSource`: the config file's :class:`~app.config.GatewayConfig` satisfies it), so
this package does not import ``config.py``; ``config.py`` imports the specs from here.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from app.catalog.spec import ModelSpec
from app.errors import NotFound


class CatalogSource(Protocol):
    """The three config keys a catalog is built from."""

    @property
    def models(self) -> Mapping[str, ModelSpec]: ...
    @property
    def aliases(self) -> Mapping[str, str]: ...
    @property
    def default_model(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Resolved:
    name: str  #: gateway model name (a key of ``models:``)
    spec: ModelSpec
    requested: str  #: bounded label: the model name, the alias pattern, or "default"


class Catalog:
    def __init__(self, config: CatalogSource) -> None:
        self._models = config.models
        self._aliases = [
            (pattern, re.compile(fnmatch.translate(pattern)), target)
            for pattern, target in config.aliases.items()
        ]
        self._default = config.default_model
        self._cache: dict[str, Resolved] = {}

    def resolve(self, requested: str) -> Resolved:
        hit = self._cache.get(requested)
        if hit is not None:
            return hit
        resolved = self._lookup(requested)
        if len(self._cache) < 4096:  # bounded: client strings are arbitrary
            self._cache[requested] = resolved
        return resolved

    def _lookup(self, requested: str) -> Resolved:
        name = requested.strip()
        if name.endswith("[1m]"):
            name = name[: -len("[1m]")]
        spec = self._models.get(name)
        if spec is not None:
            return Resolved(name, spec, name)
        for pattern, rx, target in self._aliases:
            if rx.match(name):
                return Resolved(target, self._models[target], pattern)
        if self._default is not None:
            return Resolved(self._default, self._models[self._default], "default")
        valid = sorted(self._models) + [p for p, _, _ in self._aliases]
        raise NotFound(
            f"model {requested!r} is not served by this gateway; valid names: {', '.join(valid)}"
        )

    def listing(self) -> list[tuple[str, ModelSpec]]:
        """Ids for ``GET /v1/models``: model names, then aliases that are plain names.

        Plain aliases (``claude-sonnet-4-5: grok-4``) are listed because Claude Code's model
        discovery keeps only ids that start with ``claude`` or ``anthropic``.
        """
        out = list(self._models.items())
        for pattern, _, target in self._aliases:
            if not any(ch in pattern for ch in "*?[") and pattern not in self._models:
                out.append((pattern, self._models[target]))
        return out
