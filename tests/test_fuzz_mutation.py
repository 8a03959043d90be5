"""Mutation fuzzing of the running gateway with the recorded client requests, over real HTTP.

Where ``test_fuzz_schema`` generates bodies from the OpenAPI description (so they are shaped
like the schema, not like real traffic), this starts from every recorded Claude Code / SDK
request in ``tests/fixtures/anthropic/`` (each has ``path`` and ``body``) and breaks it the way
a buggy client, a proxy or an attacker would: a field dropped, a value's type swapped, a value
made null, huge or empty, a field of a tool's ``input_schema`` replaced (the sanitiser walks
those), or the JSON text cut short. Each mutant goes to the session ``gateway`` (with the
emulator behind it) on ``/v1/messages`` and on ``/v1/messages/count_tokens``.

Checks on every response: never a 5xx (anything a client sends is a 4xx or an answer), every
4xx is a well-formed Anthropic error envelope whose ``error.type`` matches the status, and a
200 stream passes :func:`devtools.sse_check.check_stream` without a gateway-side ``api_error``.

Bounded and reproducible: ``random.Random(FUZZ_SEED)`` (default 1234), ``FUZZ_MUTATIONS``
(default 1500) mutants in total, split evenly over the two routes. The counts per status are
printed (``-s`` not needed; status 0 counts dropped connections).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from app.errors import STATUS_BY_TYPE
from devtools.sse_check import check_stream
from emulator import FakeOCI
from tests.harness import ALICE, FIXTURES, TEST_MODELS, GatewayServer

MUTATIONS = int(os.environ.get("FUZZ_MUTATIONS", "1500"))
SEED = int(os.environ.get("FUZZ_SEED", "1234"))
ROUTES = ["/v1/messages", "/v1/messages/count_tokens"]
# "tiny" has a 1000-token window: most recorded prompts would only test the 400 for length
MODELS = [name for name in TEST_MODELS if name != "tiny"]
# the statuses the gateway gives outside the STATUS_BY_TYPE table (app/api/deps.py read_body,
# app/main.py's 405)
EXTRA_STATUS = {("timeout_error", 408), ("invalid_request_error", 405)}

STATUSES: dict[str, Counter[int]] = {}


def _recorded() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        record = orjson.loads(path.read_bytes())
        if isinstance(record, dict) and isinstance(record.get("body"), dict):
            out.append((path.name, record["body"]))
    return out


RECORDED = _recorded()

# ---- mutations -----------------------------------------------------------------------------

HUGE_TEXT = "x" * 200_000
HOSTILE: list[Any] = [
    None, 0, -1, 1.5, 2**64, -(2**63), 10**30, 1e308, True, False, "", "x", HUGE_TEXT, "\u0000",
    [], [None], [1, "a"], {}, {"a": 1}, {"type": "bogus"}, [[[]]],
]
# the keywords app.translate.tool_schema interprets, and what it must survive in them
SCHEMA_KEYWORDS = ["required", "properties", "items", "anyOf", "oneOf", "allOf", "enum",
                   "type", "$ref", "$defs", "additionalProperties", "description", "const",
                   "format", "default"]
SCHEMA_HOSTILE: list[Any] = [*HOSTILE, ["a", 1], [{"type": "string"}, 5], {"x": 5},
                             {"x": None}, "#/nope", "#", ["string", "null"], [None]]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value (the root excluded), depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _at(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


def _parent(body: Any, path: tuple[Any, ...]) -> Any:
    return _at(body, path[:-1])


def _drop(rng: random.Random, body: dict[str, Any]) -> str:
    paths = [p for p in _paths(body) if isinstance(_parent(body, p), dict)]
    path = rng.choice(paths)
    del _parent(body, path)[path[-1]]
    return f"drop {path!r}"


def _replace(rng: random.Random, body: dict[str, Any]) -> str:
    """A value's type swapped, or the value made null, huge or empty."""
    path = rng.choice(list(_paths(body)))
    value = rng.choice(HOSTILE)
    _parent(body, path)[path[-1]] = value
    return f"set {path!r} = {_short(value)}"


def _top_level(rng: random.Random, body: dict[str, Any]) -> str:
    # the fields the gateway reads first get extra attention: most paths are deep in messages
    key = rng.choice(["model", "messages", "max_tokens", "stream", "system", "tools",
                      "tool_choice", "thinking", "output_config", "stop_sequences",
                      "temperature", "top_p", "top_k", "metadata"])
    value = rng.choice(HOSTILE)
    body[key] = value
    return f"set {key!r} = {_short(value)}"


