"""Tap the gateway's OCI transport, and write what it saw as cassettes the emulator replays.

Contract:
- :class:`RecordingClient` wraps the running gateway's :class:`~app.oci.client.OciClient`
  through its public API only (``open()``, and the answer's ``events()`` / ``json()`` /
  ``close()`` / ``opc_request_id`` / ``retirement_info``) and notes every exchange in a
  :class:`Tap`: the exact body bytes sent, then the answer (the JSON body, or each SSE event
  as its ``data:`` string) or the :class:`~app.oci.errors.UpstreamError` (status, message,
  opc-request-id). Everything else is delegated, so the gateway runs as it always does.
- :func:`write_cassettes` writes each exchange that got an HTTP status as one file in the
  emulator's **cassette format 1** (emulator/README.md "Replaying recorded exchanges"), in
  the order they were sent, redacted (:func:`redactor`): OCIDs of users, tenancies and
  compartments become ``ocid1.<kind>.oc1..redacted``; the text a scenario marked private
  (the tool results of the Claude Code turn: file contents, command output) becomes
  ``<redacted …sha256 …>`` wherever it occurs, request and answer. Credentials and signatures
  never reach the tap: signing happens inside ``OciClient.open``, so ``authorization``,
  ``x-content-sha256`` and the key id are not in any cassette.
- The marks carry the blanked text's length and digest, so the emulator's replay
  (``python -m emulator --replay DIR``) still matches the same requests (emulator/cassettes.py).

What the public API cannot give is recorded as close as it can: the events are re-encoded from
the parsed chunks (same JSON, maybe not the same bytes; ``[DONE]`` is not kept), the answer
headers are content-type, opc-request-id and model-retirement-info, and an error's body is
``{"code", "message"}`` with the gateway's reading of OCI's message.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.oci.client import CHAT_PATH, OciClient, UpstreamAnswer
from app.oci.errors import UpstreamError

FORMAT = 1
_OCID = re.compile(r"ocid1\.(user|tenancy|compartment)\.[A-Za-z0-9._-]+")
#: shorter private texts are only redacted where they are a whole string: a substring that short
#: ("ok", "done") would blank unrelated words all over the request
_SUBSTRING_MIN = 12


@dataclass
class Exchange:
    """One ``OciClient.open`` call and what came of it."""

    seq: int
    model: str
    scenario: str
    private: tuple[str, ...]
    body: bytes
    stream: bool
    opc_request_id: str
    status: int | None = None
    response: Any = None
    events: list[str] | None = None
    error: dict[str, Any] | None = None
    cut: bool = False  # the stream broke after these events
    #: answer headers the public API shows besides content-type and opc-request-id
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def fail(self, err: UpstreamError) -> None:
        self.status = err.upstream_status
        self.error = {
            "status": err.upstream_status,
            "kind": str(err.upstream_kind),
            "message": err.message,
            "opc_request_id": err.opc_request_id or self.opc_request_id,
        }


class Tap:
    """The exchanges of a run, labelled with the scenario that was running when each began."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.model = self.scenario = ""
        self.private: tuple[str, ...] = ()
        self._lock = threading.Lock()  # the runner's thread labels, the gateway's thread taps

    def label(self, model: str, scenario: str, private: tuple[str, ...] = ()) -> None:
        with self._lock:
            self.model, self.scenario, self.private = model, scenario, private

    def begin(self, body: bytes, stream: bool, opc_request_id: str) -> Exchange:
        with self._lock:
            ex = Exchange(
                len(self.exchanges) + 1,
                self.model,
                self.scenario,
                self.private,
                body,
                stream,
                opc_request_id,
            )
            self.exchanges.append(ex)
            return ex

    def of(self, model: str, scenario: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if (e.model, e.scenario) == (model, scenario)]


