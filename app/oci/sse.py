"""Incremental reader of OCI's server-sent events. Pure (bytes in, dicts out).

Contract: :meth:`SseReader.feed` takes whatever bytes the socket delivered and returns the
complete events they finish, as parsed JSON dicts, in order. Per oci-genai-wire.md §8.1/§8.5:
every ``data:`` line is one event (events may straddle reads, and some streams separate events by
a single newline); empty lines, ``:`` comments, ``event:``/``id:`` lines and Llama's
``data: [DONE]`` are skipped. A ``data:`` line that is not JSON raises :class:`MalformedChunk`.
"""

from __future__ import annotations

from typing import Any

import orjson


class MalformedChunk(ValueError):
    pass


class SseReader:
    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self._rest:
            data = self._rest + data
        lines = data.split(b"\n")
        self._rest = lines.pop()
        events = []
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event:/id: lines
            payload = line[5:].strip()
            if not payload or payload == b"[DONE]":
                continue
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise MalformedChunk(
                    f"upstream sent a malformed event ({len(payload)} bytes)"
                ) from None
            if isinstance(value, dict):
                events.append(value)
        return events

    def close(self) -> list[dict[str, Any]]:
        """Events in a final line that had no newline after it."""
        rest, self._rest = self._rest, b""
        return self.feed(rest + b"\n") if rest.strip() else []
