"""OCI request signers for every auth mode, built once at start-up with the ``oci`` SDK.

Contract: :func:`build_auth` returns an :class:`OciAuth` for ``oci.auth`` of the config. Its
:meth:`OciAuth.sign` returns the headers (``date``, ``host``, ``x-content-sha256``,
``content-length``, ``authorization`` …) for exact body bytes, without blocking the event loop:
API-key and demo signers sign in place (an RSA signature, ~0.7 ms, cheaper than a thread hop);
token signers (instance / resource principal, OKE workload identity, session token) may refresh
their token over the network inside the signing call, so they sign in a worker thread.
:meth:`OciAuth.refresh` forces a token refresh (after an OCI 401), also off the loop.

The private key is parsed once here; never per request (DESIGN.md performance notes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.config import ConfigError, OciSection, expand

log = logging.getLogger("app.oci.auth")


class _SignTarget:
    """What an ``oci`` signer reads and mutates: a duck-typed ``requests.PreparedRequest``."""

    __slots__ = ("body", "headers", "method", "path_url", "url")

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        parts = urlsplit(url)
        self.path_url = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class OciAuth:
    mode: str
    signer: Any
    region: str | None
    #: token signers refresh over the network while signing: sign in a thread
    blocking: bool
    description: str

    def sign_now(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(body))
        target = _SignTarget("POST", url, headers, body)
        self.signer(target)
        return target.headers

    async def sign(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        if self.blocking:
            return await asyncio.to_thread(self.sign_now, url, body, headers)
        return self.sign_now(url, body, headers)

    async def refresh(self) -> bool:
        """Refresh a token signer once (after a 401). False when the mode has no token."""
        fn = getattr(self.signer, "refresh_security_token", None)
        if fn is None:
            reload = getattr(self.signer, "_gateway_reload", None)
            if reload is None:
                return False
            await asyncio.to_thread(reload)
            return True
        await asyncio.to_thread(fn)
        return True


def build_auth(cfg: OciSection) -> OciAuth:
    """Build the signer for ``cfg.auth`` (blocking: call from a thread or before serving)."""
    mode = cfg.auth
    try:
        if mode == "api_key":
            return _api_key(cfg)
        if mode == "security_token":
            return _security_token(cfg)
        if mode == "demo":
            return _demo()
        from oci.auth import signers

        if mode == "instance_principal":
            signer = signers.InstancePrincipalsSecurityTokenSigner()
            return OciAuth(
                mode, signer, getattr(signer, "region", None), True, "instance principal"
            )
        if mode == "resource_principal":
            signer = signers.get_resource_principals_signer()
            return OciAuth(
                mode, signer, getattr(signer, "region", None), True, "resource principal"
            )
        if mode == "workload_identity":
            signer = signers.get_oke_workload_identity_resource_principal_signer()
            return OciAuth(
                mode, signer, getattr(signer, "region", None), True, "OKE workload identity"
            )
    except ConfigError:
        raise
    except Exception as err:  # the SDK raises many types; report which mode failed and why
        raise ConfigError(f"oci.auth: cannot build the {mode} signer: {_safe(err)}") from None
    raise ConfigError(f"oci.auth: unknown mode {mode!r}")


def _safe(err: Exception) -> str:
    # SDK messages can contain file paths of key material but never key bytes; keep them short
    return f"{type(err).__name__}: {str(err)[:300]}"


def _profile(cfg: OciSection) -> dict[str, Any]:
    import oci

    path = expand(cfg.config_file)
    if not os.path.exists(path):
        raise ConfigError(f"oci.config_file: {path} does not exist")
    try:
        config = oci.config.from_file(path, cfg.profile)
    except Exception as err:
        raise ConfigError(
            f"oci.profile: cannot read profile {cfg.profile!r} from {path}: {_safe(err)}"
        ) from None
    if cfg.key_file:
        config["key_file"] = expand(cfg.key_file)
    return dict(config)


def _api_key(cfg: OciSection) -> OciAuth:
    import oci

    config = _profile(cfg)
    try:
        oci.config.validate_config(config)
    except Exception as err:
        raise ConfigError(
            f"oci.config_file: invalid profile {cfg.profile!r}: {_safe(err)}"
        ) from None
    signer = oci.signer.Signer(
        tenancy=config["tenancy"],
        user=config["user"],
        fingerprint=config["fingerprint"],
        private_key_file_location=config.get("key_file"),
        pass_phrase=config.get("pass_phrase"),
        private_key_content=config.get("key_content"),
    )
    return OciAuth(
        "api_key", signer, config.get("region"), False, f"API key (profile {cfg.profile})"
    )


def _security_token(cfg: OciSection) -> OciAuth:
    import oci
    from oci.auth.signers import SecurityTokenSigner

    config = _profile(cfg)
    token_file = config.get("security_token_file")
    if not token_file:
        raise ConfigError(f"oci.profile: {cfg.profile!r} has no security_token_file")

    def load() -> SecurityTokenSigner:
        with open(expand(token_file), encoding="utf-8") as fh:
            token = fh.read().strip()
        key = oci.signer.load_private_key_from_file(config["key_file"], config.get("pass_phrase"))
        return SecurityTokenSigner(token, key)

    holder = _Reloadable(load)
    return OciAuth(
        "security_token",
        holder,
        config.get("region"),
        False,
        f"session token (profile {cfg.profile})",
    )


class _Reloadable:
    """A session-token signer whose token file can be re-read after ``oci session refresh``."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._signer = factory()

    def __call__(self, request: Any) -> Any:
        return self._signer(request)

    def _gateway_reload(self) -> None:
        self._signer = self._factory()


def _demo() -> OciAuth:
    """An ephemeral key, for the bundled emulator only: exercises the real signing path."""
    import oci
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    signer = oci.signer.Signer(
        tenancy="ocid1.tenancy.oc1..demo",
        user="ocid1.user.oc1..demo",
        fingerprint=fingerprint,
        private_key_file_location=None,
        private_key_content=pem,
    )
    return OciAuth("demo", signer, None, False, "demo key (emulator only)")
