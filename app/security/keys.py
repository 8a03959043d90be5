"""Client API keys: the mounted keys file, hashed lookup, per-key settings.

Contract:
- The keys file is YAML ``keys: [{id: alice, key: "..."}, {id: bob, sha256: "<hex>"}]``; each
  entry may also carry ``owner`` (who holds it), ``team`` (a ``teams.<name>`` of the config),
  ``expires`` (RFC 3339, e.g. ``2026-06-30T00:00:00Z``), ``budget`` (``usd_per_day`` /
  ``usd_per_week`` / ``usd_per_month``: stored, not enforced yet), ``models`` (names or glob
  patterns) and limits (``requests_per_minute``, ``tokens_per_minute``,
  ``max_concurrent_streams``). Only SHA-256 digests are kept in memory; ``python -m app keys``
  (:mod:`app.keys_cli`) writes files that hold nothing else.
- :meth:`KeyStore.authenticate` takes the raw ``x-api-key`` / ``Authorization: Bearer`` value
  and returns the matching :class:`ClientKey` or ``None``, comparing digests in constant time
  against every entry. The key itself is never logged or stored; its ``id`` is what appears in
  logs, metrics and spans. Whether it expired is the caller's check (:meth:`ClientKey.expired`).
- :meth:`KeyStore.maybe_reload` re-reads the file when it changed (mtime/inode/size — a
  Kubernetes Secret swap changes the symlink target); a missing, unreadable or invalid new file
  is refused with a WARNING saying why, and the previous keys keep working: a broken Secret
  never turns authentication off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import ValidationError

from app.security.policy import NO_LIMITS, Budget, RateLimits

log = logging.getLogger("app.security")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: every field a keys-file entry may have; anything else is a typo and refused
FIELDS = frozenset(
    {"id", "key", "sha256", "owner", "team", "expires", "budget", "models"}
    | set(RateLimits.model_fields)
)


class KeysFileError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ClientKey:
    id: str
    digest: bytes
    models: tuple[str, ...] | None = None
    limits: RateLimits = NO_LIMITS
    owner: str | None = None
    team: str | None = None
    expires: datetime | None = None
    budget: Budget | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires


def parse_expires(value: Any, where: str) -> datetime:
    """RFC 3339 with a time zone; YAML may already have made a datetime of an unquoted one."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise KeysFileError(
                f"{where}: must be an RFC 3339 time such as 2026-06-30T00:00:00Z"
            ) from None
    else:
        raise KeysFileError(f"{where}: must be an RFC 3339 time such as 2026-06-30T00:00:00Z")
    if when.tzinfo is None:
        raise KeysFileError(f"{where}: needs a time zone (Z or +hh:mm)")
    return when


def _optional_str(entry: dict[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value is not None and (not isinstance(value, str) or not value or len(value) > 256):
        raise KeysFileError(f"{where}.{name}: must be a non-empty string")
    return value


def _digest(entry: dict[str, Any], where: str) -> bytes:
    if ("key" in entry) == ("sha256" in entry):
        raise KeysFileError(f"{where}: exactly one of 'key' or 'sha256' is required")
    if "key" in entry:
        raw = entry["key"]
        if not isinstance(raw, str) or len(raw) < 8:
            raise KeysFileError(f"{where}.key: must be a string of at least 8 characters")
        return hashlib.sha256(raw.encode()).digest()
    hexd = entry["sha256"]
    if not isinstance(hexd, str) or not _HEX64.match(hexd):
        raise KeysFileError(f"{where}.sha256: must be 64 hex characters")
    return bytes.fromhex(hexd)


def parse_entry(entry: Any, where: str) -> ClientKey:
    if not isinstance(entry, dict):
        raise KeysFileError(f"{where}: must be a mapping")
    unknown = set(entry) - FIELDS
    if unknown:
        raise KeysFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kid = entry.get("id")
    if not isinstance(kid, str) or not _ID.match(kid):
        raise KeysFileError(f"{where}.id: required, 1-64 characters of [A-Za-z0-9_.@-]")
    models = entry.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) for m in models)
    ):
        raise KeysFileError(f"{where}.models: must be a list of model names or glob patterns")
    for name in RateLimits.model_fields:
        value = entry.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise KeysFileError(f"{where}.{name}: must be a positive integer")
    limits = RateLimits(**{n: entry.get(n) for n in RateLimits.model_fields})
    budget = None
    if entry.get("budget") is not None:
        try:
            budget = Budget.model_validate(entry["budget"])
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
            raise KeysFileError(f"{where}.budget{'.' + loc if loc else ''}: {msg}") from None
    expires = entry.get("expires")
    return ClientKey(
        id=kid,
        digest=_digest(entry, where),
        models=tuple(models) if models is not None else None,
        limits=limits,
        owner=_optional_str(entry, "owner", where),
        team=_optional_str(entry, "team", where),
        expires=parse_expires(expires, f"{where}.expires") if expires is not None else None,
        budget=budget,
    )


def parse_keys(data: Any, source: str) -> list[ClientKey]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeysFileError(f"{source}: expected a mapping with a 'keys' list")
    keys: list[ClientKey] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["keys"]):
        key = parse_entry(entry, f"{source}: keys[{i}]")
        if key.id in seen:
            raise KeysFileError(f"{source}: keys[{i}].id: duplicate id {key.id!r}")
        seen.add(key.id)
        keys.append(key)
    return keys


def load_keys(path: str) -> list[ClientKey]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as err:
        raise KeysFileError(f"{path}: cannot read the keys file ({err.strerror})") from None
    except yaml.YAMLError:
        raise KeysFileError(f"{path}: not valid YAML") from None
    return parse_keys(data, path)


def file_stamp(path: str) -> tuple[float, int, int] | None:
    """(mtime, inode, size), or None when missing: what the config and keys reloaders compare."""
    try:
        st = os.stat(path)  # follows the symlink Kubernetes swaps
    except OSError:
        return None
    return (st.st_mtime, st.st_ino, st.st_size)


class KeyStore:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._keys: list[ClientKey] = []
        self._stamp: tuple[float, int, int] | None = None
        if path:
            self._keys = load_keys(path)
            self._stamp = file_stamp(path)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def ids(self) -> list[str]:
        return [k.id for k in self._keys]

    @property
    def entries(self) -> list[ClientKey]:
        return list(self._keys)

    def authenticate(self, presented: str | None) -> ClientKey | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: constant time in the number of keys
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found

    def maybe_reload(self) -> bool | None:
        """True: reloaded; False: the new file was refused; None: unchanged."""
        if not self.path:
            return None
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            keys = load_keys(self.path)
        except KeysFileError as err:
            log.warning("keys file change refused, keeping the previous keys: %s", err)
            return False
        self._keys = keys
        log.info("keys file reloaded", extra={"keys": len(keys)})
        return True


def presented_key(headers: Any) -> str | None:
    """``x-api-key`` wins over ``Authorization: Bearer`` (as on the Anthropic API)."""
    key = headers.get("x-api-key")
    if key:
        return str(key).strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return str(auth[7:]).strip()
    return None
