"""The per-request record: one owner (the service's accounting) on every route, bugs included.

Units first (the Accounting block, the closed error-label set, SSEResponse's close), then over
real HTTP against the session gateway and the emulator: a non-streaming answer that breaks the
gateway is a clean 500 with the request's own id and is counted (review B1); count_tokens and
/v1/models are counted like messages (review §2.1); and ``gateway_overhead_seconds`` is the
gateway's own time, not the length of the stream (review B2).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.deps import SSEResponse
from app.errors import NotFound, UpstreamKind
from app.observability import metrics as m
from app.service.accounting import Accounting, Call
from devtools.sse_check import check_stream
from emulator import FakeOCI, Scenario, tool_call
from tests.harness import GatewayServer, metric

ROOT = Path(__file__).resolve().parents[1]
BODY = {"model": "grok", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}


def deep(levels: int = 300) -> dict[str, Any]:
    """A tool input nested past what orjson will serialise (255 levels), though it parses it."""
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value




def _call() -> Call:
    return Call("req_test", "/v1/messages", time.perf_counter())


# --------------------------------------------------------------------------- units

def test_accounting_turns_a_gateway_error_into_its_envelope() -> None:
    async def run() -> Accounting:
        async with Accounting(_call()) as acct:
            raise NotFound("no such model")
        return acct

    acct = asyncio.run(run())
    assert acct.error is not None and acct.error.status == 404
    assert (acct.call.status, acct.call.error_type, acct.call.finished) == (
        404, "not_found_error", True)


def test_accounting_turns_a_bug_into_a_clean_500() -> None:
    async def run() -> Accounting:
        async with Accounting(_call()) as acct:
            {}["missing"]  # any bug
        return acct

    acct = asyncio.run(run())
    assert acct.error is not None
    assert acct.error.body("req_test") == {
        "type": "error", "request_id": "req_test",
        "error": {"type": "api_error", "message": "internal error in the gateway"}}
    assert (acct.call.status, acct.call.error_type, acct.call.finished) == (500, "other", True)


def test_accounting_records_a_cancellation_and_lets_it_through() -> None:
    call = _call()

    async def run() -> None:
        async with Accounting(call):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert (call.status, call.error_type, call.finished) == (499, "cancelled", True)


def test_accounting_serialises_json_inside_the_block_and_leaves_streams_open() -> None:
    async def run(answer: Any) -> Accounting:
        async with Accounting(_call()) as acct:
            acct.answer(answer)
        return acct

    acct = asyncio.run(run({"input_tokens": 3}))
    assert acct.json == b'{"input_tokens":3}' and acct.call.finished
    unserialisable = asyncio.run(run({"input": deep()}))
    assert unserialisable.error is not None and unserialisable.call.status == 500

    class Stream:  # stands in for a StreamBody: it finishes the call itself
        async def aclose(self) -> None:
            pass

    streaming = asyncio.run(run(Stream()))
    assert streaming.stream is not None and not streaming.call.finished


def test_error_labels_are_a_closed_set() -> None:
    assert {m.error_label(k) for k in UpstreamKind} == set(m.UPSTREAM_ERROR_TYPES)
    assert m.error_label(UpstreamKind.TIMEOUT) == "timeout"
    assert m.error_label("stream_broken") == "stream_broken"
    for outside in ("api_error", "overloaded_error", "Timeout", "", None, "x" * 500):
        assert m.error_label(outside) == "other"


def test_readme_lists_the_closed_error_set() -> None:
    readme = (ROOT / "README.md").read_text()
    line = re.search(r"`error_type` is a closed set: (.*?)\.\n\n", readme, re.S)
    assert line is not None
    listed = set(re.findall(r"`(\w+)`", line.group(1)))
    assert listed == set(m.UPSTREAM_ERROR_TYPES)


def test_sse_response_lets_a_cancellation_during_close_through() -> None:
    """Review B12: a cancellation arriving while the body closes must not be swallowed."""

    async def run() -> str:
        closing = asyncio.Event()

        class Body:
            def __aiter__(self) -> Body:
                return self

            async def __anext__(self) -> bytes:
                raise StopAsyncIteration

            async def aclose(self) -> None:
                closing.set()
                await asyncio.sleep(30)

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client never leaves
            return {}

        async def send(message: Any) -> None:
            pass

        task = asyncio.create_task(SSEResponse(Body(), "req_x")({}, receive, send))
        await closing.wait()
        task.cancel()
        try:
            await asyncio.wait_for(task, 5)
        except asyncio.CancelledError:
            return "cancelled"
        return f"swallowed (cancelling={task.cancelling()})"

    assert asyncio.run(run()) == "cancelled"


# --------------------------------------------------------------------------- over HTTP

def _assert_clean_500(r: httpx.Response) -> None:
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert body["request_id"] == r.headers["request-id"]  # the request's own id
    assert "Traceback" not in r.text and ".py" not in r.text


def test_an_answer_that_breaks_the_gateway_is_a_counted_500(gateway: GatewayServer,
                                                            fake: FakeOCI) -> None:
    labels = {"route": "/v1/messages", "model": "grok"}
    errors = metric(gateway.metrics_url, "gateway_requests_total", status_class="5xx", **labels)
    failed = metric(gateway.metrics_url, "gen_ai_client_operation_duration_seconds_count",
                     error_type="other")
    fake.push(Scenario(tool_calls=[tool_call("nest", deep())]))
    _assert_clean_500(gateway.post("/v1/messages", BODY))
    assert metric(gateway.metrics_url, "gateway_requests_total", status_class="5xx",
                   **labels) == errors + 1
    assert metric(gateway.metrics_url, "gen_ai_client_operation_duration_seconds_count",
                   error_type="other") == failed + 1
    # the gateway goes on serving
    assert gateway.post("/v1/messages", BODY).status_code == 200


@pytest.mark.parametrize("usage", [[1], "lots", 7, {"promptTokens": {"n": 1}}],
                         ids=["list", "string", "int", "nested"])
def test_mistyped_answers_are_either_served_or_a_counted_500(
        gateway: GatewayServer, fake: FakeOCI, usage: Any) -> None:
    """Whichever layer copes with a mistyped OCI usage, the client gets a well-formed message
    or the Anthropic envelope with its own request id, and the request is counted."""
    before = {c: metric(gateway.metrics_url, "gateway_requests_total", route="/v1/messages",
                         model="grok", status_class=c) for c in ("2xx", "5xx")}
    fake.push(Scenario(text="a mistyped answer", usage=usage))
    r = gateway.post("/v1/messages", BODY)
    if r.status_code == 200:
        assert r.json()["content"][0]["text"] == "a mistyped answer"
        counted = "2xx"
    else:
        _assert_clean_500(r)
        counted = "5xx"
    assert metric(gateway.metrics_url, "gateway_requests_total", route="/v1/messages",
                   model="grok", status_class=counted) == before[counted] + 1


def test_count_tokens_and_models_are_accounted(gateway: GatewayServer, fake: FakeOCI) -> None:
    url, murl = gateway.url, gateway.metrics_url
    route = "/v1/messages/count_tokens"
    counted = metric(murl, "gateway_requests_total", route=route, model="grok",
                      status_class="2xx")
    durations = metric(murl, "gateway_request_duration_seconds_count", route=route,
                        model="grok")
    assert gateway.post(route, BODY).status_code == 200
    assert metric(murl, "gateway_requests_total", route=route, model="grok",
                   status_class="2xx") == counted + 1
    assert metric(murl, "gateway_request_duration_seconds_count", route=route,
                   model="grok") == durations + 1
    listed = metric(murl, "gateway_requests_total", route="/v1/models", status_class="2xx")
    missing = metric(murl, "gateway_client_errors_total", route="/v1/models/{id}",
                      error_type="not_found_error")
    headers = {"x-api-key": "alice-key-0123456789"}
    r = httpx.get(url + "/v1/models", headers=headers)
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    assert httpx.get(url + "/v1/models/nope", headers=headers).status_code == 404
    assert metric(murl, "gateway_requests_total", route="/v1/models",
                   status_class="2xx") == listed + 1
    assert metric(murl, "gateway_client_errors_total", route="/v1/models/{id}",
                   error_type="not_found_error") == missing + 1


def test_overhead_is_the_gateways_own_time_not_the_streams(gateway: GatewayServer,
                                                           fake: FakeOCI) -> None:
    murl = gateway.metrics_url
    route = {"route": "/v1/messages"}

    def observed() -> tuple[float, float, float]:
        return (metric(murl, "gateway_overhead_seconds_count", **route),
                metric(murl, "gateway_overhead_seconds_sum", **route),
                metric(murl, "gateway_request_duration_seconds_sum", **route))

    count0, sum0, duration0 = observed()
    # OCI takes 0.3 s to start and then 0.25 s between each of 6 chunks: ~1.8 s of waiting
    fake.push(Scenario(text="one two three four five six", chunks=6, delay_first_chunk=0.3,
                       delay_between=0.25))
    r = gateway.post("/v1/messages", {**BODY, "stream": True})
    assert check_stream(r.text)["text"] == "one two three four five six"
    count1, sum1, duration1 = observed()
    assert count1 == count0 + 1
    assert duration1 - duration0 >= 1.5  # the stream really was slow
    assert sum1 - sum0 < 0.5, f"{sum1 - sum0:.3f}s overhead in {duration1 - duration0:.3f}s"
    # a slow JSON answer, after a retry, likewise
    fake.push(Scenario(error={"status": 503}), Scenario(text="late", delay_before=1.0))
    assert gateway.post("/v1/messages", BODY).status_code == 200
    count2, sum2, _ = observed()
    assert count2 == count1 + 1 and sum2 - sum1 < 0.5
