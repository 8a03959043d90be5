"""Model resolution: which gateway model (and so which :class:`ModelSpec`) serves a name.

Contract: :meth:`Catalog.resolve` maps the client's ``model`` string to a :class:`Resolved` —
exact gateway model name first, then an exact *discovery id*, then the alias patterns in file
order (first match wins), then ``default_model``; a ``[1m]`` suffix (Claude Code's 1M-context
variants) is ignored. Discovery ids come before the aliases so that the id ``GET /v1/models``
lists for a model (``claude-grok-4``) reaches that model even under a catch-all glob such as
``claude-*``; :func:`discovery_ids` makes them unambiguous (a discovery id equal to another
model's name or to a plain alias is a config error).
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


_DISCOVERY_PREFIX = re.compile(r"(?i)^(claude|anthropic)")


def discovery_id(name: str, spec: ModelSpec) -> str:
    """The id Claude Code's picker keeps for a model: ``discovery_id``, else the name when it
    already starts with ``claude``/``anthropic``, else ``claude-<name>``.

    Claude Code 2.1.197 keeps discovered ids matching ``/^(claude|anthropic)/i`` (the filter in
    its gateway discovery; the README's "Claude Code settings" cites the source).
    """
    if spec.discovery_id:
        return spec.discovery_id
    return name if _DISCOVERY_PREFIX.match(name) else f"claude-{name}"


def discovery_ids(models: Mapping[str, ModelSpec], aliases: Mapping[str, str]) -> dict[str, str]:
    """discovery id -> model name; ValueError naming the clash when an id is ambiguous."""
    out: dict[str, str] = {}
    for name, spec in models.items():
        did = discovery_id(name, spec)
        where = f"models.{name}.discovery_id ({did!r})"
        if did in out:
            raise ValueError(f"{where}: also the discovery id of model {out[did]!r}")
        if did != name and did in models:
            raise ValueError(f"{where}: is the name of another model; set a different one")
        if did in aliases and aliases[did] != name:
            raise ValueError(
                f"{where}: is also a plain alias to {aliases[did]!r}; set a different one"
            )
        out[did] = name
    return out


class Catalog:
    def __init__(self, config: CatalogSource) -> None:
        self._models = config.models
        self._discovery = discovery_ids(config.models, config.aliases)
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
        target = self._discovery.get(name)
        if target is not None:  # before the globs: the listed id must reach its model
            return Resolved(target, self._models[target], target)
        for pattern, rx, target in self._aliases:
            if rx.match(name):
                return Resolved(target, self._models[target], pattern)
        if self._default is not None:
            return Resolved(self._default, self._models[self._default], "default")
        valid = sorted(self._models) + [p for p, _, _ in self._aliases]
        raise NotFound(
            f"model {requested!r} is not served by this gateway; valid names: {', '.join(valid)}"
        )

    def listing(self) -> list[tuple[str, str, ModelSpec]]:
        """``(id, model name, spec)`` for ``GET /v1/models``: every model's discovery id, then
        the model names (when they differ), then aliases that are plain names.

        Discovery ids and plain aliases (``claude-sonnet-4-5: grok-4``) are what Claude Code's
        model discovery keeps (ids starting with ``claude`` or ``anthropic``); the plain model
        names are for other clients.
        """
        out = [(did, name, self._models[name]) for did, name in self._discovery.items()]
        out += [(n, n, s) for n, s in self._models.items() if n not in self._discovery]
        seen = {mid for mid, _, _ in out}
        for pattern, _, target in self._aliases:
            if not any(ch in pattern for ch in "*?[") and pattern not in seen:
                out.append((pattern, target, self._models[target]))
        return out
