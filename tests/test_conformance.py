"""``python -m app conformance`` as a user runs it: a subprocess against the OCI emulator.

- every family of the test config (tests/harness.py TEST_MODELS) passes every scenario that
  applies to it, the matrix is complete, and ``--record`` writes format-1 cassettes with the
  compartment OCID and the Claude Code turn's tool results redacted and no signature;
- those cassettes, replayed by ``python -m emulator --replay DIR``, give the same matrix;
- an upstream error for one model is exit 1, with OCI's status, message and opc-request-id in
  the JSON and in the text matrix;
- bad ``--model`` / ``--skip`` values are exit 1 before anything is sent.

The emulator answers every prompt with a default text, so the scenarios whose check needs a
particular answer (a tool call, JSON, a reasoning block) are scripted with queued scenarios
matched on the scenario's prompt, one per model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.conformance.scenarios import NAMES, _fixture, tool_result_texts
from devtools.procs import EmulatorProcess
from emulator import FakeOCI, Scenario, TestKey, tool_call
from tests.harness import TEST_MODELS, write_config

#: cells that may fail today because of a known gateway gap, and then only with OCI's error.
#: Remove an entry once its rule is in the catalog (Gemini's tool-history cells: the profile
#: table's pair_tool_calls / tool_only_text_part).
KNOWN_GAPS: set[tuple[str, str]] = set()
VISION = {m for m, spec in TEST_MODELS.items() if "vision" in spec["capabilities"]}


def script(fake: FakeOCI, models: list[str]) -> None:
    for _ in models:
        fake.push(Scenario(tool_calls=[tool_call("get_weather", {"city": "Lisbon"})],
                           match="weather in Lisbon"))
        fake.push(Scenario(text='{"city": "Paris", "country": "France"}',
                           match="capital of France"))
        fake.push(Scenario(reasoning="17 times 23 is 391", text="391", match="17 times 23"))


def conformance(config: Path, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "app", "conformance", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def cells(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["model"], r["scenario"]): r for r in run["results"]}


def check_matrix(run: dict[str, Any]) -> None:
    assert run["models"] == list(TEST_MODELS) and run["scenarios"] == list(NAMES)
    matrix = cells(run)
    assert len(matrix) == len(TEST_MODELS) * len(NAMES)
    for (model, scenario), cell in matrix.items():
        if scenario == "image" and model not in VISION:
            assert cell["status"] == "skip" and "vision" in cell["detail"]
        elif (model, scenario) == ("tiny", "claude_code"):  # 1,000-token window
            assert cell["status"] == "skip" and "context_window 1000" in cell["detail"]
        elif (model, scenario) in KNOWN_GAPS and cell["status"] == "fail":
            assert cell["oci_error"]["status"] in (400, 500), cell
        else:
            assert cell["status"] == "pass", cell
            assert cell["oci_requests"] >= 1


def test_every_family_passes_records_cassettes_and_replays_them(
    fake: FakeOCI, oci_key: TestKey, tmp_path: Path
) -> None:
    script(fake, list(TEST_MODELS))
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    cassettes = tmp_path / "cassettes"
    code, out, err = conformance(config, "--json", "--record", str(cassettes))
    run = json.loads(out)
    check_matrix(run)
    assert code == (0 if run["counts"]["fail"] == 0 else 1), err
    assert run["cassettes"]["files"] == len(fake.requests)

    files = sorted(cassettes.glob("*.json"))
    assert len(files) == len(fake.requests)
    private = tool_result_texts(_fixture())
    assert private == ["hello-from-stub"]
    for path in files:
        text = path.read_text()
        data = json.loads(text)
        assert data["format"] == 1 and data["request"]["path"] == "/20231130/actions/chat"
        assert data["request"]["body"]["compartmentId"] == "ocid1.compartment.oc1..redacted"
        assert "ocid1.compartment.oc1..test" not in text
        assert "Signature" not in text and "authorization" not in text.lower()
        if data["response"]["status"] == 200:
            stream = data["request"]["body"]["chatRequest"].get("isStream", False)
            assert ("events" in data["response"]) == stream
        assert "hello-from-stub" not in text
        if data["request"]["scenario"] == "claude_code":
            assert data["request"]["redacted"][0]["chars"] == len(private[0])
            assert "<redacted text: 15 chars, sha256" in text

    # the redacted cassettes replay as they are: each mark matches the text it blanked
    workdir = tmp_path / "replay"
    workdir.mkdir()
    with EmulatorProcess(workdir, public_key=oci_key.public_key_path,
                         args=["--replay", str(cassettes)]) as emu:
        replay_config = write_config(workdir, emu.url, oci_key.config_path)
        code, out, err = conformance(replay_config, "--json")
        replayed = json.loads(out)
        misses = [r for r in emu.requests() if r.get("status") == 404]
    assert not misses, misses[:1]
    assert {k: c["status"] for k, c in cells(replayed).items()} == {
        k: c["status"] for k, c in cells(run).items()}


def test_an_upstream_error_is_exit_1_with_the_oci_error(
    fake: FakeOCI, oci_key: TestKey, tmp_path: Path
) -> None:
    rejection = {"status": 400, "code": "InvalidParameter",
                 "message": "conformance: scripted rejection"}
    fake.push(Scenario(error=rejection, match="single word: pong"))
    fake.push(Scenario(error=rejection, match="single word: pong"))
    script(fake, ["llama"])
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    code, out, err = conformance(config, "--model", "llama", "--json")
    assert code == 1, err
    run = json.loads(out)
    assert run["passed"] is False and run["counts"]["fail"] == 1
    failed = cells(run)[("llama", "text")]
    assert failed["status"] == "fail"
    assert "conformance: scripted rejection" in failed["detail"]
    oci = failed["oci_error"]
    assert oci["status"] == 400 and oci["message"] == "conformance: scripted rejection"
    assert oci["opc_request_id"].count("/") == 2  # the emulator's three-segment id
    assert all(c["status"] == "pass" for k, c in cells(run).items() if k[1] not in (
        "text", "image"))

    script(fake, ["llama"])  # the first run took the scripted answers
    code, out, err = conformance(config, "--model", "llama", "--skip", "long_context,claude_code")
    assert code == 1, err
    assert "llama / text: gateway answered HTTP 400" in out
    assert "OCI HTTP 400 (bad_request): conformance: scripted rejection [opc-request-id " in out
    assert out.splitlines()[2].split()[:2] == ["llama", "FAIL"]
    assert "1 failed" in out


def test_bad_arguments_are_exit_1_before_anything_is_sent(
    fake: FakeOCI, oci_key: TestKey, tmp_path: Path
) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path)
    code, _, err = conformance(config, "--model", "nope")
    assert code == 1 and "--model: nope not in the config" in err
    code, _, err = conformance(config, "--skip", "text,bogus")
    assert code == 1 and "--skip: unknown scenario(s) bogus" in err
    assert fake.requests == []
