"""Recorded requests of the emulator.

Contract: every request to the OCI API surface (not ``/_fake/*``) becomes a
``RecordedRequest`` — recorded before authentication, so rejected requests are visible too.
The record is updated in place while the request is served (status, events sent, and
``client_disconnected_at`` when the peer closed a stream early). ``RequestLog`` is the
bounded, thread-safe list tests read from another thread: at most ``max_items`` records and
``max_bytes`` of raw bodies (the newest record is always kept, whatever its size).

Why a byte bound: a record holds its body twice (the bytes and the parsed JSON, ~4x the bytes
in Python objects). With only a count bound, the benchmark's 1 MB turns grew the emulator by
~310 MB per 120 requests, to 2.5 GB; its collector then stalled it, the gateway waited idle
between answers, and the gateway's CPU per request rose ~10% (docs/design.md, "Long
conversations").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes = field(repr=False)
    received_at: float
    opc_request_id: str | None = None
    status: int | None = None
    model_id: str | None = None
    stream: bool = False
    error_message: str | None = None
    events_sent: int = 0
    completed_at: float | None = None
    client_disconnected_at: float | None = None
    dropped_by_server: bool = False

    @property
    def chat_request(self) -> dict[str, Any]:
        return (self.body or {}).get("chatRequest", {}) if isinstance(self.body, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "raw_body"}
        data["body_size"] = len(self.raw_body)
        return data


#: the default bound on the raw bodies kept: 64 recorded 1 MB turns, 4,000 tiny requests'
#: worth of a test's exchanges many times over
MAX_RECORDED_BYTES = 64 * 1024 * 1024


class RequestLog:
    def __init__(self, max_items: int, max_bytes: int = MAX_RECORDED_BYTES) -> None:
        self._items: deque[RecordedRequest] = deque()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, record: RecordedRequest) -> None:
        with self._lock:
            self._items.append(record)
            self._bytes += len(record.raw_body)
            items = self._items
            while len(items) > 1 and (
                len(items) > self._max_items or self._bytes > self._max_bytes
            ):
                self._bytes -= len(items.popleft().raw_body)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._bytes = 0
            return count

    def __len__(self) -> int:
        return len(self._items)


def now() -> float:
    return time.time()
