"""Throw-away OCI API signing keys for tests.

Contract: ``make_test_key(directory)`` creates an RSA-2048 key pair and writes, inside
``directory``: ``key.pem`` (private key, PKCS#8 PEM, unencrypted), ``public.pem``
(SubjectPublicKeyInfo PEM) and ``config`` (an OCI CLI/SDK config file with a ``[DEFAULT]``
profile pointing at ``key.pem``). The returned ``TestKey`` carries the paths, the OCI key
fingerprint (MD5 of the DER SubjectPublicKeyInfo, colon-separated lowercase hex — what OCI
shows in the console) and the ``keyId`` the SDK signer will send (``tenancy/user/fingerprint``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TEST_TENANCY = "ocid1.tenancy.oc1..test"
TEST_USER = "ocid1.user.oc1..test"
TEST_REGION = "us-chicago-1"


@dataclass(frozen=True)
class TestKey:
    """Files and identifiers of one generated key pair."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    private_key_path: Path
    public_key_path: Path
    config_path: Path
    fingerprint: str
    key_id: str
    public_pem: str
    tenancy: str = TEST_TENANCY
    user: str = TEST_USER
    region: str = TEST_REGION
    profile: str = "DEFAULT"


def fingerprint_of(public_key: rsa.RSAPublicKey) -> str:
    """OCI key fingerprint: MD5 over the DER SubjectPublicKeyInfo, colon-hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _config_text(fingerprint: str, key_path: Path, region: str) -> str:
    return (
        "[DEFAULT]\n"
        f"user={TEST_USER}\n"
        f"fingerprint={fingerprint}\n"
        f"tenancy={TEST_TENANCY}\n"
        f"region={region}\n"
        f"key_file={key_path}\n"
    )


def make_test_key(directory: str | Path, region: str = TEST_REGION) -> TestKey:
    """Generate a key pair and an OCI config file in ``directory`` (created if missing)."""
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_path, pub_path, config_path = root / "key.pem", root / "public.pem", root / "config"
    key_path.write_bytes(private_pem)
    key_path.chmod(0o600)  # the OCI SDK warns about group/world-readable keys
    pub_path.write_bytes(public_pem)
    fingerprint = fingerprint_of(private_key.public_key())
    config_path.write_text(_config_text(fingerprint, key_path, region))
    return TestKey(
        directory=root,
        private_key_path=key_path,
        public_key_path=pub_path,
        config_path=config_path,
        fingerprint=fingerprint,
        key_id=f"{TEST_TENANCY}/{TEST_USER}/{fingerprint}",
        public_pem=public_pem.decode("ascii"),
        region=region,
    )
