"""Fixtures of the emulator tests: one signing key pair (and a second, unregistered one), one
emulator for the package, reset before each test, and ``chat`` to POST a signed ChatDetails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from emulator import CHAT_PATH, FakeOCI, TestKey, make_test_key
from tests.emulator.wire import Result, make_signer, send, signed_headers


@pytest.fixture(scope="package")
def key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    return make_test_key(tmp_path_factory.mktemp("oci-key"))


@pytest.fixture(scope="package")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    return make_test_key(tmp_path_factory.mktemp("other-key"))


@pytest.fixture(scope="package")
def signer(key: TestKey) -> Any:
    return make_signer(key)


@pytest.fixture(scope="package")
def server(key: TestKey):
    with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOCI) -> FakeOCI:
    server.reset()
    return server


@pytest.fixture
def chat(fake: FakeOCI, signer: Any) -> Callable[..., Result]:
    """POST a signed ChatDetails dict to the fake's chat endpoint."""

    def post(body: dict | bytes, extra_headers: dict[str, str] | None = None) -> Result:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = fake.url + CHAT_PATH
        return send("POST", url, raw, signed_headers(signer, url, raw, extra_headers))

    return post


