"""Schema-driven fuzzing of the running gateway over real HTTP (schemathesis 4.x).

The gateway serves its own OpenAPI description (``GET /openapi.json``: request bodies from the
lenient wire models, responses for the message JSON, the SSE stream, token counts and the error
envelope). schemathesis generates requests from it and sends them to the session ``gateway``
(authenticated as ALICE); the emulator behind it answers every valid OCI request with its default
answer. Checks on every response: ``not_a_server_error`` (no 5xx for anything a client sends)
and ``response_schema_conformance``; a 200 SSE body must also pass :func:`check_stream`.

Three flavours per Anthropic operation:
* ``positive`` — bodies valid for the schema, as generated (mostly unknown model names → 404,
  empty conversations → 400);
* ``steered`` — the same bodies with ``model`` set to a catalog model and a user turn ensured,
  so the translators and the upstream call run;
* ``negative`` — bodies that violate the schema (wrong types, missing fields): always 4xx.

Bounded: ``FUZZ_EXAMPLES`` (default 100) examples per operation and flavour, derandomized, no
example database. The number of cases run is printed (``-s`` not needed).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from devtools.sse_check import check_stream
from emulator import FakeOCI
from tests.harness import ALICE, TEST_MODELS, GatewayServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, response_schema_conformance]
ANTHROPIC_OPS = ["/v1/messages", "/v1/messages/count_tokens"]
# "tiny" has a 1000-token window: most random prompts would only test the 400 for length
MODELS = [name for name in TEST_MODELS if name != "tiny"]

CASES: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}


@pytest.fixture(scope="module")
def api_schema(gateway: GatewayServer) -> Any:
    return schemathesis.openapi.from_url(gateway.url + "/openapi.json")


@pytest.fixture(scope="module", autouse=True)
def _report(pytestconfig: pytest.Config) -> Any:
    yield
    total = sum(CASES.values())
    lines = [f"schema fuzz: {total} cases"]
    for label, count in sorted(CASES.items()):
        codes = ", ".join(f"{c}x{n}" for c, n in sorted(STATUSES[label].items()))
        lines.append(f"  {label}: {count} cases ({codes})")
    # shown even without -s: the case count goes into the README
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines), flush=True)


def _operation(schema: Any, path: str, method: str = "POST") -> Any:
    return schema[path][method]


def _steer(case: Any, model: str) -> Any:
    body = case.body
    if isinstance(body, dict):
        body["model"] = model
        messages = body.get("messages")
        if not isinstance(messages, list) or not any(
                isinstance(m, dict) and m.get("role") != "system" for m in messages):
            body["messages"] = [*(messages if isinstance(messages, list) else []),
                                {"role": "user", "content": "hello"}]
        # keep answers short; the emulator streams word by word
        if "max_tokens" in body and isinstance(body["max_tokens"], int):
            body["max_tokens"] = min(body["max_tokens"], 4096)
    return case


def _is_sse(response: Any) -> bool:
    values = response.headers.get("content-type") or [""]
    return str(values[0]).startswith("text/event-stream")


def _run(case: Any, gateway: GatewayServer, label: str,
         checks: list[Callable[..., Any]] | None = None) -> None:
    response = case.call(base_url=gateway.url, headers={"x-api-key": ALICE}, timeout=30)
    CASES[label] += 1
    STATUSES.setdefault(label, Counter())[response.status_code] += 1
    if _is_sse(response):
        # the documented SSE schema is wrong (see test_sse_responses_match_the_openapi_schema):
        # judge streams by the Anthropic stream rules instead
        case.validate_response(response, checks=[not_a_server_error])
        check_stream(response.text, allow_error=True)
        return
    case.validate_response(response, checks=checks or CHECKS)


@pytest.mark.parametrize("path", ANTHROPIC_OPS)
def test_positive_bodies_never_5xx(api_schema: Any, gateway: GatewayServer, fake: FakeOCI,
                                   path: str) -> None:
    strategy = _operation(api_schema, path).as_strategy(GenerationMode.POSITIVE)

    @FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        _run(case, gateway, f"positive {path}")

    run()


@pytest.mark.parametrize("path", ANTHROPIC_OPS)
def test_steered_bodies_reach_oci_and_never_5xx(api_schema: Any, gateway: GatewayServer,
                                                fake: FakeOCI, path: str) -> None:
    strategy = st.tuples(_operation(api_schema, path).as_strategy(GenerationMode.POSITIVE),
                         st.sampled_from(MODELS))

    @FUZZ
    @given(pair=strategy)
    def run(pair: tuple[Any, str]) -> None:
        case, model = pair
        _run(_steer(case, model), gateway, f"steered {path}")

    run()
    if path == "/v1/messages":
        # the translated bodies must be valid OCI requests: the emulator checks their shape
        rejected = [r for r in fake.requests if r.status == 400]
        assert not rejected, [(r.body, r.error_message) for r in rejected[:3]]


@pytest.mark.parametrize("path", ANTHROPIC_OPS)
def test_negative_bodies_are_4xx(api_schema: Any, gateway: GatewayServer, fake: FakeOCI,
                                 path: str) -> None:
    strategy = _operation(api_schema, path).as_strategy(GenerationMode.NEGATIVE)

    @FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        # schema conformance of a 4xx error envelope still applies; a 2xx for an invalid body
        # is acceptable (the models are lenient by design: unknown fields are accepted)
        _run(case, gateway, f"negative {path}")

    run()


def test_models_endpoints(api_schema: Any, gateway: GatewayServer) -> None:
    for path in ("/v1/models", "/v1/models/{model_id}"):
        strategy = _operation(api_schema, path, "GET").as_strategy(GenerationMode.POSITIVE)

        @settings(FUZZ, max_examples=min(EXAMPLES, 30))
        @given(case=strategy)
        def run(case: Any) -> None:
            _run(case, gateway, f"positive GET {case.operation.path}",
                 checks=[not_a_server_error])

        run()


def test_sse_responses_match_the_openapi_schema(api_schema: Any, gateway: GatewayServer,
                                                fake: FakeOCI) -> None:
    operation = _operation(api_schema, "/v1/messages")
    case = operation.Case(body={"model": "grok", "max_tokens": 20, "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]},
                          media_type="application/json")
    response = case.call(base_url=gateway.url, headers={"x-api-key": ALICE}, timeout=30)
    assert response.status_code == 200 and _is_sse(response)
    case.validate_response(response, checks=[response_schema_conformance])


@pytest.mark.parametrize("path", ANTHROPIC_OPS)
def test_property_requests_over_http(gateway: GatewayServer, fake: FakeOCI, path: str) -> None:
    """The translator property strategies (tests.test_property), sent through the whole stack:
    arbitrary valid Anthropic requests to a catalog model end in a 200 or a 4xx, never a 5xx,
    and every OCI body the gateway sends passes the emulator's validation."""
    from tests.test_property import anthropic_request

    count = path.endswith("count_tokens")
    label = f"property {path}"

    @FUZZ
    @given(data=anthropic_request(count_tokens=count), model=st.sampled_from(MODELS))
    def run(data: dict[str, Any], model: str) -> None:
        data["model"] = model
        if not count:
            data["max_tokens"] = min(data["max_tokens"], 2048)
        r = httpx.post(gateway.url + path, json=data, timeout=30,
                       headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"})
        CASES[label] += 1
        STATUSES.setdefault(label, Counter())[r.status_code] += 1
        assert r.status_code < 500, r.text
        if r.status_code == 200 and data.get("stream"):
            check_stream(r.text, allow_error=False)
        elif r.status_code != 200:
            assert r.json()["error"]["type"] in ("invalid_request_error",
                                                 "request_too_large"), r.text

    run()
    rejected = [r for r in fake.requests if r.status == 400]
    assert not rejected, [(r.body, r.error_message) for r in rejected[:3]]
