"""Cassette replay (``--replay DIR``, emulator/cassettes.py): recorded exchanges served back by
request key, JSON and SSE, in process and as a process; misses and bad cassettes are clear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.procs import EmulatorProcess
from emulator import (
    CHAT_PATH,
    MODELS_PATH,
    Cassette,
    CassetteError,
    CassetteLibrary,
    FakeOCI,
    TestKey,
)
from tests.emulator.wire import (
    REQUEST_ID_RE,
    Result,
    details,
    make_signer,
    send,
    signed_get_headers,
    signed_headers,
    text_of,
)

SSE_EVENTS = [
    '{"index":0,"message":{"role":"ASSISTANT","content":[{"type":"TEXT","text":"Recorded"}]},'
    '"pad":"aaa"}',
    '{"index":0,"message":{"role":"ASSISTANT","content":[{"type":"TEXT","text":" stream"}]}}',
    '{"message":{"role":"ASSISTANT"},"finishReason":"stop"}',
    '{"usage":{"completionTokens":2,"promptTokens":5,"totalTokens":7}}',
    "[DONE]",
]
JSON_ANSWER = {"modelId": "xai.grok-4", "modelVersion": "1.0.0", "chatResponse": {
    "apiFormat": "GENERIC", "timeCreated": "2026-11-24T00:06:46.123Z", "choices": [{
        "index": 0, "finishReason": "stop", "message": {
            "role": "ASSISTANT", "content": [{"type": "TEXT", "text": "Recorded JSON"}]}}],
    "usage": {"promptTokens": 5, "completionTokens": 3, "totalTokens": 8}}}


def _write(directory: Path, name: str, body: Any, status: int = 200, *,
           events: list[str] | None = None, answer: Any = None,
           headers: dict[str, str] | None = None, method: str = "POST",
           path: str = CHAT_PATH) -> None:
    cassette = Cassette(name=name, method=method, path=path, body=body, status=status,
                        headers=headers or {}, response_body=answer, events=events)
    cassette.save(directory / name)


@pytest.fixture
def cassette_dir(tmp_path: Path) -> Path:
    live = "ocid1.compartment.oc1..live-tenancy"  # recorded in another compartment
    stream_body = {**details("xai.grok-4", stream=True, text="stream please"),
                   "compartmentId": live}
    json_body = {**details("xai.grok-4", text="json please"), "compartmentId": live}
    retry_body = {**details("meta.llama-3.3-70b-instruct", text="busy"), "compartmentId": live}
    _write(tmp_path, "001-stream.json", stream_body, events=SSE_EVENTS,
           headers={"content-type": "text/event-stream", "opc-request-id": "LIVE/1/2",
                    "content-length": "999", "model-retirement-info": "recorded"})
    _write(tmp_path, "002-json.json", json_body, answer=JSON_ANSWER,
           headers={"content-type": "application/json"})
    _write(tmp_path, "003-retry.json", retry_body, 429,
           answer={"code": "TooManyRequests", "message": "Too many requests for the user"},
           headers={"retry-after": "2"})
    _write(tmp_path, "004-retry.json", retry_body, answer=JSON_ANSWER)
    _write(tmp_path, "005-models.json", None, method="GET",
           path=MODELS_PATH + f"?compartmentId={live}&limit=2",
           answer={"items": [{"displayName": "xai.grok-4"}]},
           headers={"opc-next-page": "2"})
    (tmp_path / "notes.txt").write_text("not a cassette")  # only *.json files are read
    return tmp_path


@pytest.fixture
def replay(cassette_dir: Path, key: TestKey) -> Iterator[FakeOCI]:
    with FakeOCI(public_keys={key.key_id: key.public_pem}, replay=cassette_dir) as fake:
        yield fake


def _post(fake: FakeOCI, key: TestKey, body: dict) -> Result:
    raw = json.dumps(body).encode()
    url = fake.url + CHAT_PATH
    return send("POST", url, raw, signed_headers(make_signer(key), url, raw,
                                                  {"opc-request-id": "MINE"}))


def test_replays_a_stream(replay: FakeOCI, key: TestKey) -> None:
    result = _post(replay, key, details("xai.grok-4", stream=True, text="stream please"))
    assert result.status == 200
    assert result.headers["content-type"] == "text/event-stream"
    assert result.raw == b"".join(b"data: " + e.encode() + b"\n\n" for e in SSE_EVENTS)
    assert text_of(result.events()) == "Recorded stream"
    assert result.headers["model-retirement-info"] == "recorded"  # recorded headers replay
    assert result.headers["opc-request-id"].startswith("MINE/")  # ...except these
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])
    assert result.headers.get("content-length") != "999"
    assert result.headers["x-fake-oci-replay"] == "001-stream.json"


def test_replays_json_and_matches_exactly(replay: FakeOCI, key: TestKey) -> None:
    result = _post(replay, key, details("xai.grok-4", text="json please"))
    assert result.status == 200 and result.json() == JSON_ANSWER
    # any difference in the chat request (here maxTokens) is another exchange
    miss = _post(replay, key, details("xai.grok-4", text="json please", maxTokens=5))
    assert miss.status == 404
    assert miss.json()["code"] == "CassetteNotFound"
    assert "model xai.grok-4, apiFormat GENERIC" in miss.json()["message"]
    assert "5 cassette(s) loaded" in miss.json()["message"]
    assert replay.requests[-1].status == 404  # misses are recorded like any request


def test_same_request_recorded_twice_replays_in_order(replay: FakeOCI, key: TestKey) -> None:
    body = details("meta.llama-3.3-70b-instruct", text="busy")
    first = _post(replay, key, body)
    assert first.status == 429 and first.headers["retry-after"] == "2"
    assert first.json()["code"] == "TooManyRequests"
    assert _post(replay, key, body).json() == JSON_ANSWER
    assert _post(replay, key, body).json() == JSON_ANSWER  # the last one keeps answering


def test_replays_other_requests_and_still_checks_signatures(replay: FakeOCI,
                                                            key: TestKey) -> None:
    url = replay.url + MODELS_PATH + "?compartmentId=ocid1.compartment.oc1..test&limit=2"
    result = send("GET", url, None, signed_get_headers(make_signer(key), url))
    assert result.json() == {"items": [{"displayName": "xai.grok-4"}]}
    assert result.headers["opc-next-page"] == "2"
    unsigned = send("POST", replay.url + CHAT_PATH, json.dumps(details()).encode(),
                    {"content-type": "application/json"})
    assert unsigned.status == 401


def test_request_key_ignores_only_the_compartment() -> None:
    body = details("xai.grok-4")
    same = {**body, "compartmentId": "ocid1.compartment.oc1..elsewhere"}
    library = CassetteLibrary([Cassette("a.json", "POST", CHAT_PATH, body, 200,
                                        response_body={})])
    assert library.take("POST", CHAT_PATH, same) is not None
    other_model = {**body, "servingMode": {"servingType": "ON_DEMAND", "modelId": "xai.grok-3"}}
    assert library.take("POST", CHAT_PATH, other_model) is None
    assert library.take("GET", CHAT_PATH, body) is None


def test_a_redacted_cassette_matches_the_text_it_blanked_and_nothing_else() -> None:
    """Cassettes from `python -m app conformance --record` blank the user's file text and
    people's OCIDs; the marks keep length and digest, so the same request matches again."""
    import hashlib

    private = "def secret():\n    return 42\n"
    digest = hashlib.sha256(private.encode()).hexdigest()[:16]
    mark = f"<redacted text: {len(private)} chars, sha256 {digest}>"
    escaped = json.dumps(private)[1:-1]
    emark = f"<redacted json-escaped text: {len(private)} chars, sha256 {digest}>"

    def body(text: str, args: str, user: str) -> dict[str, Any]:
        chat = details("xai.grok-4")
        chat["chatRequest"]["messages"] = [
            {"role": "USER", "content": [{"type": "TEXT", "text": f"file:\n{text}\nend"}]},
            {"role": "ASSISTANT", "toolCalls": [{"id": "t1", "type": "FUNCTION", "name": "w",
                                                  "arguments": '{"c": "' + args + '"}'}]},
            {"role": "USER", "content": [{"type": "TEXT", "text": f"by {user}"}]},
        ]
        return chat

    recorded = body(mark, emark, "ocid1.user.oc1..redacted")
    library = CassetteLibrary([Cassette("r.json", "POST", CHAT_PATH, recorded, 200,
                                        response_body={"ok": 1})])
    live = body(private, escaped, "ocid1.user.oc1..aaaabbbbcccc")
    assert library.take("POST", CHAT_PATH, live) is not None
    same_length = "x" * len(private)
    for miss in (body(same_length, escaped, "ocid1.user.oc1..aaaa"),
                 body(private, json.dumps(same_length)[1:-1], "ocid1.user.oc1..aaaa"),
                 body(private, escaped, "ocid1.tenancy.oc1..aaaa"),
                 {**live, "chatRequest": {**live["chatRequest"], "maxTokens": 7}}):
        assert library.take("POST", CHAT_PATH, miss) is None


