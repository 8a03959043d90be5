"""Upstream attempts: the pure retry/failover policy and OCI error table, unit by unit; then,
over real HTTP with the emulator, that a non-streaming answer cut off mid-body is retried and
that a client who leaves cancels its non-streaming request upstream (review B4)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from app.config import Retries
from app.errors import UpstreamKind
from app.oci.errors import UpstreamError, classify, context_error, context_overflow_numbers
from app.oci.retry import FAILOVER_KINDS, RetryPolicy, Step
from emulator import FakeOCI, Scenario
from tests.harness import ALICE, GatewayServer, metric

BODY = {"model": "grok", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}


def _err(kind: UpstreamKind, *, retryable: bool = True, retry_after: float | None = None
         ) -> UpstreamError:
    return UpstreamError("x", kind=kind, retryable=retryable, error_type="api_error",
                         retry_after=retry_after)


def _top(low: float, high: float) -> float:
    return high  # the jitter's upper bound: makes the backoff exact


# --------------------------------------------------------------------------- the policy

def test_policy_gives_up_on_final_failures_and_spent_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.after(0, 0, 1, _err(UpstreamKind.BAD_REQUEST, retryable=False)) is None
    assert policy.after(2, 0, 1, _err(UpstreamKind.SERVER_ERROR)) is None
    assert policy.after(1, 0, 1, _err(UpstreamKind.SERVER_ERROR)) is not None
    assert RetryPolicy(max_attempts=1).after(0, 0, 3, _err(UpstreamKind.TIMEOUT)) is None


def test_policy_backs_off_exponentially_with_a_cap_and_a_retry_after_floor() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.25, backoff_max=4.0, uniform=_top)
    delays = [policy.after(a, 0, 1, _err(UpstreamKind.SERVER_ERROR)) for a in range(6)]
    assert [s.delay for s in delays if s] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert all(s is not None and s.target == 0 and not s.failover for s in delays)
    floor = RetryPolicy(backoff_base=0.01, backoff_max=4.0, uniform=_top)
    assert floor.backoff(0, retry_after=3.0) == 3.0
    assert floor.backoff(0, retry_after=60.0) == 4.0  # a retry-after hint is capped too
    jitter = RetryPolicy(backoff_base=1.0, backoff_max=4.0)
    assert all(0 <= jitter.backoff(2, None) <= 4.0 for _ in range(200))


def test_policy_fails_over_at_once_and_waits_when_back_at_the_primary() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_max=4.0, uniform=_top)
    for kind in FAILOVER_KINDS:
        assert policy.after(0, 0, 3, _err(kind)) == Step(1, 0.0, failover=True)
        assert policy.after(1, 1, 3, _err(kind)) == Step(2, 0.0, failover=True)
        assert policy.after(2, 2, 3, _err(kind)) == Step(0, 2.0, failover=True)
    # a cut-off answer is the connection's fault, not the endpoint's: the same target again
    assert policy.after(0, 1, 3, _err(UpstreamKind.STREAM_BROKEN)) == Step(1, 0.5, False)


def test_policy_from_config() -> None:
    policy = RetryPolicy.from_config(Retries(max_attempts=2, backoff_base=0.1, backoff_max=1))
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_max) == (2, 0.1, 1.0)


# --------------------------------------------------------------------------- the OCI error table

@pytest.mark.parametrize(("status", "body", "kind", "retryable", "client_status"), [
    (400, b'{"message": "Invalid parameter"}', UpstreamKind.BAD_REQUEST, False, 400),
    (400, b'{"message": "prompt is too long: 200,000 > 131,072"}',
     UpstreamKind.CONTEXT_OVERFLOW, False, 400),
    (401, b"", UpstreamKind.AUTH_ERROR, False, 500),
    (403, b"{}", UpstreamKind.AUTH_ERROR, False, 500),
    (404, b'{"code": "NotAuthorizedOrNotFound"}', UpstreamKind.NOT_FOUND, False, 500),
    (429, b"{}", UpstreamKind.RATE_LIMITED, True, 429),
    (500, b"<html>", UpstreamKind.SERVER_ERROR, True, 500),
    (501, b"{}", UpstreamKind.SERVER_ERROR, False, 500),
    (503, b"{}", UpstreamKind.SERVER_ERROR, True, 529),
    (409, b"{}", UpstreamKind.OTHER, False, 500),
])
def test_classify(status: int, body: bytes, kind: UpstreamKind, retryable: bool,
                  client_status: int) -> None:
    err = classify(status, body, {}, "OPC1")
    assert (err.upstream_kind, err.retryable, err.status) == (kind, retryable, client_status)
    assert err.opc_request_id == "OPC1" and err.upstream_status == status


def test_classify_throttling_hint_and_context_numbers() -> None:
    assert classify(429, b"{}", {}, None).retry_after == 5.0
    assert classify(429, b"{}", {"retry-after": "7"}, None).retry_after == 7.0
    assert context_overflow_numbers("200,000 tokens > 131,072 maximum") == (200000, 131072)
    assert context_overflow_numbers("too long") is None
    overflow = classify(400, b'{"message": "input is too long"}', {}, None)
    mapped = context_error(overflow, estimate=900, window=1000)
    assert mapped.message == "prompt is too long: 1001 tokens > 1000 maximum"
    assert mapped.upstream_kind == UpstreamKind.CONTEXT_OVERFLOW  # not a client mistake


# --------------------------------------------------------------------------- over HTTP



def _wait_for_metric(metrics_url: str, name: str, at_least: float, **labels: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if metric(metrics_url, name, **labels) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels} never reached {at_least}")


def test_json_answer_cut_off_mid_body_is_retried(gateway: GatewayServer, fake: FakeOCI) -> None:
    retries = metric(gateway.metrics_url, "gateway_upstream_retries_total", model="grok",
                      error_type="stream_broken")
    fake.push(Scenario(text="the first answer, cut in half", drop_after=1),
              Scenario(text="the second answer"))
    r = gateway.post("/v1/messages", BODY)
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == "the second answer"
    assert len(fake.requests) == 2 and fake.requests[0].dropped_by_server
    assert metric(gateway.metrics_url, "gateway_upstream_retries_total", model="grok",
                   error_type="stream_broken") == retries + 1


def test_json_answer_cut_off_every_time_fails_after_all_attempts(
        gateway: GatewayServer, fake: FakeOCI) -> None:
    fake.push(*[Scenario(text="cut again and again", drop_after=1)] * 3)
    r = gateway.post("/v1/messages", BODY)
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
    assert "cut off" in r.json()["error"]["message"]
    assert len(fake.requests) == 3 and fake.pending == 0


def test_client_leaving_cancels_a_json_request_upstream(gateway: GatewayServer,
                                                        fake: FakeOCI) -> None:
    gone = metric(gateway.metrics_url, "gateway_requests_total", route="/v1/messages",
                   model="grok", status_class="4xx")
    fake.push(Scenario(text="nobody will read this", delay_before=3.0))
    body = json.dumps(BODY).encode()
    with socket.create_connection(("127.0.0.1", gateway.settings.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + ALICE.encode()
                     + b"\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        # the request is with OCI (which takes 3 s): now the client hangs up
        assert fake.wait_until(lambda: len(fake.requests) == 1, 5)
        t_close = time.monotonic()
    # the gateway closes its upstream connection at once instead of waiting for the answer
    assert fake.wait_until(lambda: fake.requests[0].client_disconnected_at is not None, 1.5)
    assert time.monotonic() - t_close < 1.5
    _wait_for_metric(gateway.metrics_url, "gateway_requests_total", gone + 1, route="/v1/messages",
                     model="grok", status_class="4xx")
    # and the gateway keeps serving
    assert gateway.post("/v1/messages", BODY).status_code == 200