def _tool_schema(rng: random.Random, body: dict[str, Any]) -> str:
    """A field somewhere inside a tool's ``input_schema`` replaced."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        body["tools"] = tools = [{"name": "probe", "input_schema": {
            "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}]
    index = rng.randrange(len(tools))
    tool = tools[index]
    if not isinstance(tool, dict) or not isinstance(tool.get("input_schema"), dict):
        return _replace(rng, body)
    schema = tool["input_schema"]
    # a schema object somewhere in it: the root or any dict below it
    holders = [schema, *(v for p in _paths(schema) if isinstance(v := _at(schema, p), dict))]
    holder = rng.choice(holders)
    keyword = rng.choice(SCHEMA_KEYWORDS)
    value = rng.choice(SCHEMA_HOSTILE)
    holder[keyword] = value
    return f"tools[{index}].input_schema ...{keyword} = {_short(value)}"


MUTATORS: list[Callable[[random.Random, dict[str, Any]], str]] = [
    _drop, _replace, _replace, _top_level, _tool_schema, _tool_schema,
]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def mutants(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` (description, body bytes) pairs; about one in ten is cut short."""
    for _ in range(count):
        name, recorded = rng.choice(RECORDED)
        body = copy.deepcopy(recorded)
        body["model"] = rng.choice(MODELS)
        if isinstance(body.get("max_tokens"), int):
            body["max_tokens"] = min(body["max_tokens"], 256)  # keep the emulator's answer short
        what = [rng.choice(MUTATORS)(rng, body) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        # the stdlib encoder: orjson refuses integers past 64 bits, which clients can send
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        if rng.random() < 0.1:
            cut = rng.randrange(len(data))
            data = data[:cut]
            what.append(f"truncated at byte {cut}")
        yield f"{name}: {'; '.join(what)}", data


# ---- checks --------------------------------------------------------------------------------


def check_response(response: httpx.Response) -> None:
    status = response.status_code
    assert status < 500, f"HTTP {status}: {response.text[:300]}"
    if status >= 400:
        envelope = response.json()
        assert envelope.get("type") == "error", envelope
        error = envelope.get("error")
        assert isinstance(error, dict), envelope
        kind, message = error.get("type"), error.get("message")
        assert isinstance(kind, str) and isinstance(message, str) and message, envelope
        assert STATUS_BY_TYPE.get(kind) == status or (kind, status) in EXTRA_STATUS, (
            status, envelope)
        assert isinstance(envelope.get("request_id", ""), str)
        assert response.headers.get("request-id"), "error without a request-id header"
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        result = check_stream(response.text, allow_error=True)
        error = result["error"]
        assert error is None or error["type"] != "api_error", f"stream failed: {error}"
    else:
        payload = response.json()
        assert isinstance(payload, dict) and (
            payload.get("type") == "message" or "input_tokens" in payload), payload


@pytest.fixture(scope="module", autouse=True)
def _report(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    lines = [f"mutation fuzz: {sum(sum(c.values()) for c in STATUSES.values())} requests "
             f"(seed {SEED})"]
    for route, counts in sorted(STATUSES.items()):
        codes = ", ".join(f"{c}x{n}" for c, n in sorted(counts.items()))
        lines.append(f"  {route}: {codes}")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines), flush=True)


def test_recorded_requests_are_there() -> None:
    # an empty fixture directory would make the fuzz below pass without sending anything
    assert len(RECORDED) >= 20, f"only {len(RECORDED)} recorded requests in {FIXTURES}"


@pytest.mark.parametrize("route", ROUTES)
def test_mutated_recorded_requests_never_5xx(gateway: GatewayServer, fake: FakeOCI,
                                             route: str) -> None:
    rng = random.Random(f"{SEED}:{route}")
    counts = STATUSES.setdefault(route, Counter())
    failures: list[str] = []
    headers = {"x-api-key": ALICE, "anthropic-version": "2023-06-01",
               "content-type": "application/json"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        for what, data in mutants(rng, MUTATIONS // len(ROUTES)):
            try:
                response = client.post(route, content=data)
            except httpx.TransportError as err:  # the gateway dropped the connection
                counts[0] += 1
                failures.append(f"{what}\n    -> no response: {err!r}")
                continue
            counts[response.status_code] += 1
            try:
                check_response(response)
            except (AssertionError, ValueError) as err:
                failures.append(f"{what}\n    -> {err}")
    # every failure at once: one run shows each distinct bug, not only the first
    assert not failures, f"{len(failures)} bad responses:\n" + "\n".join(failures[:20])