class _RecordingAnswer:
    """An :class:`UpstreamAnswer` whose events or body are also noted in the exchange."""

    __slots__ = ("_answer", "_ex", "opc_request_id", "retirement_info")

    def __init__(self, answer: UpstreamAnswer, ex: Exchange) -> None:
        self._answer = answer
        self._ex = ex
        self.opc_request_id = answer.opc_request_id
        self.retirement_info = answer.retirement_info
        if answer.retirement_info:
            ex.headers["model-retirement-info"] = answer.retirement_info

    async def events(
        self, *, idle: float, ping_every: float
    ) -> AsyncGenerator[list[dict[str, Any]] | None, None]:
        inner = self._answer.events(idle=idle, ping_every=ping_every)
        seen = self._ex.events = []
        try:
            async for batch in inner:
                if batch:
                    seen.extend(orjson.dumps(event).decode() for event in batch)
                yield batch
        except UpstreamError:
            self._ex.cut = True
            raise
        finally:
            await inner.aclose()

    async def json(self, *, idle: float) -> dict[str, Any]:
        try:
            value = await self._answer.json(idle=idle)
        except UpstreamError:
            self._ex.cut = True
            raise
        self._ex.response = value
        return value

    def close(self) -> None:
        self._answer.close()


class RecordingClient:
    """Stands in for the gateway's ``OciClient``; ``open`` is tapped, the rest delegated."""

    def __init__(self, inner: OciClient, tap: Tap) -> None:
        self._inner = inner
        self.tap = tap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # reconfigure, close, auth, cfg, ...

    async def open(
        self, base_url: str, body: bytes, opc_request_id: str, *, stream: bool
    ) -> _RecordingAnswer:
        ex = self.tap.begin(body, stream, opc_request_id)
        try:
            answer = await self._inner.open(base_url, body, opc_request_id, stream=stream)
        except UpstreamError as err:
            ex.fail(err)
            raise
        ex.status = 200
        ex.opc_request_id = answer.opc_request_id
        return _RecordingAnswer(answer, ex)


def placeholder(text: str, *, escaped: bool = False) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    form = " json-escaped" if escaped else ""
    return f"<redacted{form} text: {len(text)} chars, sha256 {digest}>"


def _escaped(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def redactor(private: tuple[str, ...]) -> Callable[[str], str]:
    """A function that blanks OCIDs of people and places, and the ``private`` texts."""
    pairs: list[tuple[str, str]] = []
    for text in sorted(set(private), key=len, reverse=True):  # longest first: no partial hits
        pairs.append((text, placeholder(text)))
        if _escaped(text) != text:
            pairs.append((_escaped(text), placeholder(text, escaped=True)))

    def redact(s: str) -> str:
        for text, mark in pairs:
            if s == text:
                return mark
            if len(text) >= _SUBSTRING_MIN and text in s:
                s = s.replace(text, mark)
        return _OCID.sub(lambda m: f"ocid1.{m.group(1)}.oc1..redacted", s)

    return redact


def cassette(ex: Exchange) -> dict[str, Any]:
    """The exchange as a format-1 cassette, redacted."""
    redact = redactor(ex.private)
    request = {
        "method": "POST",
        "path": CHAT_PATH,
        "body": _map_strings(orjson.loads(ex.body), redact),
        # kept for people; the emulator matches on method, path and body only
        "headers": {
            "accept": "text/event-stream" if ex.stream else "application/json",
            "opc-request-id": ex.opc_request_id,
        },
        "model": ex.model,
        "scenario": ex.scenario,
        "redacted": [
            {"sha256": hashlib.sha256(t.encode()).hexdigest(), "chars": len(t)}
            for t in sorted(set(ex.private))
        ],
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ex.at)),
    }
    response: dict[str, Any] = {"status": ex.status}
    if ex.error is not None:
        response["headers"] = {
            "content-type": "application/json",
            "opc-request-id": ex.error["opc_request_id"] or "",
        }
        response["body"] = _map_strings(
            {"code": ex.error["kind"], "message": ex.error["message"]}, redact
        )
    else:
        response["headers"] = {
            "content-type": "text/event-stream" if ex.stream else "application/json",
            "opc-request-id": ex.opc_request_id,
            **ex.headers,
        }
        if ex.stream:
            response["events"] = [redact(e) for e in ex.events or []]
        else:
            response["body"] = _map_strings(ex.response, redact)
        if ex.cut:
            response["cut"] = True  # the live answer broke here; a replay ends cleanly
    return {"format": FORMAT, "request": request, "response": response}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_cassettes(directory: Path, exchanges: list[Exchange]) -> list[Path]:
    """One file per exchange with an HTTP status, named so file-name order is send order."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for ex in exchanges:
        if ex.status is None:  # a timeout or a refused connection: nothing to replay
            continue
        path = directory / f"{ex.seq:04d}-{_safe(ex.model)}-{_safe(ex.scenario)}.json"
        path.write_text(
            json.dumps(cassette(ex), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        written.append(path)
    return written
