"""Cassettes: recorded OCI exchanges the emulator replays (``python -m emulator --replay DIR``).

Contract. A cassette is one JSON file per exchange (``DIR/*.json``, read in file-name order):

```json
{"format": 1,
 "request": {"method": "POST", "path": "/20231130/actions/chat", "body": {"compartmentId": "...",
             "servingMode": {...}, "chatRequest": {...}}},
 "response": {"status": 200, "headers": {"content-type": "text/event-stream"},
              "events": ["{\"index\":0,...}", "[DONE]"]}}
```

* ``request.method`` and ``request.path`` (path plus query string, as sent) are required;
  ``request.body`` is the JSON body or ``null``. Anything else in ``request`` (headers, the
  time of the recording, ...) is kept but not used.
* ``response.status`` (int) is required; ``response.headers`` (name → value) optional; then
  exactly one of ``response.body`` (any JSON value, sent as ``application/json`` unless the
  headers say otherwise) or ``response.events`` (the ``data:`` payload strings of an SSE
  stream, in order, sent as ``data: <string>\\n\\n`` with ``content-type: text/event-stream``).
  Recorded ``content-length``, ``transfer-encoding``, ``content-encoding``, ``connection`` and
  ``opc-request-id`` headers are not replayed; every answer gets a fresh ``opc-request-id``.

Matching: the *key* of a request is (method, path without its ``compartmentId`` query
parameter, canonical JSON of the body without its top-level ``compartmentId``) — for a chat
call that is the serving mode (model id or endpoint id) plus the whole ``chatRequest``
(api format included), compared exactly; the compartment differs between a live tenancy and
a test. Cassettes with the same key are served in file-name order, one per request, and the
last one keeps answering after that (a recorded 429 followed by a 200 replays as such). A
request no cassette matches gets ``404 CassetteNotFound`` with its key's digest, model and
api format in the message.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FORMAT = 1
DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding",
                             "connection", "opc-request-id"})


class CassetteError(ValueError):
    """A cassette file that does not follow format 1."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _path_key(path: str) -> str:
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != "compartmentId"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def request_key(method: str, path: str, body: Any) -> str:
    """Digest of what a request is matched on (see the module docstring)."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "compartmentId"}
    raw = "\n".join((method.upper(), _path_key(path), _canonical(body)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def describe_request(body: Any) -> str:
    """``model X, apiFormat Y`` for messages about a chat request (best effort)."""
    if not isinstance(body, dict):
        return "no JSON body"
    mode = body.get("servingMode") or {}
    model = mode.get("modelId") or mode.get("endpointId") or "?"
    api_format = (body.get("chatRequest") or {}).get("apiFormat", "?")
    return f"model {model}, apiFormat {api_format}"


@dataclass
class Cassette:
    name: str
    method: str
    path: str
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    response_body: Any = None
    events: list[str] | None = None

    @property
    def key(self) -> str:
        return request_key(self.method, self.path, self.body)

    def reply_headers(self) -> dict[str, str]:
        headers = {k.lower(): str(v) for k, v in self.headers.items()
                   if k.lower() not in DROPPED_HEADERS}
        if self.events is not None:
            headers["content-type"] = "text/event-stream"
        else:
            headers.setdefault("content-type", "application/json")
        return headers

    def to_dict(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status, "headers": self.headers}
        if self.events is not None:
            response["events"] = self.events
        else:
            response["body"] = self.response_body
        return {"format": FORMAT, "request": {"method": self.method, "path": self.path,
                                              "body": self.body}, "response": response}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def from_dict(cls, data: Any, name: str) -> Cassette:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CassetteError(f"{name}: not a format {FORMAT} cassette (\"format\": {FORMAT})")
        request, response = data.get("request"), data.get("response")
        if not isinstance(request, dict) or not isinstance(response, dict):
            raise CassetteError(f"{name}: needs request and response objects")
        method, path, status = request.get("method"), request.get("path"), response.get("status")
        if not isinstance(method, str) or not isinstance(path, str):
            raise CassetteError(f"{name}: request.method and request.path must be strings")
        if not isinstance(status, int) or isinstance(status, bool):
            raise CassetteError(f"{name}: response.status must be an integer")
        events = response.get("events")
        if ("body" in response) == (events is not None):
            raise CassetteError(f"{name}: response needs exactly one of body or events")
        if events is not None and not (isinstance(events, list)
                                       and all(isinstance(e, str) for e in events)):
            raise CassetteError(f"{name}: response.events must be a list of strings")
        headers = response.get("headers") or {}
        if not isinstance(headers, dict):
            raise CassetteError(f"{name}: response.headers must be an object")
        return cls(name=name, method=method, path=path, body=request.get("body"),
                   status=status, headers=headers, response_body=response.get("body"),
                   events=events)


class CassetteLibrary:
    """The cassettes of a folder, indexed by request key; thread-safe ``take``."""

    def __init__(self, cassettes: list[Cassette]) -> None:
        self.cassettes = cassettes
        self._by_key: dict[str, list[Cassette]] = {}
        for cassette in cassettes:
            self._by_key.setdefault(cassette.key, []).append(cassette)
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: Path) -> CassetteLibrary:
        if not directory.is_dir():
            raise CassetteError(f"{directory}: not a directory")
        cassettes = []
        for path in sorted(directory.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise CassetteError(f"{path.name}: not JSON ({exc})") from None
            cassettes.append(Cassette.from_dict(data, path.name))
        return cls(cassettes)

    def __len__(self) -> int:
        return len(self.cassettes)

    def take(self, method: str, path: str, body: Any) -> Cassette | None:
        key = request_key(method, path, body)
        with self._lock:
            candidates = self._by_key.get(key)
            if not candidates:
                return None
            served = self._served.get(key, 0)
            self._served[key] = served + 1
            return candidates[min(served, len(candidates) - 1)]

    def miss_message(self, method: str, path: str, body: Any) -> str:
        key = request_key(method, path, body)
        return (f"no cassette matches {method.upper()} {_path_key(path)} "
                f"({describe_request(body)}, key {key[:16]}); {len(self)} cassette(s) loaded")
