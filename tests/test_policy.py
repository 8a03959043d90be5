"""Teams and keys over HTTP, and closed by default.

A key's effective policy is its team's intersected with its own settings: a model must match
both (403 ``permission_error`` otherwise), the smaller per-minute limit applies (team limits
count per member), a key naming a team the config lacks is refused. With real OCI credentials
(the emulator's ``api_key`` setup) and no client authentication the gateway refuses to start,
under ``python -m app`` and under gunicorn, with a message naming the fix.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools import ROOT
from devtools.procs import child_env
from emulator import FakeOCI, TestKey
from tests.harness import GatewayServer, write_config

BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
CAROL, DAVE, ERIN = "carol-key-0123456789", "dave-key-0123456789", "erin-key-0123456789"
TEAMS = {
    "platform": {"models": ["grok*"], "limits": {"requests_per_minute": 3},
                 "budget": {"usd_per_month": 100}},
    "research": {},
}


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gw(fake_session: FakeOCI, oci_key: TestKey,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("policy")
    keys = directory / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [
        # the team allows grok*, the key grok and llama: only grok is in both
        {"id": "carol", "sha256": _sha(CAROL), "team": "platform", "models": ["grok", "llama"],
         "requests_per_minute": 100, "budget": {"usd_per_day": 5}},
        {"id": "dave", "sha256": _sha(DAVE), "team": "no-such-team"},
        {"id": "erin", "sha256": _sha(ERIN), "team": "research", "models": ["gemini", "tiny"]},
    ]}))
    config = write_config(directory, fake_session.url, oci_key.config_path, keys_file=keys,
                          teams=TEAMS)
    with GatewayServer(config) as server:
        yield server


def test_models_are_the_intersection_of_team_and_key(gw: GatewayServer) -> None:
    assert gw.post("/v1/messages", BODY, key=CAROL).status_code == 200
    for model in ("grok-fast", "llama"):  # the key lacks grok-fast, the team lacks llama
        r = gw.post("/v1/messages", {**BODY, "model": model}, key=CAROL)
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["type"] == "permission_error"
        assert err["message"] == f"API key 'carol' (team 'platform') may not use model {model!r}"
    # a team without models restricts nothing: the key's own list applies
    assert gw.post("/v1/messages", {**BODY, "model": "gemini"}, key=ERIN).status_code == 200
    assert gw.post("/v1/messages", {**BODY, "model": "grok"}, key=ERIN).status_code == 403
    # aliases resolve first: claude-* -> grok, allowed for carol
    assert gw.post("/v1/messages", {**BODY, "model": "claude-x"}, key=CAROL).status_code == 200


def test_the_smaller_limit_applies_and_unknown_teams_fail_closed(gw: GatewayServer) -> None:
    statuses = [gw.post("/v1/messages", BODY, key=CAROL).status_code for _ in range(5)]
    assert statuses.count(200) <= 3 and statuses[-1] == 429  # the team's 3/min, not 100/min
    r = gw.post("/v1/messages", BODY, key=DAVE)
    assert r.status_code == 403 and "which the gateway's config does not define" in r.text


def _start(args: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    env = child_env({"GATEWAY_CONFIG": str(config), "GATEWAY_HOST": "127.0.0.1",
                     "GATEWAY_PORT": "0", "GATEWAY_METRICS_PORT": "0",
                     "PROMETHEUS_MULTIPROC_DIR": str(config.parent / "prom")})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("server", [["-m", "app"],
                                    ["-m", "gunicorn", "-c", "python:app.gunicorn_conf",
                                     "--no-control-socket"]])
def test_real_credentials_without_client_auth_refuse_to_start(
        fake: FakeOCI, oci_key: TestKey, tmp_path: Path, server: list[str]) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path, client_auth={})
    done = _start(server, config)
    assert done.returncode == 1
    assert "no client authentication is configured" in done.stderr
    assert "allow_anonymous" in done.stderr and "api_keys_file" in done.stderr
    # check says so too
    checked = _start(["-m", "app", "check"], config)
    assert checked.returncode == 1 and "client_auth.oidc" in checked.stderr


def test_allow_anonymous_stands_alone(fake: FakeOCI, oci_key: TestKey, tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path,
                          client_auth={"allow_anonymous": True, "api_keys_file": "/x"})
    checked = _start(["-m", "app", "check"], config)
    assert checked.returncode == 1 and "cannot be combined" in checked.stderr
    bad = write_config(tmp_path, fake.url, oci_key.config_path,
                       teams={"t": {"models": ["no-such-model"]}})
    checked = _start(["-m", "app", "check"], bad)
    assert checked.returncode == 1 and "teams.t.models" in checked.stderr
