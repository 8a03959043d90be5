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

Redacted cassettes: ``python -m app conformance --record`` blanks OCIDs of users, tenancies and
compartments (``ocid1.<kind>.oc1..redacted``) and the text of the user's own files
(``<redacted text: N chars, sha256 D>``, or ``<redacted json-escaped text: …>`` inside a JSON
string). Such a request can never be equal to a live one, so a cassette whose body holds those
marks is matched by *shape* when no exact key matches: every other string, number and key is
compared exactly, and each mark matches a text of its length whose sha256 starts with its
digest (an OCID mark matches any OCID of its kind). So a user's recorded run replays against
the same requests again, and a request that differs in anything but the blanked parts misses.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FORMAT = 1
DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding",
                             "connection", "opc-request-id"})


_MARK = re.compile(
    r"<redacted( json-escaped)? text: (\d+) chars, sha256 ([0-9a-f]{16})>"
    r"|ocid1\.(user|tenancy|compartment)\.oc1\.\.redacted"
)


def _has_marks(value: Any) -> bool:
    if isinstance(value, str):
        return _MARK.search(value) is not None
    if isinstance(value, list):
        return any(_has_marks(v) for v in value)
    if isinstance(value, dict):
        return any(_has_marks(v) for v in value.values())
    return False


def _text_matches(recorded: str, live: str) -> bool:
    """``live`` equals ``recorded`` with each mark replaced by a text the mark describes."""
    pattern, checks = [], []
    pos = 0
    for m in _MARK.finditer(recorded):
        pattern.append(re.escape(recorded[pos:m.start()]))
        if m.group(4):
            pattern.append(rf"(ocid1\.{m.group(4)}\.[A-Za-z0-9._-]+)")
            checks.append(None)
        else:
            # an escaped text is longer than the text it encodes: match lazily, check after
            pattern.append(r"(.+?)" if m.group(1) else rf"(.{{{int(m.group(2))}}})")
            checks.append((bool(m.group(1)), int(m.group(2)), m.group(3)))
        pos = m.end()
    pattern.append(re.escape(recorded[pos:]))
    found = re.fullmatch("".join(pattern), live, re.DOTALL)
    if found is None:
        return False
    for text, check in zip(found.groups(), checks, strict=True):
        if check is None:
            continue
        escaped, chars, digest = check
        if escaped:
            try:
                text = json.loads(f'"{text}"')
            except ValueError:
                return False
        if len(text) != chars or not hashlib.sha256(text.encode()).hexdigest().startswith(digest):
            return False
    return True


def _shape_matches(recorded: Any, live: Any) -> bool:
    if isinstance(recorded, str):
        return isinstance(live, str) and (recorded == live or _text_matches(recorded, live))
    if isinstance(recorded, list):
        return (isinstance(live, list) and len(live) == len(recorded)
                and all(_shape_matches(r, v) for r, v in zip(recorded, live, strict=True)))
    if isinstance(recorded, dict):
        return (isinstance(live, dict) and live.keys() == recorded.keys()
                and all(_shape_matches(recorded[k], live[k]) for k in recorded))
    return recorded == live and type(recorded) is type(live)


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
        #: cassettes with redaction marks, matched by shape when no key matches (docstring)
        self._redacted = [c for c in cassettes if _has_marks(c.body)]

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
        if key not in self._by_key:
            key = self._redacted_key(method, path, body) or key
        with self._lock:
            candidates = self._by_key.get(key)
            if not candidates:
                return None
            served = self._served.get(key, 0)
            self._served[key] = served + 1
            return candidates[min(served, len(candidates) - 1)]

    def _redacted_key(self, method: str, path: str, body: Any) -> str | None:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "compartmentId"}
        where = (method.upper(), _path_key(path))
        for cassette in self._redacted:
            recorded = cassette.body
            if isinstance(recorded, dict):
                recorded = {k: v for k, v in recorded.items() if k != "compartmentId"}
            if ((cassette.method.upper(), _path_key(cassette.path)) == where
                    and _shape_matches(recorded, body)):
                return cassette.key
        return None

    def miss_message(self, method: str, path: str, body: Any) -> str:
        key = request_key(method, path, body)
        return (f"no cassette matches {method.upper()} {_path_key(path)} "
                f"({describe_request(body)}, key {key[:16]}); {len(self)} cassette(s) loaded")
