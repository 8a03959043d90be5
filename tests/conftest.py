"""Shared fixtures: one OCI emulator and one gateway per test session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import FakeOCI, TestKey, make_test_key
from tests.harness import GatewayServer, write_config, write_keys


@pytest.fixture(scope="session")
def oci_key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    return make_test_key(tmp_path_factory.mktemp("oci-key"))


@pytest.fixture(scope="session")
def fake_session(oci_key: TestKey) -> Iterator[FakeOCI]:
    with FakeOCI(public_keys={oci_key.key_id: oci_key.public_pem}) as fake:
        yield fake


@pytest.fixture()
def fake(fake_session: FakeOCI) -> FakeOCI:
    fake_session.reset()
    return fake_session


@pytest.fixture(scope="session")
def gateway(fake_session: FakeOCI, oci_key: TestKey,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("gateway")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          keys_file=write_keys(directory))
    with GatewayServer(config) as server:
        yield server
