"""Model lifecycle: the ``model-retirement-info`` header (logged, counted, shown in ``GET
/v1/models``), ListModels through the gateway's signer (paginated), the lifecycle warnings, and
the CLI (``python -m app models``, ``check --models``) against the emulator, which marks the
xAI models it serves deprecated (emulator/README.md, RW §6)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.__main__ import main
from app.config import load_config, parse_config
from app.oci.auth import build_auth
from app.oci.client import OciClient
from app.oci.models_api import OciModel, lifecycle_warnings, list_models, management_url, table
from emulator import FakeOCI, TestKey
from tests.harness import GatewayServer, metric, write_config

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _row(name: str, **kw: str) -> OciModel:
    return OciModel.from_summary({"id": f"ocid1.generativeaimodel.oc1..{name}", "displayName": name,
                                  "vendor": name.split(".")[0], "version": "1",
                                  "capabilities": ["CHAT"], "lifecycleState": "ACTIVE", **kw})


def _config(**models: str) -> object:
    return parse_config({"oci": {"region": "us-chicago-1", "compartment_id": "ocid1.c"},
                         "models": {n: {"model_id": m} for n, m in models.items()}})


# --------------------------------------------------------------------------- pure

def test_lifecycle_warnings_name_each_problem() -> None:
    config = _config(a="x.current", b="x.gone", c="x.deprecated", d="x.retired", e="x.soon",
                     f="x.failed", g="ocid1.generativeaimodel.oc1..x.current")
    rows = [_row("x.current"),
            _row("x.deprecated", timeDeprecated="2026-05-15T00:00:00.000Z",
                 timeOnDemandRetired="2026-09-01T00:00:00Z"),
            _row("x.retired", timeDeprecated="2025-01-01T00:00:00Z",
                 timeOnDemandRetired="2026-01-01T00:00:00Z"),
            _row("x.soon", timeDeprecated="2026-07-01T00:00:00Z"),
            _row("x.failed", lifecycleState="FAILED")]
    assert lifecycle_warnings(config, rows, NOW) == [  # type: ignore[arg-type]
        "b: x.gone is not offered for CHAT in this region",
        "c: x.deprecated is deprecated since 2026-05-15T00:00:00.000Z; on-demand retirement "
        "2026-09-01T00:00:00Z",
        "d: x.retired was retired for on-demand use on 2026-01-01T00:00:00Z",
        "e: x.soon will be deprecated on 2026-07-01T00:00:00Z",
        "f: x.failed is FAILED",
    ]


def test_management_url_and_table() -> None:
    config = _config(a="x.current")
    assert management_url(config) == "https://generativeai.us-chicago-1.oci.oraclecloud.com"  # type: ignore[arg-type]
    with_endpoint = parse_config({"oci": {"endpoint": "http://127.0.0.1:1", "compartment_id": "c"},
                                  "models": {"a": {"model_id": "x"}}})
    assert management_url(with_endpoint) == "http://127.0.0.1:1"  # one endpoint for both APIs
    text = table([_row("x.b", timeDeprecated="2026-05-15T00:00:00.000Z"), _row("x.a")])
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["model", "vendor", "version", "capabilities", "state"]
    assert lines[1].startswith("x.a") and "2026-05-15" in lines[2] and "ACTIVE" in lines[2]


# --------------------------------------------------------------------------- against the emulator

def test_list_models_signed_and_paginated(fake: FakeOCI, oci_key: TestKey,
                                          tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, fake.url, oci_key.config_path))

    async def run() -> tuple[list[OciModel], list[OciModel]]:
        client = OciClient(build_auth(config.oci), config.oci)
        await client.start()
        try:
            return (await list_models(client, config),
                    await list_models(client, config, page_size=3))
        finally:
            await client.close()

    whole, paged = asyncio.run(run())
    assert len(whole) > 10 and paged == whole
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 1 + -(-len(whole) // 3)  # every page, each signed (the emulator checks)
    assert all(r.status == 200 and "capability=CHAT" in r.path for r in gets)
    grok = next(m for m in whole if m.display_name == "xai.grok-4")
    assert grok.time_deprecated and "CHAT" in grok.capabilities and grok.lifecycle_state == "ACTIVE"


def test_cli_models_and_check_models(fake: FakeOCI, oci_key: TestKey, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    models = {"grok": {"model_id": "xai.grok-4"},
              "llama": {"model_id": "meta.llama-3.3-70b-instruct"},
              "ghost": {"model_id": "xai.grok-9-imaginary"}}
    config = write_config(tmp_path, fake.url, oci_key.config_path, models=models, aliases={})
    assert main(["models", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("model ") and "xai.grok-4 " in out
    assert "meta.llama-3.3-70b-instruct" in out
    fake.reset()
    assert main(["check", "--config", str(config)]) == 0  # offline: no GET
    assert not [r for r in fake.requests if r.method == "GET" and "/models" in r.path]
    capsys.readouterr()
    assert main(["check", "--models", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "warning: ghost: xai.grok-9-imaginary is not offered for CHAT in this region" in out
    assert "warning: grok: xai.grok-4 is deprecated since" in out
    assert "llama:" not in "".join(line for line in out.splitlines() if "warning" in line)
    assert "ListModels: " in out


def test_check_models_fails_when_list_models_fails(oci_key: TestKey, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # nothing listens on port 9 of loopback: ListModels cannot be reached
    config = write_config(tmp_path, "http://127.0.0.1:9", oci_key.config_path)
    assert main(["check", "--models", "--config", str(config)]) == 1
    assert "error: ListModels at http://127.0.0.1:9 failed" in capsys.readouterr().out


@pytest.fixture(scope="module")
def lifecycle_gw(fake_session: FakeOCI, oci_key: TestKey,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("lifecycle")
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          aliases={"claude-opus-4": "grok", "claude-*": "grok"})
    with GatewayServer(config) as gw:
        yield gw


def test_retirement_header_is_counted_and_shown_in_models(lifecycle_gw: GatewayServer,
                                                          fake: FakeOCI) -> None:
    def listed() -> dict[str, dict[str, object]]:
        got = httpx.get(lifecycle_gw.url + "/v1/models?limit=100",
                        headers={"anthropic-version": "2023-06-01"})
        assert got.status_code == 200, got.text
        return {m["id"]: m for m in got.json()["data"]}

    before = listed()
    assert "retirement_info" not in before["grok"]
    for stream in (False, True):
        r = lifecycle_gw.post("/v1/messages", {
            "model": "grok", "max_tokens": 10, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
    assert fake.requests[-1].status == 200
    after = listed()
    assert after["grok"]["deprecated"] is True
    assert "xai.grok-4" in str(after["grok"]["retirement_info"])
    assert after["claude-opus-4"]["retirement_info"] == after["grok"]["retirement_info"]
    assert "retirement_info" not in after["llama"]
    assert metric(lifecycle_gw.metrics_url, "gateway_model_retirement_notice", model="grok",
                   oci_model="xai.grok-4") == 1


def test_notices_log_once_per_model_and_text(caplog: pytest.LogCaptureFixture) -> None:
    from app.service.lifecycle import RetirementNotices

    notices = RetirementNotices()
    with caplog.at_level("WARNING", logger="app.service.lifecycle"):
        for _ in range(3):
            notices.note("grok", "xai.grok-4", "retires 2026-09-01")
        notices.note("grok", "xai.grok-4", "retires 2026-10-01")  # OCI changed its mind
    assert len(caplog.records) == 2
    notice = notices.get("xai.grok-4")
    assert notice is not None and notice.text == "retires 2026-10-01" and notice.model == "grok"
    assert notices.get("meta.llama") is None