@pytest.mark.parametrize(("content", "problem"), [
    ({"request": {}, "response": {}}, "not a format 1 cassette"),
    ({"format": 2, "request": {}, "response": {}}, "not a format 1 cassette"),
    ({"format": 1, "request": {"method": "POST", "path": "/x"},
      "response": {"status": 200}}, "exactly one of body or events"),
    ({"format": 1, "request": {"method": "POST", "path": "/x"},
      "response": {"status": 200, "body": {}, "events": []}}, "exactly one of body or events"),
    ({"format": 1, "request": {"method": "POST", "path": "/x"},
      "response": {"status": "200", "body": {}}}, "status must be an integer"),
    ({"format": 1, "request": {"method": "POST", "path": "/x"},
      "response": {"status": 200, "events": [{"a": 1}]}}, "list of strings"),
])
def test_bad_cassettes_are_refused(tmp_path: Path, content: dict, problem: str) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(content))
    with pytest.raises(CassetteError, match=problem):
        CassetteLibrary.load(tmp_path)


def test_replay_from_the_command_line(cassette_dir: Path, tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path, quiet=False, args=["--replay", str(cassette_dir)]) as emu:
        body = json.dumps(details("xai.grok-4", stream=True, text="stream please")).encode()
        result = send("POST", emu.url + CHAT_PATH, body, {"content-type": "application/json"})
        assert text_of(result.events()) == "Recorded stream"
        assert "replaying 5 cassette(s)" in emu.output()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.json").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "emulator", "--no-verify", "--replay",
                           str(bad)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--replay: x.json: not a format 1 cassette" in done.stderr
