"""Company sign-in: verify client JWTs from the IdP of ``client_auth.oidc`` (PyJWT).

Contract:
- :meth:`OidcVerifier.verify` takes a token (from ``x-api-key`` or ``Authorization: Bearer``)
  and returns its claims, or raises :class:`~app.errors.AuthenticationFailed` (401) whose
  message says what is wrong — expired, not yet valid, wrong issuer, wrong audience, unknown
  key, refused algorithm, bad signature — and never contains the token.
- Only the asymmetric algorithms of ``oidc.algorithms`` are accepted (the config refuses
  ``none`` and HS*). The key is the JWKS entry whose ``kid`` the token names, used with the
  token's algorithm only when the key's type fits it (and its ``alg``, when the JWKS gives
  one): a public RSA key can never become an HMAC secret. ``iss``, ``aud`` and ``exp`` are
  required; ``exp``/``nbf``/``iat`` are checked with ``oidc.leeway`` seconds of skew.
- The JWKS comes from ``oidc.jwks_url`` or the issuer's discovery document, fetched with
  aiohttp (timeout :data:`FETCH_TIMEOUT`) once at start-up in the background, then again when
  a token names an unknown ``kid`` (key rotation) — at most once per ``oidc.jwks_min_refetch``
  seconds (30), so forged kids cannot hammer the IdP — and when the copy is older than
  :data:`MAX_AGE`. One fetch at a time; waiters share it. While no key was ever fetched, a
  token cannot be checked: 503 ``api_error`` (the IdP's trouble, not the client's).
- A verified token is remembered (by its SHA-256, at most :data:`VERIFIED_CACHE`) until its
  ``exp`` plus the leeway, or until the JWKS is fetched again: the signature is checked once per
  token, not once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from typing import Any

import aiohttp
import jwt

from app.config import Oidc
from app.errors import AuthenticationFailed, GatewayError

log = logging.getLogger("app.security.oidc")

FETCH_TIMEOUT = 5.0
VERIFIED_CACHE = 4096
MAX_AGE = 3600.0
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# key type each algorithm family needs (RFC 7518 §3.1, RFC 8037)
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_SAFE_ALG = re.compile(r"^[A-Za-z0-9]{1,10}$")


def looks_like_jwt(credential: str) -> bool:
    """Three base64url segments, the first a JSON object (``eyJ`` = ``{"``): a JWS compact
    token. Keys made by ``python -m app keys`` never look like this."""
    return bool(_JWT.match(credential))


def _alg_text(alg: Any) -> str:
    # the header is attacker-controlled: echo it only when it is short and plain
    return repr(alg) if isinstance(alg, str) and _SAFE_ALG.match(alg) else "(unsupported)"


class OidcVerifier:
    def __init__(self, settings: Oidc) -> None:
        self.settings = settings
        self.min_refetch = settings.jwks_min_refetch
        self._session: aiohttp.ClientSession | None = None
        self._jwks_url = settings.jwks_url
        self._keys: dict[str | None, dict[str, Any]] = {}
        #: parsed keys per (kid, alg): parsing a JWK costs more than verifying with it
        self._parsed: dict[tuple[str | None, str], jwt.PyJWK] = {}
        #: sha256(token) -> (claims, valid until): a token is verified once, not per request
        self._verified: dict[bytes, tuple[dict[str, Any], float]] = {}
        self._fetched_at: float | None = None  # monotonic time of the last good fetch
        self._last_try = -float("inf")
        self._lock = asyncio.Lock()
        self._prefetch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the session and fetch the keys in the background (a slow IdP must not hold
        up the start; the first token waits for this fetch instead)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT), raise_for_status=True
        )
        self._prefetch = asyncio.create_task(self._refresh())

    async def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.cancel()
        if self._session is not None:
            await self._session.close()

    # ---- the JWKS ------------------------------------------------------------------------

    async def _get_json(self, url: str) -> Any:
        assert self._session is not None, "start() first"
        async with self._session.get(url, headers={"accept": "application/json"}) as resp:
            return await resp.json(content_type=None)

    async def _fetch(self) -> dict[str | None, dict[str, Any]]:
        if self._jwks_url is None:
            issuer = self.settings.issuer.rstrip("/")
            doc = await self._get_json(issuer + "/.well-known/openid-configuration")
            uri = doc.get("jwks_uri") if isinstance(doc, dict) else None
            if not isinstance(uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            self._jwks_url = uri
        data = await self._get_json(self._jwks_url)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError("the JWKS has no 'keys' list")
        keys: dict[str | None, dict[str, Any]] = {}
        for jwk in data["keys"]:
            # signing keys only; a symmetric ("oct") key has no place in a public JWKS
            if isinstance(jwk, dict) and jwk.get("kty") in ("RSA", "EC", "OKP"):
                if jwk.get("use", "sig") == "sig":
                    keys[jwk.get("kid")] = jwk
        return keys

    async def _refresh(self) -> None:
        """Fetch the JWKS unless another fetch just ran (rate limit); keeps the old keys when
        the fetch fails."""
        async with self._lock:
            now = time.monotonic()
            if now - self._last_try < self.min_refetch:
                return
            self._last_try = now
            try:
                self._keys = await self._fetch()
                self._parsed = {}
                self._verified = {}  # a key the IdP withdrew must not keep its tokens alive
                self._fetched_at = time.monotonic()
                log.info("OIDC signing keys fetched", extra={"keys": len(self._keys)})
            except Exception as err:  # the IdP's trouble: logged, the old keys stay
                log.warning(
                    "fetching the OIDC signing keys failed (%s: %s); %s",
                    type(err).__name__,
                    err,
                    "keeping the previous keys" if self._keys else "no keys yet",
                )

    async def _key(self, kid: str | None) -> dict[str, Any] | None:
        if self._prefetch is not None and not self._prefetch.done():
            await asyncio.shield(self._prefetch)
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at > MAX_AGE
        if stale or kid not in self._keys:
            await self._refresh()
        if self._fetched_at is None:
            raise GatewayError(
                "cannot verify the sign-in token: the identity provider's signing keys could "
                "not be fetched; try again shortly",
                status=503,
            )
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # a one-key JWKS may omit kids
        return self._keys.get(kid)

    # ---- verification --------------------------------------------------------------------

    async def verify(self, token: str) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            if time.time() < hit[1]:
                return hit[0]
            del self._verified[digest]
        claims = await self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()  # bounded; refilled by the tokens in use
        self._verified[digest] = (claims, float(claims["exp"]) + self.settings.leeway)
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthenticationFailed("the sign-in token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in s.algorithms:
            why = (
                "'none' and HMAC tokens are never accepted"
                if isinstance(alg, str) and (alg.lower() == "none" or alg.startswith("HS"))
                else f"allowed: {', '.join(s.algorithms)}"
            )
            raise AuthenticationFailed(f"token algorithm {_alg_text(alg)} is refused ({why})")
        kid = header.get("kid")
        jwk = await self._key(kid if isinstance(kid, str) else None)
        if jwk is None:
            raise AuthenticationFailed(
                "token signed by an unknown key: its kid is not in the identity provider's "
                "published keys (JWKS)"
            )
        if jwk.get("kty") != _KTY.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise AuthenticationFailed(f"token algorithm {alg!r} does not fit its signing key")
        try:
            slot = (jwk.get("kid"), alg)
            key = self._parsed.get(slot)
            if key is None:
                key = self._parsed[slot] = jwt.PyJWK(jwk, algorithm=alg)
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("token expired: get a new one from your IdP") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("token is not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed(
                f"token issuer is wrong: this gateway accepts tokens of {s.issuer}"
            ) from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed(
                "token audience is wrong: it was not issued for this gateway"
            ) from None
        except jwt.MissingRequiredClaimError as err:
            raise AuthenticationFailed(f"token lacks the {err.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("token signature does not verify") from None
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            raise AuthenticationFailed(
                f"token algorithm {alg!r} does not fit its signing key"
            ) from None
        except jwt.InvalidTokenError as err:
            raise AuthenticationFailed(f"invalid token ({type(err).__name__})") from None

    def identity(self, claims: dict[str, Any]) -> tuple[str, list[str]]:
        """(user, groups) from verified claims; 401 when the user claim is missing."""
        s = self.settings
        user = claims.get(s.user_claim)
        if not isinstance(user, str | int) or isinstance(user, bool) or str(user) == "":
            raise AuthenticationFailed(f"token has no {s.user_claim!r} claim to name the user")
        raw = claims.get(s.groups_claim)
        if isinstance(raw, str):
            raw = raw.split()  # some IdPs send one space-separated string
        groups: list[str] = []
        for g in raw if isinstance(raw, list) else ():
            if isinstance(g, dict):  # SCIM-style [{"name": ..., "id": ...}]
                g = g.get("name") or g.get("display")
            if isinstance(g, str) and g:
                groups.append(g)
        return str(user)[:256], groups
