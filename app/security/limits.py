"""Per-key limits: requests per minute, tokens per minute, concurrent streams.

Contract: :meth:`Limiter.acquire` is awaited before the upstream call. It raises
:class:`~app.errors.RateLimited` (429 with an accurate ``retry-after``) when the key is over a
limit, and otherwise returns a :class:`Permit` that the caller must :meth:`~Permit.release`
exactly once when the request ends (however it ends), after reporting the real token usage OCI
returned with :meth:`~Permit.record_tokens`.

This implementation holds the counters in the process (one-minute windows, per key). With
several workers or replicas each process enforces its own share; the Redis-backed limiter in
:mod:`app.security.redis_limits` shares them. Keys without limits pay nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from app.errors import RateLimited
from app.observability import metrics as m
from app.security.keys import ClientKey

WINDOW = 60.0


@dataclass
class _Usage:
    window_start: float = 0.0
    requests: int = 0
    tokens: int = 0
    streams: int = 0
    # previous window's counts, for a sliding estimate
    prev_requests: int = 0
    prev_tokens: int = 0

    def roll(self, now: float) -> None:
        if now - self.window_start >= WINDOW:
            elapsed_windows = int((now - self.window_start) // WINDOW)
            if elapsed_windows == 1:
                self.prev_requests, self.prev_tokens = self.requests, self.tokens
            else:
                self.prev_requests = self.prev_tokens = 0
            self.requests = self.tokens = 0
            self.window_start = (
                now if self.window_start == 0 else (self.window_start + elapsed_windows * WINDOW)
            )

    def weighted(self, now: float, current: int, previous: int) -> float:
        # sliding-window approximation: the previous window counts for the part still in view
        frac = max(0.0, 1.0 - (now - self.window_start) / WINDOW)
        return current + previous * frac


@dataclass
class Permit:
    limiter: Limiter | None = None
    key_id: str | None = None
    stream: bool = False
    released: bool = field(default=False)

    def record_tokens(self, tokens: int) -> None:
        if self.limiter is not None and self.key_id is not None and tokens > 0:
            self.limiter.add_tokens(self.key_id, tokens)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.limiter is not None and self.key_id is not None and self.stream:
            self.limiter.end_stream(self.key_id)


NO_LIMITS = Permit()


class Limiter:
    def __init__(self) -> None:
        self._usage: dict[str, _Usage] = {}

    async def acquire(self, key: ClientKey | None, *, stream: bool) -> Permit:
        if key is None or (
            key.requests_per_minute is None
            and key.tokens_per_minute is None
            and key.max_concurrent_streams is None
        ):
            return Permit()
        now = time.monotonic()
        u = self._usage.setdefault(key.id, _Usage(window_start=now))
        u.roll(now)
        self.check(key, u, now, stream)
        u.requests += 1
        if stream:
            u.streams += 1
        return Permit(self, key.id, stream)

    def check(self, key: ClientKey, u: _Usage, now: float, stream: bool) -> None:
        reset = u.window_start + WINDOW - now
        if (
            key.requests_per_minute is not None
            and u.weighted(now, u.requests + 1, u.prev_requests) > key.requests_per_minute
        ):
            refuse(key.id, "requests", reset, key.requests_per_minute)
        if (
            key.tokens_per_minute is not None
            and u.weighted(now, u.tokens, u.prev_tokens) >= key.tokens_per_minute
        ):
            refuse(key.id, "tokens", reset, key.tokens_per_minute)
        if (
            stream
            and key.max_concurrent_streams is not None
            and (u.streams >= key.max_concurrent_streams)
        ):
            refuse(key.id, "concurrency", 1.0, key.max_concurrent_streams)

    def add_tokens(self, key_id: str, tokens: int) -> None:
        u = self._usage.get(key_id)
        if u is not None:
            u.roll(time.monotonic())
            u.tokens += tokens

    def end_stream(self, key_id: str) -> None:
        u = self._usage.get(key_id)
        if u is not None and u.streams > 0:
            u.streams -= 1

    async def close(self) -> None:
        return None


def refuse(key_id: str, limit: str, reset: float, value: int) -> None:
    m.RATE_LIMITED.labels(key_id, limit).inc()
    what = {
        "requests": f"{value} requests per minute",
        "tokens": f"{value} tokens per minute",
        "concurrency": f"{value} concurrent streams",
    }[limit]
    raise RateLimited(
        f"API key {key_id!r} is over its limit of {what}", retry_after=max(1.0, math.ceil(reset))
    )
