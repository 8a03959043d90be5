"""Company sign-in over HTTP: a real JWKS server on 127.0.0.1, tokens minted here.

The IdP is an ``http.server`` in a thread serving the discovery document and the JWKS (keys the
test can rotate; it counts the JWKS fetches). Keys are generated with ``cryptography`` (RSA and
EC P-256); tokens are signed with PyJWT, and the forged ones (``alg: none``, HS256 keyed with
the public key) are assembled by hand. Every case goes through the gateway: 200, or 401
``authentication_error`` whose message says what is wrong and never holds the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from emulator import FakeOCI, TestKey
from tests.harness import ALICE, GatewayServer, free_port, sdk, write_config, write_keys

AUD = "oci-gateway"
BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


class Idp:
    """Discovery + JWKS on 127.0.0.1; ``publish`` replaces the key set (rotation)."""

    def __init__(self) -> None:
        self.jwks: list[dict[str, Any]] = []
        self.fetches = 0
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/keys"}
                elif self.path == "/keys":
                    idp.fetches += 1
                    body = {"keys": idp.jwks}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, *keys: SigningKey) -> None:
        self.jwks = [k.jwk for k in keys]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SigningKey:
    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        if kind == "RSA":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "use": "sig", "alg": self.alg}
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, issuer: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "aud": AUD, "sub": "dev@example.com", "iat": now,
                   "exp": now + 300, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers={"kid": self.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = b"" if secret is None else hmac.new(secret, signing_input.encode(),
                                               hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    server = Idp()
    yield server
    server.close()


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"rsa": SigningKey("rsa-1"), "ec": SigningKey("ec-1", "EC"),
            "rogue": SigningKey("rogue-1"), "next": SigningKey("rsa-2")}


@pytest.fixture(scope="module")
def gw(idp: Idp, keys: dict[str, SigningKey], fake_session: FakeOCI, oci_key: TestKey,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    idp.publish(keys["rsa"], keys["ec"])
    directory = tmp_path_factory.mktemp("oidc")
    config = write_config(
        directory, fake_session.url, oci_key.config_path,
        client_auth={"api_keys_file": str(write_keys(directory)),
                     "oidc": {"issuer": idp.issuer, "audience": AUD, "user_claim": "sub",
                              "jwks_min_refetch": 0.5}},
        teams={"platform": {"models": ["grok*"], "oidc_groups": ["eng"]}})
    with GatewayServer(config) as server:
        yield server


def _post(gw: GatewayServer, credential: str, model: str = "grok",
          bearer: bool = False) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01"}
    headers["authorization" if bearer else "x-api-key"] = (
        f"Bearer {credential}" if bearer else credential)
    return httpx.post(gw.url + "/v1/messages", json={**BODY, "model": model},
                      headers=headers, timeout=30)


def _refused(r: httpx.Response, token: str, needle: str) -> None:
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["type"] == "authentication_error"
    assert needle in err["message"], err["message"]
    assert token not in r.text and token.split(".")[1] not in r.text  # never echoed


def test_valid_tokens_from_rsa_and_ec_keys_are_accepted(
        gw: GatewayServer, idp: Idp, keys: dict[str, SigningKey]) -> None:
    rsa_token = keys["rsa"].token(idp.issuer)
    assert _post(gw, rsa_token).status_code == 200  # x-api-key
    assert _post(gw, rsa_token, bearer=True).status_code == 200  # Authorization: Bearer
    assert _post(gw, keys["ec"].token(idp.issuer)).status_code == 200
    # what Claude Code's apiKeyHelper does: the same value in both headers (the SDK: Bearer)
    reply = sdk(gw, key=rsa_token).messages.create(**BODY)  # type: ignore[arg-type]
    assert reply.content[0].type == "text"
    # keys work alongside tokens
    assert _post(gw, ALICE).status_code == 200


@pytest.mark.parametrize(("case", "claims", "needle"), [
    ("expired", {"exp": -120}, "expired"),
    ("not yet valid", {"nbf": 600}, "not yet valid"),
    ("wrong issuer", {"iss": "https://evil.example"}, "issuer is wrong"),
    ("wrong audience", {"aud": "another-app"}, "audience is wrong"),
    ("no exp", {"exp": None}, "'exp'"),
])
def test_bad_claims_are_refused_saying_why(gw: GatewayServer, idp: Idp,
                                           keys: dict[str, SigningKey], case: str,
                                           claims: dict[str, Any], needle: str) -> None:
    now = int(time.time())
    for name in ("exp", "nbf"):
        if isinstance(claims.get(name), int):
            claims = {**claims, name: now + claims[name]}
    token = keys["rsa"].token(idp.issuer, **claims)
    _refused(_post(gw, token), token, needle)


def test_leeway_tolerates_small_clock_skew(gw: GatewayServer, idp: Idp,
                                           keys: dict[str, SigningKey]) -> None:
    now = int(time.time())
    assert _post(gw, keys["rsa"].token(idp.issuer, exp=now - 20)).status_code == 200
    assert _post(gw, keys["rsa"].token(idp.issuer, nbf=now + 20)).status_code == 200


def test_unknown_key_none_and_hmac_confusion_are_refused(
        gw: GatewayServer, idp: Idp, keys: dict[str, SigningKey]) -> None:
    rogue = keys["rogue"].token(idp.issuer)
    _refused(_post(gw, rogue), rogue, "unknown key")
    payload = {"iss": idp.issuer, "aud": AUD, "sub": "mallory", "exp": int(time.time()) + 300}
    none = _forged({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, payload, None)
    _refused(_post(gw, none), none, "'none' and HMAC tokens are never accepted")
    # the classic confusion: HS256 keyed with the (public!) RSA key the JWKS publishes
    hs = _forged({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, payload,
                 keys["rsa"].public_pem)
    _refused(_post(gw, hs), hs, "'none' and HMAC tokens are never accepted")
    # a real RSA signature under the EC key's kid: the key type does not fit the algorithm
    mixed = jwt.encode(payload, keys["rsa"].private, algorithm="RS256",
                       headers={"kid": "ec-1"})
    _refused(_post(gw, mixed), mixed, "does not fit its signing key")
    # a tampered payload under a good header and signature
    good = keys["rsa"].token(idp.issuer).split(".")
    tampered = ".".join([good[0], _b64(json.dumps({**payload, "sub": "root"}).encode()), good[2]])
    _refused(_post(gw, tampered), tampered, "signature does not verify")


def test_a_rotated_key_is_fetched_on_its_first_token(
        gw: GatewayServer, idp: Idp, keys: dict[str, SigningKey]) -> None:
    before = idp.fetches
    idp.publish(keys["next"])  # the IdP rotated: rsa-1 is gone, rsa-2 is new
    _eventually_ok(gw, keys["next"].token(idp.issuer))
    assert idp.fetches > before
    idp.publish(keys["rsa"], keys["ec"])
    _eventually_ok(gw, keys["rsa"].token(idp.issuer))  # and back, for the tests after this one


def _eventually_ok(gw: GatewayServer, token: str) -> None:
    deadline = time.monotonic() + 10
    r = _post(gw, token)
    while r.status_code != 200 and time.monotonic() < deadline:
        # a 401 only while the refetch rate limit (0.5 s here) holds
        assert "unknown key" in r.json()["error"]["message"]
        time.sleep(0.1)
        r = _post(gw, token)
    assert r.status_code == 200, r.text


def test_groups_map_users_to_teams_and_their_models(
        gw: GatewayServer, idp: Idp, keys: dict[str, SigningKey]) -> None:
    eng = keys["rsa"].token(idp.issuer, groups=["eng", "everyone"])
    assert _post(gw, eng, model="grok").status_code == 200
    r = _post(gw, eng, model="llama")  # outside the team's grok* pattern
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert "user 'dev@example.com' (team 'platform')" in r.json()["error"]["message"]
    outsider = keys["rsa"].token(idp.issuer, groups=["sales"])  # no team: no team limits
    assert _post(gw, outsider, model="llama").status_code == 200


def test_unknown_kids_cannot_make_the_gateway_hammer_the_idp(
        idp: Idp, keys: dict[str, SigningKey], fake: FakeOCI, oci_key: TestKey,
        tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          client_auth={"oidc": {"issuer": idp.issuer, "audience": AUD}})
    with GatewayServer(config) as gw:
        assert _post(gw, keys["rsa"].token(idp.issuer)).status_code == 200
        before = idp.fetches
        for i in range(5):
            forged = jwt.encode({"iss": idp.issuer, "aud": AUD, "sub": "x",
                                 "exp": int(time.time()) + 60},
                                keys["rogue"].private, algorithm="RS256",
                                headers={"kid": f"made-up-{i}"})
            assert _post(gw, forged).status_code == 401
        assert idp.fetches - before <= 1  # at most one refetch per 30 s
        # OIDC only: a credential that is not a JWT is refused saying so
        r = _post(gw, ALICE)
        assert r.status_code == 401 and "not a JWT" in r.json()["error"]["message"]


def test_an_unreachable_idp_is_a_503_not_a_401(fake: FakeOCI, oci_key: TestKey,
                                             keys: dict[str, SigningKey],
                                             tmp_path: Path) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          client_auth={"oidc": {"issuer": issuer, "audience": AUD}})
    with GatewayServer(config) as gw:
        r = _post(gw, keys["rsa"].token(issuer))
        assert r.status_code == 503 and r.json()["error"]["type"] == "api_error"
        assert "signing keys could not be fetched" in r.json()["error"]["message"]
