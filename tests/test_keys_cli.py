"""``python -m app keys create|list|revoke|rotate`` as an operator runs it, against a gateway.

Each command runs as a real subprocess. The file it writes holds digests only; ``create`` and
``rotate`` print the key once, alone on the last line; ``--secret`` prints a Kubernetes Secret
and leaves the file alone. A running gateway (``python -m app``) picks every change up on its
reload check: a created key works, a rotated one's old secret and a revoked one get 401, an
expired one gets 401 saying it expired (and not which key).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from devtools import ROOT
from devtools.procs import GatewayProcess, child_env
from emulator import FakeOCI, TestKey
from tests.harness import write_config, write_keys

BODY = {"model": "grok", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def keys(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "app", "keys", *args], cwd=ROOT,
                          env=child_env(), capture_output=True, text=True, timeout=60)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _status(url: str, key: str) -> int:
    return httpx.post(url + "/v1/messages", json=BODY, headers={"x-api-key": key},
                      timeout=30).status_code


def _until(url: str, key: str, status: int) -> None:
    """Poll (bounded) until the gateway's reload makes ``key`` answer ``status``."""
    deadline = time.monotonic() + 15
    while _status(url, key) != status:
        assert time.monotonic() < deadline, f"key never got {status}"
        time.sleep(0.1)


def test_create_list_rotate_revoke_and_the_secret_manifest(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    made = keys("create", "alice", "--file", str(path), "--owner", "alice@example.com",
                "--team", "platform", "--days", "30", "--models", "grok,llama-*", "--rpm", "60",
                "--usd-per-month", "25")
    key = made.stdout.splitlines()[-1]
    assert key.startswith("ocigw-") and " " not in key and key.count(".") == 0
    text = path.read_text()
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() in text
    (entry,) = yaml.safe_load(text)["keys"]
    assert entry["owner"] == "alice@example.com" and entry["team"] == "platform"
    assert entry["budget"] == {"usd_per_month": 25.0} and entry["requests_per_minute"] == 60
    assert entry["expires"].endswith("Z") and set(entry) >= {"id", "sha256"}
    assert path.stat().st_mode & 0o077 == 0  # 0600

    listing = keys("list", "--file", str(path)).stdout
    assert "alice@example.com" in listing and "grok,llama-*" in listing
    assert "usd_per_month=25" in listing and hashlib.sha256(key.encode()).hexdigest() not in listing

    assert "exists already" in keys("create", "alice", "--file", str(path), ok=False).stderr
    assert "RFC 3339" in keys("create", "bob", "--file", str(path), "--expires", "soon",
                              ok=False).stderr

    rotated = keys("rotate", "alice", "--file", str(path)).stdout.splitlines()[-1]
    assert rotated != key and hashlib.sha256(rotated.encode()).hexdigest() in path.read_text()
    assert yaml.safe_load(path.read_text())["keys"][0]["owner"] == "alice@example.com"

    before = path.read_text()
    secret = keys("create", "bob", "--file", str(path), "--secret", "gw-keys",
                  "--namespace", "genai")
    manifest = yaml.safe_load(secret.stdout)
    assert manifest["kind"] == "Secret" and manifest["metadata"]["namespace"] == "genai"
    inside = yaml.safe_load(manifest["stringData"]["keys.yaml"])["keys"]
    assert [k["id"] for k in inside] == ["alice", "bob"]
    bob = secret.stderr.splitlines()[-1]  # the key goes to stderr: stdout is the manifest
    assert bob.startswith("ocigw-") and bob not in secret.stdout
    assert path.read_text() == before  # --secret writes no file

    keys("revoke", "alice", "--file", str(path))
    assert yaml.safe_load(path.read_text())["keys"] == []
    assert "no key with id" in keys("revoke", "alice", "--file", str(path), ok=False).stderr


def test_plaintext_entries_become_digests_on_the_first_write(tmp_path: Path) -> None:
    path = write_keys(tmp_path)  # alice has a plaintext key
    done = keys("create", "carol", "--file", str(path))
    assert "turned 1 plaintext key(s) into SHA-256 digests" in done.stdout
    assert all("key" not in e for e in yaml.safe_load(path.read_text())["keys"])


def test_the_running_gateway_follows_the_cli(fake: FakeOCI, oci_key: TestKey,
                                             tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    first = keys("create", "ops", "--file", str(path)).stdout.splitlines()[-1]
    config = write_config(tmp_path, fake.url, oci_key.config_path, keys_file=path)
    with GatewayProcess(config, tmp_path) as gw:
        assert _status(gw.url, first) == 200
        # the file comes from the config's client_auth.api_keys_file
        dev = keys("create", "dev", "--config", str(config)).stdout.splitlines()[-1]
        _until(gw.url, dev, 200)
        new = keys("rotate", "dev", "--config", str(config)).stdout.splitlines()[-1]
        _until(gw.url, dev, 401)
        assert _status(gw.url, new) == 200
        keys("revoke", "dev", "--config", str(config))
        _until(gw.url, new, 401)
        old = keys("create", "old", "--config", str(config), "--expires",
                   "2020-01-01T00:00:00Z").stdout.splitlines()[-1]
        deadline = time.monotonic() + 15
        while True:
            r = httpx.post(gw.url + "/v1/messages", json=BODY, headers={"x-api-key": old})
            if "expired" in r.text or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        message = r.json()["error"]["message"]
        assert "expired" in message and "'old'" not in message  # not which key
        assert _status(gw.url, first) == 200  # the other keys never stopped working
