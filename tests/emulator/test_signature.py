"""Request signatures: what the emulator accepts and refuses like OCI, and the real OCI SDK
client against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import oci
import pytest

from emulator import CHAT_PATH, FakeOCI, Scenario, TestKey
from tests.emulator.wire import (
    NOT_AUTHENTICATED,
    REQUEST_ID_RE,
    Result,
    SignTarget,
    details,
    make_signer,
    send,
    signed_headers,
    text_of,
)


def test_make_test_key_writes_usable_oci_config(key: TestKey) -> None:
    config = oci.config.from_file(str(key.config_path))
    oci.config.validate_config(config)
    assert config["fingerprint"] == key.fingerprint
    assert key.key_id == f"{key.tenancy}/{key.user}/{key.fingerprint}"
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", key.fingerprint)
    assert key.private_key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key.public_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_good_signature_passes(chat: Callable[..., Result]) -> None:
    result = chat(details(), {"opc-request-id": "CLIENTREQ1"})
    assert result.status == 200, result.raw
    assert result.headers["content-type"] == "application/json"
    assert REQUEST_ID_RE.match(result.headers["opc-request-id"])
    assert result.headers["opc-request-id"].startswith("CLIENTREQ1/")


def test_wrong_key_is_rejected(fake: FakeOCI, key: TestKey, other_key: TestKey) -> None:
    # Same keyId as the registered key, but signed with a different private key.
    forger = oci.signer.Signer(key.tenancy, key.user, key.fingerprint,
                               private_key_file_location=str(other_key.private_key_path))
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    result = send("POST", url, body, signed_headers(forger, url, body, {"opc-request-id": "X1"}))
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED
    assert result.headers["content-type"] == "application/json"
    assert result.headers["opc-request-id"].startswith("X1/")
    assert fake.requests[-1].status == 401  # rejected requests are recorded too


def test_unknown_key_id_is_rejected(fake: FakeOCI, other_key: TestKey) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    result = send("POST", url, body, signed_headers(make_signer(other_key), url, body))
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED


def test_tampered_body_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details(text="hello")).encode()
    headers = signed_headers(signer, url, body)
    tampered = body.replace(b"hello", b"HELLO")
    assert send("POST", url, tampered, headers).status == 401


def test_tampered_sha_header_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details(text="hello")).encode()
    headers = signed_headers(signer, url, body)
    tampered = body.replace(b"hello", b"HELLO")
    headers["x-content-sha256"] = base64.b64encode(hashlib.sha256(tampered).digest()).decode()
    assert send("POST", url, tampered, headers).status == 401


@pytest.mark.parametrize("header", ["date", "x-content-sha256", "authorization", "content-type"])
def test_missing_header_is_rejected(fake: FakeOCI, signer: Any, header: str) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    headers = signed_headers(signer, url, body)
    del headers[header]
    if header == "content-type":
        headers["content-type"] = "text/plain"  # aiohttp would add its own otherwise
    result = send("POST", url, body, headers)
    assert result.status == 401
    assert result.json() == NOT_AUTHENTICATED


def test_signature_without_body_headers_is_rejected(fake: FakeOCI, key: TestKey) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    target = SignTarget("POST", url, {"content-type": "application/json"}, body)
    make_signer(key).without_content_headers(target)  # signs only date, target, host
    assert 'headers="date (request-target) host"' in target.headers["authorization"]
    assert send("POST", url, body, target.headers).status == 401


def test_stale_date_is_rejected(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + CHAT_PATH
    body = json.dumps(details()).encode()
    stale = formatdate(time.time() - 600, usegmt=True)
    headers = signed_headers(signer, url, body, {"date": stale})
    assert headers["date"] == stale
    assert send("POST", url, body, headers).status == 401


def test_accept_any_key_and_no_verify_modes(key: TestKey, other_key: TestKey) -> None:
    body = json.dumps(details()).encode()
    with FakeOCI(accept_any_key_pem=other_key.public_pem) as fake:
        url = fake.url + CHAT_PATH
        assert send("POST", url, body, signed_headers(make_signer(other_key), url, body)
                    ).status == 200
        assert send("POST", url, body, signed_headers(make_signer(key), url, body)
                    ).status == 401
    with FakeOCI(verify_signatures=False) as fake:
        assert send("POST", fake.url + CHAT_PATH, body,
                    {"content-type": "application/json"}).status == 200


def test_other_paths_answer_oci_404(fake: FakeOCI, signer: Any) -> None:
    url = fake.url + "/20231130/actions/embedText"
    body = b"{}"
    result = send("POST", url, body, signed_headers(signer, url, body))
    assert result.status == 404
    assert result.json()["code"] == "NotAuthorizedOrNotFound"


def test_real_sdk_client(fake: FakeOCI, key: TestKey) -> None:
    config = oci.config.from_file(str(key.config_path))
    client = oci.generative_ai_inference.GenerativeAiInferenceClient(
        config, service_endpoint=fake.url, retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    models = oci.generative_ai_inference.models
    request = models.GenericChatRequest(
        messages=[models.UserMessage(content=[models.TextContent(text="hi sdk")])],
        max_tokens=50, is_stream=False)
    chat_details = models.ChatDetails(
        compartment_id="ocid1.compartment.oc1..test", chat_request=request,
        serving_mode=models.OnDemandServingMode(model_id="xai.grok-4"))
    fake.push(Scenario(text="from the fake"))
    result = client.chat(chat_details).data
    assert result.chat_response.choices[0].message.content[0].text == "from the fake"
    assert result.chat_response.usage.total_tokens > 0
    request.is_stream = True
    request.stream_options = models.StreamOptions(is_include_usage=True)
    fake.push(Scenario(text="streamed by the fake"))
    response = client.chat(chat_details)
    events = [json.loads(e.data) for e in response.data.events()]
    assert text_of(events) == "streamed by the fake"
    assert "usage" in events[-1]
