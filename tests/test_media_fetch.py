"""Anthropic ``url`` image/document sources: fetched by the gateway and sent to OCI as base64
data URLs, with the SSRF guards (loopback refused by default, a redirect to it refused, the
size limit, the content type, the deadline) and fetching switched off, each a 400.

A local HTTP server on 127.0.0.1 serves the media. Loopback is "private", so the gateway that
fetches from it trusts the host name ``localhost`` (``media.allowed_hosts``); ``127.0.0.1``
stays untrusted, which is what the redirect test needs.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.oci.media_fetch import is_public, sniff
from emulator import FakeOCI, TestKey
from tests.harness import GatewayServer, chat, metric, write_config, write_keys

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"x" * 64
SLOW = threading.Event()


class _Media(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:
        if self.path == "/slow.png":
            SLOW.wait(5)  # held until the test ends; the gateway's deadline is 1 s
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def media_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Media)
    server.daemon_threads = True
    port = server.server_address[1]
    _Media.routes = {
        "/img.png": (200, {"content-type": "image/png"}, PNG),
        "/slow.png": (200, {"content-type": "image/png"}, PNG),
        "/raw": (200, {"content-type": "application/octet-stream"}, PNG),
        "/big.png": (200, {"content-type": "image/png"}, PNG + b"\x00" * 5000),
        "/page.html": (200, {"content-type": "text/html"}, b"<html></html>"),
        "/doc.pdf": (200, {"content-type": "application/pdf"}, PDF),
        "/hop": (302, {"location": "/img.png"}, b""),
        "/to-loopback": (302, {"location": f"http://127.0.0.1:{port}/img.png"}, b""),
        "/loop": (302, {"location": "/loop"}, b""),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    SLOW.set()
    server.shutdown()


def _gateway(
    fake: FakeOCI, key: TestKey, factory: pytest.TempPathFactory, name: str, media: dict[str, Any]
) -> GatewayServer:
    directory = factory.mktemp(name)
    return GatewayServer(
        write_config(
            directory, fake.url, key.config_path, keys_file=write_keys(directory), media=media
        )
    )


@pytest.fixture(scope="module")
def fetching(
    fake_session: FakeOCI, oci_key: TestKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    media = {"allowed_hosts": ["localhost"], "max_bytes": 1000, "timeout": 1}
    with _gateway(fake_session, oci_key, tmp_path_factory, "media", media) as gw:
        yield gw


def _image(url: str, model: str = "grok") -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 20,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": url}},
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    }


def _oci_image_urls(fake: FakeOCI) -> list[str]:
    parts = [p for msg in chat(fake)["messages"] for p in msg.get("content") or []]
    return [p["imageUrl"]["url"] for p in parts if p.get("type") == "IMAGE"]


# --------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("2002:7f00:1::", False),
        ("not-an-ip", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_sniff() -> None:
    assert sniff(PNG) == "image/png" and sniff(PDF) == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp" and sniff(b"<html>") is None


# --------------------------------------------------------------------------- fetched


def test_url_image_goes_to_oci_as_base64(
    fetching: GatewayServer, fake: FakeOCI, media_server: int
) -> None:
    r = fetching.post("/v1/messages", _image(f"http://localhost:{media_server}/img.png"))
    assert r.status_code == 200, r.text
    assert _oci_image_urls(fake) == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert "localhost" not in fake.requests[-1].raw_body.decode()
    assert (
        metric(fetching.metrics_url, "gateway_media_fetches_total", kind="image", result="ok") >= 1
    )


def test_redirects_octet_stream_tool_results_and_documents(
    fetching: GatewayServer, fake: FakeOCI, media_server: int
) -> None:
    base = f"http://localhost:{media_server}"
    body = _image(f"{base}/hop")
    body["messages"][0]["content"].append(
        {"type": "image", "source": {"type": "url", "url": f"{base}/raw"}}
    )
    r = fetching.post("/v1/messages", body)
    assert r.status_code == 200, r.text
    assert [u[:22] for u in _oci_image_urls(fake)] == ["data:image/png;base64,"] * 2
    tool_turn = {
        "model": "grok",
        "max_tokens": 20,
        "messages": [
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "image", "source": {"type": "url", "url": f"{base}/img.png"}}
                        ],
                    }
                ],
            },
        ],
    }
    assert fetching.post("/v1/messages", tool_turn).status_code == 200
    assert all(u.startswith("data:image/png;base64,") for u in _oci_image_urls(fake))
    assert _oci_image_urls(fake)
    doc = {
        "model": "gemini",
        "max_tokens": 20,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "url", "url": f"{base}/doc.pdf"}},
                    {"type": "text", "text": "summarise"},
                ],
            }
        ],
    }
    r = fetching.post("/v1/messages", doc)
    assert r.status_code == 200, r.text
    parts = chat(fake)["messages"][-1]["content"]
    assert parts[0]["documentUrl"]["url"] == (
        "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    )


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/to-loopback", "non-public address"),  # the hop to 127.0.0.1 is checked again
        ("/loop", "more than 3 redirects"),
        ("/big.png", "larger than 1000 bytes"),
        ("/page.html", "content-type 'text/html' is not accepted"),
        ("/slow.png", "no answer within 1s"),
        ("/nothing.png", "HTTP 404"),
    ],
)
def test_refusals_are_400s_naming_the_block(
    fetching: GatewayServer, fake: FakeOCI, media_server: int, path: str, words: str
) -> None:
    r = fetching.post("/v1/messages", _image(f"http://localhost:{media_server}{path}"))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages[0].content[0].source.url: cannot fetch the image")
    assert words in error["message"]
    assert fake.requests == []  # nothing went to OCI


def test_loopback_is_refused_by_default(
    gateway: GatewayServer, fake: FakeOCI, media_server: int
) -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):  # a literal, a name, IPv6
        r = gateway.post("/v1/messages", _image(f"http://{host}:{media_server}/img.png"))
        assert r.status_code == 400, r.text
        assert "non-public address" in r.json()["error"]["message"]
    r = gateway.post("/v1/messages", _image("file:///etc/passwd"))
    assert r.status_code == 400 and "only http and https" in r.json()["error"]["message"]
    assert fake.requests == []


def test_fetch_switched_off_is_a_clear_400(
    fake_session: FakeOCI,
    oci_key: TestKey,
    tmp_path_factory: pytest.TempPathFactory,
    media_server: int,
) -> None:
    with _gateway(fake_session, oci_key, tmp_path_factory, "nomedia", {"fetch": False}) as gw:
        r = gw.post("/v1/messages", _image(f"http://localhost:{media_server}/img.png"))
    assert r.status_code == 400
    assert "media.fetch is off" in r.json()["error"]["message"]
    assert "send the image as base64" in r.json()["error"]["message"]
