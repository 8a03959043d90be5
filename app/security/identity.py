"""Client authentication: a request's credential -> its :class:`~app.security.policy.Principal`.

Contract:
- :meth:`Identity.authenticate` reads the credential (``x-api-key``, else ``Authorization:
  Bearer``). A credential that looks like a JWT goes to the OIDC verifier when
  ``client_auth.oidc`` is set; anything else to the key store. It returns the caller's
  principal (own settings intersected with their team's, :func:`~app.security.policy.effective`)
  or raises 401 ``authentication_error`` (missing, invalid or expired credential; the message
  never names or echoes the credential) or 403 ``permission_error`` (a key naming a team the
  config lacks, or a user in no team when ``oidc.require_team``). Without any client
  authentication configured it returns ``None``: an anonymous caller.
- :meth:`Identity.for_config` gives the identity for a reloaded config: the key store and the
  verifier are kept or replaced as README "Operations" says. A reload never turns
  authentication off unless the new config allows anonymous callers (or runs the demo
  upstream): :func:`app.config.check_client_auth` refuses any other config as a whole before
  this is called.
"""

from __future__ import annotations

import logging
from typing import Any

from app.config import GatewayConfig
from app.errors import AuthenticationFailed, PermissionDenied
from app.observability import metrics as m
from app.security.keys import KeysFileError, KeyStore, presented_key
from app.security.oidc import OidcVerifier, looks_like_jwt
from app.security.policy import Principal, effective, team_for_groups

log = logging.getLogger("app.security")

OPEN = "no client authentication is configured: the gateway is OPEN to anyone who can reach it"
_MISSING = (
    "missing credentials: send an API key or a company sign-in token (JWT) in the x-api-key "
    "header or as Authorization: Bearer <credential>"
)


class Identity:
    def __init__(self, keys: KeyStore, oidc: OidcVerifier | None = None) -> None:
        self.keys = keys
        self.oidc = oidc

    @classmethod
    async def build(cls, config: GatewayConfig) -> Identity:
        """At start-up: an invalid keys file stops the start (KeysFileError)."""
        oidc = None
        if config.client_auth.oidc is not None:
            oidc = OidcVerifier(config.client_auth.oidc)
            await oidc.start()
        return cls(KeyStore(config.client_auth.api_keys_file), oidc)

    @property
    def enabled(self) -> bool:
        return self.keys.enabled or self.oidc is not None

    async def close(self) -> None:
        if self.oidc is not None:
            await self.oidc.close()

    async def authenticate(self, headers: Any, config: GatewayConfig) -> Principal | None:
        if not self.enabled:
            return None
        credential = presented_key(headers)
        if not credential:
            raise AuthenticationFailed(_MISSING)
        if self.oidc is not None and looks_like_jwt(credential):
            return self._user(await self.oidc.verify(credential), config)
        if not self.keys.enabled:
            raise AuthenticationFailed(
                "this gateway accepts company sign-in tokens (JWT) only: the credential sent "
                "is not a JWT"
            )
        key = self.keys.authenticate(credential)
        if key is None:
            raise AuthenticationFailed(
                "missing or invalid API key: send it in the x-api-key header or as "
                "Authorization: Bearer <key>"
            )
        if key.expired():
            # not which key: whoever holds an expired key learns nothing about others
            raise AuthenticationFailed("API key expired: ask the gateway's operators for a new one")
        spec = None
        if key.team is not None:
            spec = config.teams.get(key.team)
            if spec is None:  # fail closed: a typo must not lift the team's restrictions
                raise PermissionDenied(
                    f"API key {key.id!r} belongs to team {key.team!r}, which the gateway's "
                    "config does not define"
                )
        return effective(
            key.id,
            kind="key",
            owner=key.owner,
            models=key.models,
            limits=key.limits,
            budget=key.budget,
            team=key.team,
            spec=spec,
        )

    def _user(self, claims: dict[str, Any], config: GatewayConfig) -> Principal:
        assert self.oidc is not None
        user, groups = self.oidc.identity(claims)
        team = team_for_groups(config.teams, groups)
        if team is None and self.oidc.settings.require_team:
            raise PermissionDenied(
                f"user {user!r} is in no team of this gateway (teams.<name>.oidc_groups)"
            )
        spec = config.teams.get(team) if team else None
        return effective(user, kind="user", owner=user, team=team, spec=spec)

    async def for_config(self, config: GatewayConfig) -> Identity:
        """The identity for a reloaded config (see the module docstring)."""
        keys = _keys_for(config, self.keys)
        oidc = self.oidc
        new = config.client_auth.oidc
        if new != (oidc.settings if oidc else None):
            oidc = None
            if new is not None:
                oidc = OidcVerifier(new)
                await oidc.start()
            if self.oidc is not None:
                await self.oidc.close()
            log.info("client_auth.oidc changed", extra={"oidc": new is not None})
        identity = Identity(keys, oidc)
        if not identity.enabled and self.enabled:
            log.warning(OPEN + " (client authentication was removed from the config)")
        return identity


def _keys_for(config: GatewayConfig, current: KeyStore) -> KeyStore:
    """The key store for a reloaded config; never opens the gateway by accident (review B5).

    A keys file that cannot be loaded keeps the current keys (WARNING,
    ``{file="keys", result="error"}``). A config without a keys file reaches this only when it
    has another authentication, allows anonymous callers or runs the demo upstream
    (:func:`app.config.check_client_auth` refused the rest as a whole).
    """
    path = config.client_auth.api_keys_file
    if path == current.path:
        return current
    if path is None:
        return KeyStore(None)
    try:
        store = KeyStore(path)
    except KeysFileError as err:
        m.CONFIG_RELOADS.labels("keys", "error").inc()
        log.warning("new keys file refused, keeping the previous keys: %s", err)
        return current
    m.CONFIG_RELOADS.labels("keys", "ok").inc()
    log.info("keys file changed", extra={"keys_file": path, "keys": len(store.ids)})
    return store


def warn_unknown_teams(identity: Identity, config: GatewayConfig) -> None:
    """Keys naming a team the config lacks are refused (403): say so once, at load time."""
    unknown = sorted(
        {k.team for k in identity.keys.entries if k.team and k.team not in config.teams}
    )
    if unknown:
        log.warning(
            "keys name team(s) the config does not define; their requests get 403: %s",
            ", ".join(unknown),
        )
