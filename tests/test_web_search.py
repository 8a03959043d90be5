"""Anthropic's ``web_search`` server tool, run by the gateway against a search backend.

A stand-in SearXNG (``GET /search?q=…&format=json``) runs on 127.0.0.1; the emulator is scripted
so that the model first calls the ``web_search`` function and then answers. The tests check
the OCI requests (the second carries the results as a tool result), the Anthropic blocks and
usage over HTTP with the SDK (JSON and SSE), ``max_uses``, domain filters, the history round
trip, no backend configured, a backend that fails or is too slow (an error result, not an
HTTP error), and the recorded Claude Code request (cc-25).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.conformance.stream_check import check_message, check_stream
from emulator import FakeOCI, Scenario, TestKey, tool_call
from tests.harness import ALICE, GatewayServer, fixture_body, sdk, write_config, write_keys

TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}

RESULTS = [
    {"url": "https://www.example.com/paris", "title": "Paris weather",
     "content": "Sunny, 21 C.", "publishedDate": "2026-11-30T10:00:00"},
    {"url": "https://news.other.org/paris", "title": "Paris news", "content": "Rain later."},
    {"url": "https://blocked.net/x", "title": "Blocked", "content": "nope"},
]


class _Searx(BaseHTTPRequestHandler):
    queries: list[dict[str, list[str]]] = []
    #: holds the "slow" searches until the serving fixture ends (one event per fixture)
    release = threading.Event()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        _Searx.queries.append(query)
        q = query.get("q", [""])[0]
        if url.path != "/search" or query.get("format") != ["json"]:
            status, body = 404, b"not found"
        elif "down" in q:
            status, body = 500, b"<html>internal error</html>"
        else:
            if "slow" in q:
                _Searx.release.wait(5)  # held until the fixture ends; the gateway's timeout: 1 s
            status, body = 200, json.dumps({"query": q, "results": RESULTS}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def searx() -> Iterator[str]:
    _Searx.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Searx)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Searx.release.set()
    server.shutdown()


@pytest.fixture(scope="module")
def searching(
    fake_session: FakeOCI, oci_key: TestKey, searx: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("websearch")
    ws = {"backend": "searxng", "url": searx, "timeout": 1, "max_results": 2}
    config = write_config(
        directory, fake_session.url, oci_key.config_path, keys_file=write_keys(directory),
        web_search=ws,
    )
    with GatewayServer(config) as gw:
        yield gw


@pytest.fixture()
def queries() -> list[dict[str, list[str]]]:
    _Searx.queries.clear()
    return _Searx.queries


def _body(text: str = "What is the weather in Paris?", **kw: Any) -> dict[str, Any]:
    return {"model": "grok", "max_tokens": 200, "tools": [kw.pop("tool", TOOL)],
            "messages": [{"role": "user", "content": text}], **kw}


def _script(fake: FakeOCI, *queries: str, answer: str = "It is sunny in Paris.") -> None:
    for q in queries:
        fake.push(Scenario(tool_calls=[tool_call("web_search", {"query": q})]))
    fake.push(Scenario(text=answer))


def _types(content: list[Any]) -> list[str]:
    return [b["type"] if isinstance(b, dict) else b.type for b in content]


def _tool_texts(chat_request: dict[str, Any]) -> list[str]:
    """The texts of the TOOL messages of a GENERIC chatRequest."""
    out = []
    for msg in chat_request["messages"]:
        if msg["role"] == "TOOL":
            out.append("".join(p.get("text", "") for p in msg.get("content") or []))
    return out


def test_json_answer_runs_the_search_and_feeds_the_model(
    searching: GatewayServer, fake: FakeOCI, queries: list[Any]
) -> None:
    _script(fake, "weather in Paris")
    message = sdk(searching).messages.create(**_body())
    check_message(message.model_dump())
    assert _types(message.content) == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message.content
    assert use.id.startswith("srvtoolu_") and use.name == "web_search"
    assert use.input == {"query": "weather in Paris"}
    assert result.tool_use_id == use.id
    items = result.content
    assert [i.url for i in items] == ["https://www.example.com/paris", "https://news.other.org/paris"]
    assert items[0].title == "Paris weather" and items[0].page_age == "2026-11-30T10:00:00"
    assert items[1].page_age is None and items[0].encrypted_content
    assert text.text == "It is sunny in Paris."
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use.web_search_requests == 1
    assert queries[0]["q"] == ["weather in Paris"]
    # the OCI side: the function offered, then the results as the tool result
    first, second = (r.body["chatRequest"] for r in fake.requests)
    assert [t["name"] for t in first["tools"]] == ["web_search"]
    assert first["tools"][0]["parameters"]["required"] == ["query"]
    assert first.get("isStream") is not True and second.get("isStream") is not True
    (tool_text,) = _tool_texts(second)
    assert "Paris weather" in tool_text and "Sunny, 21 C." in tool_text
    assert "https://www.example.com/paris" in tool_text
    assert message.usage.input_tokens > 0


def test_stream_sends_the_blocks_anthropic_sends(searching: GatewayServer, fake: FakeOCI) -> None:
    _script(fake, "weather in Paris")
    with sdk(searching).messages.stream(**_body()) as stream:
        final = stream.get_final_message()
    assert _types(final.content) == ["server_tool_use", "web_search_tool_result", "text"]
    assert final.content[0].input == {"query": "weather in Paris"}
    assert final.usage.server_tool_use.web_search_requests == 1
    _script(fake, "weather in Paris")
    resp = searching.post("/v1/messages", _body(stream=True))
    assert resp.status_code == 200, resp.text
    checked = check_stream(resp.text)
    assert _types(checked["content"]) == ["server_tool_use", "web_search_tool_result", "text"]
    assert checked["usage"]["server_tool_use"] == {"web_search_requests": 1}
    assert checked["text"] == "It is sunny in Paris."


def test_history_round_trips_into_a_tool_call_and_result(
    searching: GatewayServer, fake: FakeOCI
) -> None:
    _script(fake, "weather in Paris")
    first = searching.post("/v1/messages", _body()).json()
    fake.clear_requests()
    body = _body()
    body["messages"] += [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    resp = searching.post("/v1/messages", body)
    assert resp.status_code == 200, resp.text
    chat_request = fake.requests[0].body["chatRequest"]
    roles = [m["role"] for m in chat_request["messages"]]
    assert roles == ["USER", "ASSISTANT", "TOOL", "ASSISTANT", "USER"]
    call = chat_request["messages"][1]["toolCalls"][0]
    assert call["name"] == "web_search" and json.loads(call["arguments"]) == {
        "query": "weather in Paris"}
    (tool_text,) = _tool_texts(chat_request)
    assert "Sunny, 21 C." in tool_text  # decoded from encrypted_content


def test_max_uses_is_honoured(searching: GatewayServer, fake: FakeOCI, queries: list[Any]) -> None:
    _script(fake, "first", "second", answer="Done.")
    tool = {**TOOL, "max_uses": 1}
    message = searching.post("/v1/messages", _body(tool=tool)).json()
    check_message(message)
    assert _types(message["content"]) == [
        "server_tool_use", "web_search_tool_result",
        "server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][3]["content"] == {
        "type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
    assert message["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert [q["q"] for q in queries] == [["first"]]
    last = fake.requests[-1].body["chatRequest"]
    assert last["toolChoice"] == {"type": "NONE"}
    assert "max_uses_exceeded" in _tool_texts(last)[-1]


def test_domains_filter_the_results(searching: GatewayServer, fake: FakeOCI) -> None:
    _script(fake, "paris")
    tool = {**TOOL, "allowed_domains": ["example.com", "other.org"],
            "blocked_domains": ["news.other.org"]}
    message = searching.post("/v1/messages", _body(tool=tool)).json()
    assert [i["url"] for i in message["content"][1]["content"]] == ["https://www.example.com/paris"]
    _script(fake, "paris")
    tool = {**TOOL, "blocked_domains": ["example.com"]}
    message = searching.post("/v1/messages", _body(tool=tool)).json()
    urls = [i["url"] for i in message["content"][1]["content"]]
    assert urls == ["https://news.other.org/paris", "https://blocked.net/x"]


@pytest.mark.parametrize("query", ["down please", "slow please"])
def test_a_failing_backend_is_an_error_result(
    searching: GatewayServer, fake: FakeOCI, query: str
) -> None:
    _script(fake, query, answer="The search failed.")
    resp = searching.post("/v1/messages", _body(stream=True))
    assert resp.status_code == 200, resp.text
    checked = check_stream(resp.text)
    assert checked["content"][1]["content"] == {
        "type": "web_search_tool_result_error", "error_code": "unavailable"}
    assert checked["text"] == "The search failed."
    (tool_text,) = _tool_texts(fake.requests[-1].body["chatRequest"])
    assert "unavailable" in tool_text


def test_without_a_backend_the_answer_says_so(gateway: GatewayServer, fake: FakeOCI) -> None:
    _script(fake, "weather", answer="Web search is not set up.")
    message = gateway.post("/v1/messages", _body()).json()
    check_message(message)
    assert message["content"][1]["content"]["error_code"] == "unavailable"
    assert message["usage"]["server_tool_use"]["web_search_requests"] == 0
    (tool_text,) = _tool_texts(fake.requests[-1].body["chatRequest"])
    assert "web_search.backend" in tool_text


def test_claude_code_websearch_request_replays(searching: GatewayServer, fake: FakeOCI) -> None:
    _script(fake, "weather in Paris", answer="Paris: sunny.")
    body = fixture_body("cc-25-websearch-server-tool.json", "claude-opus-4-8")
    resp = searching.post("/v1/messages", body, key=ALICE)
    assert resp.status_code == 200, resp.text
    checked = check_stream(resp.text)
    assert _types(checked["content"]) == ["server_tool_use", "web_search_tool_result", "text"]
    first, second = (r.body["chatRequest"] for r in fake.requests)
    assert first["toolChoice"]["type"] == "FUNCTION"  # Claude Code forces the search ...
    assert second["toolChoice"] == {"type": "AUTO"}  # ... once, not on every turn


@pytest.mark.parametrize("model", ["llama", "gpt-oss", "gemini", "cohere", "command-a-reasoning"])
def test_every_family_gets_the_results_as_a_tool_result(
    searching: GatewayServer, fake: FakeOCI, model: str
) -> None:
    _script(fake, "weather in Paris")
    resp = searching.post("/v1/messages", {**_body(), "model": model})
    assert resp.status_code == 200, resp.text
    message = check_message(resp.json())
    assert _types(message["content"]) == ["server_tool_use", "web_search_tool_result", "text"]
    assert len(fake.requests) == 2
    assert "Sunny, 21 C." in json.dumps(fake.requests[1].body["chatRequest"])


def test_a_client_tool_call_ends_the_loop(searching: GatewayServer, fake: FakeOCI) -> None:
    fake.push(Scenario(tool_calls=[tool_call("web_search", {"query": "paris"}),
                                   tool_call("Read", {"path": "/tmp/x"})]))
    read = {"name": "Read", "input_schema": {"type": "object",
                                             "properties": {"path": {"type": "string"}}}}
    body = {**_body(), "tools": [TOOL, read]}
    message = check_message(searching.post("/v1/messages", body).json())
    assert _types(message["content"]) == ["server_tool_use", "web_search_tool_result", "tool_use"]
    assert message["stop_reason"] == "tool_use" and len(fake.requests) == 1


class _Hosted(BaseHTTPRequestHandler):
    """Brave's ``GET /res/v1/web/search`` and Tavily's ``POST /search``."""

    seen: list[dict[str, Any]] = []

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        _Hosted.seen.append({"path": url.path, "query": parse_qs(url.query),
                             "token": self.headers.get("x-subscription-token")})
        self._answer({"type": "search", "web": {"results": [
            {"url": "https://brave.example/a", "title": "A", "description": "from brave",
             "page_age": "2026-01-02T00:00:00"}]}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Hosted.seen.append({"path": self.path, "json": json.loads(self.rfile.read(length)),
                             "auth": self.headers.get("authorization")})
        self._answer({"query": "q", "results": [
            {"url": "https://tavily.example/b", "title": "B", "content": "from tavily",
             "score": 0.9}]})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("backend", ["brave", "tavily"])
def test_hosted_backends_speak_their_apis(
    fake_session: FakeOCI, oci_key: TestKey, tmp_path_factory: pytest.TempPathFactory,
    backend: str,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hosted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hosted.seen.clear()
    directory = tmp_path_factory.mktemp(backend)
    (directory / "search.key").write_text("secret-token\n")
    path = "/res/v1/web/search" if backend == "brave" else "/search"
    ws = {"backend": backend, "url": f"http://127.0.0.1:{server.server_address[1]}{path}",
          "api_key_file": str(directory / "search.key")}
    config = write_config(directory, fake_session.url, oci_key.config_path,
                          keys_file=write_keys(directory), web_search=ws)
    try:
        with GatewayServer(config) as gw:
            fake_session.reset()
            _script(fake_session, "paris")
            tool = {**TOOL, "allowed_domains": ["brave.example", "tavily.example"]}
            message = check_message(gw.post("/v1/messages", _body(tool=tool)).json())
    finally:
        server.shutdown()
    (seen,) = _Hosted.seen
    (item,) = message["content"][1]["content"]
    if backend == "brave":
        assert seen["token"] == "secret-token"
        assert seen["query"]["q"] == ["paris (site:brave.example OR site:tavily.example)"]
        assert item["url"] == "https://brave.example/a" and item["page_age"].startswith("2026")
    else:
        assert seen["auth"] == "Bearer secret-token"
        assert seen["json"]["query"] == "paris"
        assert seen["json"]["include_domains"] == ["brave.example", "tavily.example"]
        assert item["url"] == "https://tavily.example/b" and "page_age" not in item


def test_a_client_leaving_mid_loop_frees_the_stream(
    searching: GatewayServer, fake: FakeOCI, caplog: pytest.LogCaptureFixture
) -> None:
    _script(fake, "slow please")
    with httpx.Client(timeout=10) as client, client.stream(
        "POST", searching.url + "/v1/messages", json=_body(stream=True),
        headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"},
    ) as resp:
        assert resp.status_code == 200
        first = next(resp.iter_bytes())
        assert first.startswith(b"event: message_start")
    # the gateway goes on serving; nothing failed on its side
    fake.reset()
    _script(fake, "weather in Paris")
    message = check_message(searching.post("/v1/messages", _body()).json())
    assert message["text"] and message["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
