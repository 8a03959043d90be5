"""Nothing secret or private reaches the gateway's output, and error bodies reveal no internals.

One full session against a real gateway process (``python -m app``) with a client keys file, an
OCI API-key config whose private key is a throw-away test key, ``GATEWAY_LOG_LEVEL=DEBUG`` and
the OpenTelemetry console exporter on (spans printed to stdout too). Traffic: JSON and streamed
successes (x-api-key and Bearer), wrong keys, prompts/system prompts/tool history with unique
markers, tool calls whose arguments carry a marker, upstream errors (429, 500, 400, 401 on the
gateway's own credentials), dropped upstream connections (stream and JSON), malformed bodies,
and a bug in the gateway (an answer it cannot serialise), which is logged with its stack.

Then the whole process output (stdout + stderr) must hold no client key (valid or wrong), no PEM
line or base64 line of the private key, no prompt, system, tool or completion marker. Every error
body and every streamed ``event: error`` must carry no internal path (``/work``, ``.py``), no
``Traceback``, no OCI key id or fingerprint, and no key material.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.procs import GatewayProcess
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, TestKey, make_test_key, tool_call
from tests.harness import ALICE, BOB, write_config, write_keys

RUN = uuid.uuid4().hex[:12]
PROMPT = f"PROMPT-MARKER-{RUN}"
SYSTEM = f"SYSTEM-MARKER-{RUN}"
HISTORY = f"HISTORY-MARKER-{RUN}"
TOOL_RESULT = f"TOOLRESULT-MARKER-{RUN}"
TOOL_ARG = f"TOOLARG-MARKER-{RUN}"
COMPLETION = f"COMPLETION-MARKER-{RUN}"
REASONING = f"REASONING-MARKER-{RUN}"
WRONG_KEYS = [f"wrong-key-{RUN}", f"sk-ant-api03-{RUN}-leak", f"Bearer-looking-{RUN}"]
MARKERS = [PROMPT, SYSTEM, HISTORY, TOOL_RESULT, TOOL_ARG, COMPLETION, REASONING]


class Session:
    def __init__(self, gw: GatewayProcess, fake: FakeOCI, key: TestKey) -> None:
        self.gw = gw
        self.fake = fake
        self.key = key
        self.errors: list[tuple[str, str]] = []  # (what, body) of every error the client saw
        self.statuses: list[tuple[str, int]] = []
        self.output = ""  # the whole process output, read after it stopped
        self.exit_code: int | None = None

    def post(self, what: str, body: Any, *, key: str | None = ALICE, bearer: bool = False,
             raw: bytes | None = None) -> httpx.Response:
        headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
        if key is not None:
            if bearer:
                headers["authorization"] = f"Bearer {key}"
            else:
                headers["x-api-key"] = key
        content = raw if raw is not None else json.dumps(body).encode()
        r = httpx.post(self.gw.url + "/v1/messages", content=content, headers=headers,
                       timeout=30)
        self.statuses.append((what, r.status_code))
        if r.status_code != 200:
            self.errors.append((what, r.text))
        elif r.headers.get("content-type", "").startswith("text/event-stream"):
            result = check_stream(r.text, allow_error=True)
            if result["error"] is not None:
                self.errors.append((what, json.dumps(result["error"])))
        return r


def _request(text: str = PROMPT, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "grok", "max_tokens": 200, "stream": stream,
            "system": [{"type": "text", "text": f"You are careful. {SYSTEM}"}],
            "messages": [{"role": "user", "content": f"{text} please"}], **extra}


def _tool_history() -> dict[str, Any]:
    return {
        "model": "gpt-oss", "max_tokens": 100,
        "tools": [{"name": "read_file", "description": "read",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
        "messages": [
            {"role": "user", "content": f"read it {HISTORY}"},
            {"role": "assistant", "content": [
                {"type": "text", "text": f"reading {HISTORY}"},
                {"type": "tool_use", "id": "toolu_01", "name": "read_file",
                 "input": {"path": f"/secret/{TOOL_ARG}"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01",
                 "content": f"file body {TOOL_RESULT}"},
                {"type": "text", "text": f"{PROMPT} continue"}]},
        ],
    }


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    workdir = tmp_path_factory.mktemp("security")
    key = make_test_key(workdir / "oci-key")
    with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
        config = write_config(workdir, fake.url, key.config_path, keys_file=write_keys(workdir),
                              **{"oci": {"retries": {"max_attempts": 2, "backoff_base": 0.01,
                                                     "backoff_max": 0.02}}})
        gw = GatewayProcess(config, workdir, env={
            "GATEWAY_LOG_LEVEL": "DEBUG", "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "security-test", "PYTHONASYNCIODEBUG": "1"})
        gw.start()
        s = Session(gw, fake, key)
        try:
            _drive(s)
        finally:
            s.exit_code = gw.stop()
            s.output = gw.out_path.read_text(errors="replace")
        yield s


def _drive(s: Session) -> None:
    fake = s.fake
    # successes: JSON (x-api-key) and stream (Bearer), completion and reasoning with markers
    fake.push(Scenario(text=f"Sure. {COMPLETION} done.", reasoning=f"think {REASONING}"))
    assert s.post("json ok", _request()).status_code == 200
    fake.push(Scenario(text=f"Streamed {COMPLETION} answer", chunks=4,
                       reasoning=f"hmm {REASONING}"))
    r = s.post("stream ok", _request(stream=True), key=BOB, bearer=True)
    assert r.status_code == 200 and COMPLETION in check_stream(r.text)["text"]
    # wrong keys, both headers, and no key at all
    for i, wrong in enumerate(WRONG_KEYS):
        assert s.post("wrong key", _request(), key=wrong, bearer=bool(i % 2)).status_code == 401
    assert s.post("no key", _request(), key=None).status_code == 401
    # tool calls whose arguments carry a marker (JSON and stream), and tool history in
    args = {"path": f"/home/user/{TOOL_ARG}.txt", "note": COMPLETION}
    fake.push(Scenario(tool_calls=[tool_call("read_file", args)], style="openai"))
    r = s.post("tool json", _tool_history())
    assert r.status_code == 200 and r.json()["stop_reason"] == "tool_use"
    fake.push(Scenario(tool_calls=[tool_call("read_file", args)], style="llama"))
    r = s.post("tool stream", {**_tool_history(), "stream": True})
    assert r.status_code == 200
    # upstream errors before the first byte: throttled, failing, rejecting, own credentials
    fake.push(Scenario(error={"status": 429, "message": f"slow down {PROMPT}"}),
              Scenario(error={"status": 429}))
    assert s.post("upstream 429", _request()).status_code == 429
    fake.push(Scenario(error={"status": 500}), Scenario(error={"status": 500}))
    assert s.post("upstream 500", _request()).status_code >= 500
    fake.push(Scenario(error={"status": 400, "message": "Invalid parameter"}))
    assert s.post("upstream 400", _request()).status_code == 400
    fake.push(Scenario(error={"status": 401, "code": "NotAuthenticated",
                              "message": "The required information to complete "
                                         "authentication was not provided or was incorrect."}))
    assert s.post("upstream 401", _request()).status_code == 500
    # dropped upstream connections: mid-stream, and before/within a JSON body
    fake.push(Scenario(text=f"partial {COMPLETION} words here and more", chunks=6,
                       drop_after=2))
    r = s.post("stream dropped", _request(stream=True))
    assert r.status_code == 200 and check_stream(r.text, allow_error=True)["error"]
    fake.push(Scenario(drop_after=0), Scenario(drop_after=0))
    assert s.post("json dropped", _request()).status_code >= 500
    fake.push(Scenario(text=f"half {COMPLETION}", drop_after=1),
              Scenario(text=f"half {COMPLETION}", drop_after=1))
    assert s.post("json half body", _request()).status_code >= 500
    # a bug in the gateway while answering (an OCI tool input nested past what it can
    # serialise): logged with its stack, the prompt never; the client sees a plain 500
    nested: dict[str, Any] = {}
    for _ in range(300):
        nested = {"a": nested}
    fake.push(Scenario(tool_calls=[tool_call("read_file", nested)], style="openai"))
    assert s.post("gateway bug", _request()).status_code == 500
    # client mistakes carrying markers: bad JSON, wrong types, unknown model, a user tool_use
    assert s.post("bad json", None, raw=f'{{"model": "grok", "x": "{PROMPT}'.encode()
                  ).status_code == 400
    assert s.post("wrong type", {**_request(), "max_tokens": PROMPT}).status_code == 400
    assert s.post("bad role", {**_request(), "messages": [
        {"role": PROMPT, "content": "x"}]}).status_code == 400
    assert s.post("unknown model", {**_request(), "model": f"model-{PROMPT}"}).status_code == 404
    assert s.post("tool_use in user turn", {**_request(), "messages": [
        {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n",
                                      "input": {"q": PROMPT}}]}]}).status_code == 400
    # the metrics page is output too
    metrics = httpx.get(s.gw.metrics_url, timeout=10)
    s.errors.append(("metrics page", metrics.text))


def _secret_lines(key: TestKey) -> list[str]:
    pem = key.private_key_path.read_text().strip().splitlines()
    body = [line for line in pem if not line.startswith("-----")]
    return ["PRIVATE KEY", pem[0], *body]


def test_session_ran(session: Session) -> None:
    assert len(session.statuses) >= 20, session.statuses
    assert session.fake.requests, "the emulator saw no traffic"


def test_output_holds_no_client_key(session: Session) -> None:
    out = session.output
    assert len(out) > 1000, "the gateway printed almost nothing: is DEBUG logging on?"
    for secret in (ALICE, BOB, *WRONG_KEYS):
        assert secret not in out, f"client key {secret[:6]}... appears in the gateway output"
        assert secret[4:-4] not in out


def test_output_holds_no_private_key_material(session: Session) -> None:
    out = session.output
    for line in _secret_lines(session.key):
        assert line not in out, f"private key material in the output: {line[:20]}..."
    assert "BEGIN" not in out or "PRIVATE" not in out


def test_output_holds_no_prompt_or_completion(session: Session) -> None:
    out = session.output
    leaked = [m.split("-MARKER")[0] for m in MARKERS if m in out]
    assert not leaked, f"user content in the gateway output: {leaked}"


def test_access_log_is_there(session: Session) -> None:
    # the scan above is only meaningful if the request lines were written
    out = session.output
    assert out.count('"logger":"app.access"') >= len(session.statuses) - 1
    assert '"key_id":"alice"' in out and '"key_id":"bob"' in out


def test_a_bug_is_logged_with_its_stack(session: Session) -> None:
    # the marker scans above are only meaningful if the stack was written
    bugs = [json.loads(line) for line in session.output.splitlines()
            if line.startswith("{") and '"msg":"unexpected error"' in line]
    assert len(bugs) == 1 and bugs[0]["level"] == "error"
    assert "json_answer" in bugs[0]["stack"] and bugs[0]["request_id"].startswith("req_")


def test_error_bodies_reveal_no_internals(session: Session) -> None:
    assert len(session.errors) >= 15
    key = session.key
    forbidden = ["/work", ".py", "Traceback", 'File "', key.key_id, key.fingerprint,
                 key.fingerprint.replace(":", ""), str(key.directory), "PRIVATE KEY",
                 ALICE, BOB, *WRONG_KEYS, *_secret_lines(key)[2:]]
    for what, body in session.errors:
        for needle in forbidden:
            assert needle not in body, f"{what}: error body contains {needle[:30]!r}: {body}"


def test_error_bodies_are_the_anthropic_envelope(session: Session) -> None:
    for what, body in session.errors:
        if what == "metrics page":
            continue
        data = json.loads(body)
        err = data["error"] if data.get("type") == "error" else data
        assert err["type"] in ("invalid_request_error", "authentication_error",
                               "permission_error", "not_found_error", "rate_limit_error",
                               "api_error", "overloaded_error", "timeout_error"), (what, body)
        assert isinstance(err["message"], str) and err["message"], (what, body)


def test_shutdown_was_clean(session: Session) -> None:
    out = session.output
    assert "Traceback" not in out, out[out.find("Traceback") - 200:][:2000]
    # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit
    assert session.exit_code in (0, -15), session.exit_code

