"""Scripted answers: what the emulator replies to the next matching request.

Contract: a ``Scenario`` is a plain dataclass that round-trips through JSON
(``to_dict``/``from_dict``, unknown keys rejected) so it can be queued in-process with
``FakeOCI.push`` or over HTTP with ``POST /_fake/scenarios``, or embedded in a prompt as
``[[scenario:{json}]]`` (see ``inline_marker``).

Field meanings (all optional):

* ``text`` — answer text; ``None`` means "Hello from <modelId>: <first 40 chars of the last
  user text>" (or ``""`` when the scenario has tool calls). ``chunks`` — number of stream
  events the text is split into (default: word-sized pieces).
* ``reasoning`` — GENERIC: reasoningContent, streamed before the text in several deltas;
  COHEREV2: THINKING content (ignored for COHERE v1, which has no reasoning output).
* ``tool_plan`` — COHEREV2 only: the assistant message's ``toolPlan`` (ignored elsewhere).
* ``tool_calls`` — ``[{"name", "arguments" (JSON string; a dict is serialised), "id"?}]``.
* ``finish_reason`` — default ``tool_calls`` with tool calls else ``stop``; COHERE maps
  stop/tool_calls → COMPLETE and length → MAX_TOKENS, COHEREV2 stop → COMPLETE (STOP_SEQUENCE
  with ``stop_sequence_hit``), tool_calls → TOOL_CALL, length → MAX_TOKENS; anything else is
  upper-cased. An ON_DEMAND answer longer than the model's on-demand output cap is cut there
  and finishes ``length`` whatever the scenario says (catalog ``on_demand_output_cap``).
* ``usage`` — OCI usage object used verbatim instead of the computed one (tokens.py).
* ``include_usage_event`` — GENERIC: send the usage event when the request asked
  ``streamOptions.isIncludeUsage``; COHERE/COHEREV2: put ``usage`` in the terminal event.
* ``style`` — override the GENERIC streaming style (llama|openai|grok|gemini).
* ``error`` — ``{"status", "code"?, "message"?, "headers"?}``: answer that HTTP error.
* ``delay_before`` / ``delay_first_chunk`` / ``delay_between`` — seconds before the response
  headers / between headers and the first event / between events (``None`` = server default).
* ``drop_after`` — stream: send that many events, then abort the TCP connection without
  ending the chunked body; non-stream: 0 aborts before any byte, N>0 sends the headers and
  half the body first.
* ``match`` — only consumed by a request whose last user text contains this substring.
* ``stop_sequence_hit`` — cut the text before this string and finish ``stop``.
* ``split_reads`` — write the stream in odd-sized byte slices (events straddle writes).
* ``single_newline`` — terminate events with a single ``\\n`` instead of a blank line.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .catalog import STYLES
from .jsonutil import compact

DEFAULT_ERROR_CODES = {
    400: "400", 401: "NotAuthenticated", 404: "404", 409: "IncorrectState",
    429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "GatewayTimeout",
}
MARKER_PREFIX = "[[scenario:"
MARKER_SUFFIX = "]]"


@dataclass
class ScenarioToolCall:
    name: str
    arguments: str = "{}"  # a JSON string; a dict given here is serialised compactly
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arguments, str):
            self.arguments = compact(self.arguments)


@dataclass
class ScenarioError:
    status: int
    code: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code is None:
            self.code = DEFAULT_ERROR_CODES.get(self.status, str(self.status))
        if self.message is None:
            self.message = f"Emulated error {self.status}"


@dataclass
class Scenario:
    text: str | None = None
    chunks: int | None = None
    reasoning: str | None = None
    tool_calls: list[ScenarioToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    include_usage_event: bool = True
    style: str | None = None
    error: ScenarioError | None = None
    delay_before: float = 0.0
    delay_first_chunk: float = 0.0
    delay_between: float | None = None
    drop_after: int | None = None
    match: str | None = None
    stop_sequence_hit: str | None = None
    split_reads: bool = False
    single_newline: bool = False
    tool_plan: str | None = None

    def __post_init__(self) -> None:
        self.tool_calls = [
            c if isinstance(c, ScenarioToolCall) else ScenarioToolCall(**c)
            for c in self.tool_calls or []
        ]
        if isinstance(self.error, dict):
            self.error = ScenarioError(**self.error)
        if self.style is not None and self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}")
        if self.chunks is not None and self.chunks < 1:
            raise ValueError("chunks must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        if not isinstance(data, dict):
            raise ValueError("a scenario must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown scenario field(s): {', '.join(unknown)}")
        return cls(**data)


def coerce(scenario: Scenario | dict[str, Any]) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)


def tool_call(name: str, arguments: dict[str, Any] | str | None = None,
              id: str | None = None) -> ScenarioToolCall:
    """Shorthand: ``tool_call("get_weather", {"city": "Paris"})``."""
    text = arguments if isinstance(arguments, str) else compact(arguments or {})
    return ScenarioToolCall(name=name, arguments=text, id=id)


def error_scenario(status: int, code: str | None = None, message: str | None = None,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Scenario:
    """Shorthand for a scenario answering an HTTP error."""
    return Scenario(error=ScenarioError(status, code, message, dict(headers or {})), **kwargs)


def inline_marker(scenario: Scenario | dict[str, Any]) -> str:
    """Text to put in a user message so a separate-process emulator plays ``scenario``."""
    return f"{MARKER_PREFIX}{coerce(scenario).to_json()}{MARKER_SUFFIX}"


def parse_inline_marker(text: str) -> Scenario | None:
    """Scenario embedded in ``text`` as ``[[scenario:{json}]]``; ValueError when malformed."""
    start = text.find(MARKER_PREFIX)
    if start < 0:
        return None
    begin = start + len(MARKER_PREFIX)
    data, end = json.JSONDecoder().raw_decode(text, begin)
    if not text.startswith(MARKER_SUFFIX, end):
        raise ValueError("scenario marker is not closed with ]]")
    return Scenario.from_dict(data)


class ScenarioQueue:
    """Thread-safe queue: a matching ``match`` scenario wins, otherwise FIFO of unmatched."""

    def __init__(self) -> None:
        self._items: deque[Scenario] = deque()
        self._lock = threading.Lock()

    def push(self, *scenarios: Scenario | dict[str, Any]) -> None:
        items = [coerce(s) for s in scenarios]
        with self._lock:
            self._items.extend(items)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count

    def __len__(self) -> int:
        return len(self._items)

    def take(self, user_text: str) -> Scenario | None:
        with self._lock:
            chosen = self._find(lambda s: s.match is not None and s.match in user_text)
            if chosen is None:
                chosen = self._find(lambda s: s.match is None)
            if chosen is not None:
                self._items.remove(chosen)
            return chosen

    def _find(self, predicate: Any) -> Scenario | None:
        return next((s for s in self._items if predicate(s)), None)
