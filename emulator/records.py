"""Recorded requests of the emulator.

Contract: every request to the OCI API surface (not ``/_fake/*``) becomes a
``RecordedRequest`` — recorded before authentication, so rejected requests are visible too.
The record is updated in place while the request is served (status, events sent, and
``client_disconnected_at`` when the peer closed a stream early). ``RequestLog`` is the
bounded, thread-safe list tests read from another thread.
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


class RequestLog:
    def __init__(self, max_items: int) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def add(self, record: RecordedRequest) -> None:
        with self._lock:
            self._items.append(record)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count

    def __len__(self) -> int:
        return len(self._items)


def now() -> float:
    return time.time()
