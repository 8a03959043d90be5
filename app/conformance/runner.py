"""``python -m app conformance``: the scenario matrix, through the real gateway, against OCI.

Contract: :func:`main` loads the config (``--config``, default ``$GATEWAY_CONFIG``), builds the
OCI signer (a config or credential problem is exit 1 with the message, nothing is sent), then
starts the gateway itself -- :func:`app.main.create_app` with that config, served by uvicorn on
a free loopback port in a thread -- and sends every scenario of :mod:`.scenarios` to it over
HTTP, one request at a time, for every configured model (``--model NAME``, repeatable, for
some). Each request goes through the whole gateway (parse, translate, sign, retry, answer
translation) to the config's OCI endpoint; the answer is checked by :mod:`.stream_check`.
The OCI client of the running gateway is wrapped by :class:`.record.RecordingClient`, so a
failure is reported with OCI's own error (status, message, opc-request-id), and ``--record
DIR`` writes every exchange as a cassette. It prints the matrix (:mod:`.report`; ``--json``
for JSON) and exits 0 only when no scenario failed (skipped ones do not count).

The gateway under test runs with the user's config with ``client_auth`` replaced by
``allow_anonymous`` (the suite tests the upstream, not the keys; the copy listens only on a
loopback port of its own) and ``limits`` (no shared Redis), without the reload watcher, and with
logging off (its logs go to stdout, where the report goes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import yaml

from app.catalog.spec import ModelSpec
from app.config import ConfigError, GatewayConfig, load_config
from app.conformance import report
from app.conformance.record import RecordingClient, Tap, write_cassettes
from app.conformance.scenarios import NAMES, SCENARIOS, Scenario, Skip
from app.conformance.stream_check import check_message, check_stream
from app.oci.client import OciClient
from app.settings import Settings


class Refused(Exception):
    """The gateway answered with an error (an HTTP error or an ``event: error`` in a stream)."""


class Gateway:
    """The real gateway app on 127.0.0.1, in a thread, with its OCI client tapped."""

    def __init__(self, config_path: str, tap: Tap, timeout: float) -> None:
        data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
        # anonymous on purpose: this copy listens on a private loopback port, only for the suite
        data["client_auth"] = {"allow_anonymous": True}
        data.pop("limits", None)
        self._dir = tempfile.TemporaryDirectory(prefix="conformance-")
        path = Path(self._dir.name) / "gateway.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        settings = Settings(
            config=str(path),
            host="127.0.0.1",
            port=self.port,
            reload_interval=0,
            log_level="CRITICAL",
        )
        import uvicorn

        from app.main import create_app

        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,
                access_log=False,
                lifespan="on",
                loop="uvloop",
                http="httptools",
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.tap = tap
        self.timeout = timeout

    def __enter__(self) -> Gateway:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the gateway did not start (run `python -m app check`)")
            time.sleep(0.02)
        service = self.app.state.gateway
        service.client = cast(OciClient, RecordingClient(service.client, self.tap))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self._sock.close()
        self._dir.cleanup()

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(
                "POST",
                path,
                body=json.dumps(body).encode(),
                headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
            )
            resp = conn.getresponse()
            return resp.status, resp.getheader("content-type") or "", resp.read()
        finally:
            conn.close()


class _Ctx:
    """What a scenario sees (:class:`app.conformance.scenarios.Ctx`)."""

    def __init__(self, gateway: Gateway, model: str, spec: ModelSpec, scenario: str) -> None:
        self.gateway = gateway
        self.model = model
        self.spec = spec
        self.scenario = scenario

    def private(self, texts: list[str]) -> None:
        self.gateway.tap.label(self.model, self.scenario, tuple(texts))

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        status, ctype, raw = self.gateway.post("/v1/messages", body)
        if status != 200:
            raise Refused(f"gateway answered HTTP {status}: {_error_text(raw)}")
        if body.get("stream"):
            if not ctype.startswith("text/event-stream"):
                raise AssertionError(f"a stream was asked for, the answer is {ctype!r}")
            answer = check_stream(raw.decode("utf-8"), allow_error=True)
            if answer["error"]:
                err = answer["error"]
                raise Refused(
                    f"stream ended with event: error: {err.get('type')}: {err.get('message')}"
                )
            return answer
        return check_message(json.loads(raw))

    def count_tokens(self, body: dict[str, Any]) -> int:
        status, _, raw = self.gateway.post("/v1/messages/count_tokens", body)
        if status != 200:
            raise Refused(f"count_tokens answered HTTP {status}: {_error_text(raw)}")
        return int(json.loads(raw)["input_tokens"])


def _error_text(raw: bytes) -> str:
    try:
        err = json.loads(raw)["error"]
        return f"{err['type']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return raw[:300].decode("utf-8", "replace")


def run_one(gateway: Gateway, model: str, spec: ModelSpec, scenario: Scenario) -> dict[str, Any]:
    result: dict[str, Any] = {
        "model": model,
        "scenario": scenario.name,
        "status": "pass",
        "detail": "",
        "oci_error": None,
    }
    t0 = time.perf_counter()
    gateway.tap.label(model, scenario.name)
    try:
        scenario.run(_Ctx(gateway, model, spec, scenario.name))
    except Skip as why:
        result.update(status="skip", detail=str(why))
    except (AssertionError, Refused) as err:
        result.update(status="fail", detail=str(err) or type(err).__name__)
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as err:
        result.update(status="fail", detail=f"{type(err).__name__}: {err}")
    exchanges = gateway.tap.of(model, scenario.name)
    errors = [e.error for e in exchanges if e.error is not None]
    if result["status"] == "fail" and errors:
        result["oci_error"] = errors[-1]
    result["oci_requests"] = len(exchanges)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def run_matrix(
    gateway: Gateway, config: GatewayConfig, models: list[str], skip: set[str]
) -> list[dict[str, Any]]:
    results = []
    for model in models:
        spec = config.models[model]
        for scenario in SCENARIOS:
            if scenario.name in skip:
                results.append(
                    {
                        "model": model,
                        "scenario": scenario.name,
                        "status": "skip",
                        "detail": "--skip",
                        "oci_error": None,
                        "oci_requests": 0,
                        "seconds": 0.0,
                    }
                )
            elif scenario.needs and not spec.has(scenario.needs):
                results.append(
                    {
                        "model": model,
                        "scenario": scenario.name,
                        "status": "skip",
                        "detail": f"no {scenario.needs} capability",
                        "oci_error": None,
                        "oci_requests": 0,
                        "seconds": 0.0,
                    }
                )
            else:
                results.append(run_one(gateway, model, spec, scenario))
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app conformance",
        description="Run the conformance scenarios through the gateway against the configured "
        "OCI upstream. Scenarios: " + ", ".join(NAMES) + ". long_context costs the most tokens "
        "(~90%% of each model's context window, at most ~100k tokens).",
    )
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG)")
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="SCENARIO",
        help="leave a scenario out (repeatable, or comma-separated)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="write every OCI exchange as a redacted cassette into DIR",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    path = args.config or settings.config
    skip = {name.strip() for item in args.skip for name in item.split(",") if name.strip()}
    try:
        config = load_config(path, settings.oci_endpoint)
        models = args.model or list(config.models)
        unknown = [m for m in models if m not in config.models]
        if unknown:
            raise ConfigError(
                f"--model: {', '.join(unknown)} not in the config "
                f"(models: {', '.join(config.models)})"
            )
        if skip - set(NAMES):
            raise ConfigError(
                f"--skip: unknown scenario(s) {', '.join(sorted(skip - set(NAMES)))}"
                f" (scenarios: {', '.join(NAMES)})"
            )
        from app.oci.auth import build_auth

        build_auth(config.oci)  # a credential problem is reported here, before anything is sent
        timeout = max(config.oci.timeouts.first_byte, config.oci.timeouts.idle) + 30
        tap = Tap()
        with Gateway(path, tap, timeout) as gateway:
            results = run_matrix(gateway, config, models, skip)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    cassettes = None
    if args.record is not None:
        cassettes = {
            "directory": str(args.record),
            "files": len(write_cassettes(args.record, tap.exchanges)),
        }
    run = report.summary(results, models, list(NAMES), config.base_url(), cassettes)
    print(report.to_json(run) if args.json else report.to_text(run))
    return 0 if run["passed"] else 1
