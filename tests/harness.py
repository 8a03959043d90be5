"""Test harness: run the real gateway (uvicorn, in a thread) against the OCI emulator.

Contract: :class:`GatewayServer` starts ``app.main.create_app`` on 127.0.0.1 at a free port with a
config file written by :func:`write_config`, waits until it answers, and stops it. Everything
goes over real HTTP: tests talk to ``server.url`` (metrics: ``server.metrics_url``, their own
port) and the gateway talks to ``fake.url``.
The pieces the benchmark and the soak script share (ports, fixtures path, the config writer
and its model catalog) live in :mod:`devtools` and are re-exported here, so a test imports its
helpers from one place.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import uvicorn
import yaml

from app.main import create_app
from app.settings import Settings
from devtools import FIXTURES
from devtools.config import TEST_MODELS, write_config
from devtools.procs import free_port, free_ports

ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789"

STYLE_MODELS = {"llama": "llama", "openai": "gpt-oss", "grok": "grok", "gemini": "gemini",
                "cohere": "cohere"}



def metric(metrics_url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` on a Prometheus page whose labels include ``labels``
    (``name`` exactly: ``_created``/``_bucket`` siblings do not count)."""
    total = 0.0
    for line in httpx.get(metrics_url).text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total

def sdk(gateway: GatewayServer, key: str = ALICE) -> anthropic.Anthropic:
    """The official SDK (2.x: the key goes out as Authorization: Bearer), no retries."""
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def as_request(cls: Any, data: dict[str, Any]) -> Any:
    """A request model from a dict, through its JSON: what the gateway parses."""
    from app.anthropic.decode import decode_request

    return decode_request(orjson.dumps(data), cls)


def fixture_body(name: str, model: str) -> dict[str, Any]:
    """A recorded client request's body, aimed at ``model``."""
    body = orjson.loads((FIXTURES / name).read_bytes())["body"]
    return {**body, "model": model}


def chat(fake: Any) -> dict[str, Any]:
    """The chatRequest of the last OCI request the emulator received."""
    return fake.requests[-1].body["chatRequest"]  # type: ignore[no-any-return]


def write_keys(directory: Path) -> Path:
    path = directory / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [
        {"id": "alice", "key": ALICE},
        {"id": "bob", "sha256": hashlib.sha256(BOB.encode()).hexdigest()},
    ]}))
    return path


class GatewayServer:
    def __init__(self, config_path: Path, *, reload_interval: float = 0.2) -> None:
        port, metrics_port = free_ports(2)  # distinct: picked one by one, they may collide
        self.settings = Settings(config=str(config_path), host="127.0.0.1", port=port,
                                 metrics_port=metrics_port, reload_interval=reload_interval,
                                 log_level="INFO")
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.settings.port, loop="uvloop",
            http="httptools", log_config=None, access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.settings.port}"
        #: the Prometheus exposition: its own port, never the API's
        self.metrics_url = f"http://127.0.0.1:{self.settings.metrics_port}/metrics"
        self._client: httpx.Client | None = None

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                raise RuntimeError("the gateway did not start (see the log above)")
            time.sleep(0.02)
        raise RuntimeError("the gateway did not start within 15 s")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post(self, path: str, body: Any, key: str | None = ALICE, **kw: Any) -> httpx.Response:
        headers = {"anthropic-version": "2023-06-01", **kw.pop("headers", {})}
        if key:
            headers.setdefault("x-api-key", key)
        if self._client is None:  # one pooled client: a new one per call costs ~40 ms
            self._client = httpx.Client(timeout=30)
        return self._client.post(self.url + path, json=body, headers=headers, **kw)


__all__ = [
    "ALICE",
    "BOB",
    "FIXTURES",
    "STYLE_MODELS",
    "TEST_MODELS",
    "GatewayServer",
    "chat",
    "fixture_body",
    "free_port",
    "sdk",
    "write_config",
    "write_keys",
]
