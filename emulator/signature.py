"""Verification of OCI request signatures (draft-cavage-http-signatures-08, reference §2).

Contract: ``SignatureVerifier.verify(method, target, headers, body)`` returns the verified
``keyId`` or raises ``OCIError`` 401 NotAuthenticated. It checks, like OCI:

* ``Authorization: Signature algorithm="rsa-sha256",headers="...",keyId="...",signature="..."``;
* the signed header list contains ``date`` (or ``x-date``), ``(request-target)`` and ``host``,
  and for POST/PUT/PATCH also ``content-length``, ``content-type`` and ``x-content-sha256``;
* ``x-content-sha256`` is base64(SHA-256(body)) and ``content-length`` is the body length;
* the date is within 5 minutes of now;
* the RSA PKCS#1 v1.5 / SHA-256 signature over the rebuilt signing string (``name: value``
  lines in the order of ``headers=``, ``(request-target)`` = lowercase method + raw path with
  query) verifies with the public key registered for the keyId — or with the single
  "accept any keyId" key when one is configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import OCIError, not_authenticated

MAX_CLOCK_SKEW_SECONDS = 300.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
_PARAM_RE = re.compile(r'([A-Za-z]+)="([^"]*)"')


def load_public_key(key: str | bytes | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    """Accept PEM text/bytes or an already loaded RSA public key."""
    if isinstance(key, rsa.RSAPublicKey):
        return key
    data = key.encode("ascii") if isinstance(key, str) else key
    loaded = serialization.load_pem_public_key(data)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are supported")
    return loaded


def parse_authorization(value: str) -> dict[str, str]:
    """Split ``Signature k="v",...`` into a dict; raise 401 when it is not that shape."""
    scheme, _, params = value.strip().partition(" ")
    if scheme.lower() != "signature":
        raise not_authenticated("authorization scheme is not Signature")
    parsed = dict(_PARAM_RE.findall(params))
    for name in ("keyId", "signature", "headers"):
        if not parsed.get(name):
            raise not_authenticated(f"authorization lacks {name}")
    if parsed.get("algorithm", "").lower() != "rsa-sha256":
        raise not_authenticated("algorithm must be rsa-sha256")
    return parsed


def _require_signed_headers(method: str, signed: list[str]) -> None:
    required = ["(request-target)", "host"]
    if method.upper() in BODY_METHODS:
        required.extend(BODY_HEADERS)
    missing = [name for name in required if name not in signed]
    if "date" not in signed and "x-date" not in signed:
        missing.append("date")
    if missing:
        raise not_authenticated(f"signed headers lack {', '.join(missing)}")


def _check_body_headers(headers: Mapping[str, str], body: bytes) -> None:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    if headers.get("x-content-sha256") != digest:
        raise not_authenticated("x-content-sha256 does not match the body")
    if headers.get("content-length") != str(len(body)):
        raise not_authenticated("content-length does not match the body")


def _check_date(headers: Mapping[str, str], now: float) -> None:
    raw = headers.get("x-date") or headers.get("date") or ""
    try:
        sent = parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        raise not_authenticated("date header is not an RFC 7231 date") from None
    if abs(now - sent) > MAX_CLOCK_SKEW_SECONDS:
        raise not_authenticated("date is more than 5 minutes off")


def signing_string(
    method: str, target: str, headers: Mapping[str, str], signed: list[str]
) -> str:
    """Rebuild the string the client signed, one ``name: value`` line per signed header."""
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
            continue
        value = headers.get(name)
        if value is None:
            raise not_authenticated(f"signed header {name} is missing from the request")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


class SignatureVerifier:
    """Holds the trusted public keys and verifies requests against them."""

    def __init__(
        self,
        public_keys: Mapping[str, str | bytes | rsa.RSAPublicKey] | None = None,
        accept_any_key_pem: str | bytes | None = None,
    ) -> None:
        self.keys: dict[str, rsa.RSAPublicKey] = {
            key_id: load_public_key(pem) for key_id, pem in (public_keys or {}).items()
        }
        self.any_key = load_public_key(accept_any_key_pem) if accept_any_key_pem else None

    def add_key(self, key_id: str, pem: str | bytes | rsa.RSAPublicKey) -> None:
        self.keys[key_id] = load_public_key(pem)

    def _key_for(self, key_id: str) -> rsa.RSAPublicKey:
        key = self.keys.get(key_id) or self.any_key
        if key is None:
            raise not_authenticated("unknown keyId")
        return key

    def verify(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
    ) -> str:
        """Return the keyId of a correctly signed request; raise OCIError(401) otherwise."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if "authorization" not in lowered:
            raise not_authenticated("no authorization header")
        params = parse_authorization(lowered["authorization"])
        signed = params["headers"].lower().split()
        _require_signed_headers(method, signed)
        if method.upper() in BODY_METHODS:
            _check_body_headers(lowered, body)
        _check_date(lowered, time.time() if now is None else now)
        message = signing_string(method, target, lowered, signed).encode("utf-8")
        self._check_signature(params["keyId"], params["signature"], message)
        return params["keyId"]

    def _check_signature(self, key_id: str, signature_b64: str, message: bytes) -> None:
        key = self._key_for(key_id)
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise not_authenticated("signature does not verify") from exc


__all__ = ["OCIError", "SignatureVerifier", "parse_authorization", "signing_string"]
