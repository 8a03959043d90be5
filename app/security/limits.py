"""Per-key limits: requests per minute, tokens per minute, concurrent streams.

Contract:
- :class:`Limiter` is the interface the service holds. :meth:`Limiter.acquire` is awaited
  before the upstream call. It raises :class:`~app.errors.RateLimited` (429 with an accurate
  ``retry-after``) when the key is over a limit, and otherwise returns a :class:`Permit` that the
  caller must :meth:`~Permit.release` exactly once when the request ends (however it ends),
  after reporting the real token usage OCI returned with :meth:`~Permit.record_tokens`.
- Anonymous callers and keys without limits (:attr:`Principal.has_limits`) get
  :data:`UNLIMITED`, a permit that does nothing: they pay nothing.
- :func:`build_limiter` picks the implementation for ``limits.redis_url``: :class:`LocalLimiter`
  (below: counters in this process, one-minute windows with the previous window weighted in;
  with several workers or replicas each process enforces its own share) or
  :class:`~app.security.redis_limits.RedisLimiter` (shared by every process through Redis).
- When a config reload replaces the limiter, the old one is :meth:`~Limiter.retire`\\ d: permits
  it already handed out keep working, and it frees its resources once they are released.
  :meth:`~Limiter.close` frees them at shutdown.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from app.errors import RateLimited
from app.observability import metrics as m
from app.security.policy import Principal

WINDOW = 60.0


class Permit:
    """A granted request. This base class is the permit of a request without limits."""

    __slots__ = ()

    def record_tokens(self, tokens: int) -> None:
        """Count the tokens OCI reported (input + output) against the key's per-minute budget."""

    def release(self) -> None:
        """The request ended: free its stream slot. Idempotent."""


#: stateless, so one instance serves every request without limits
UNLIMITED = Permit()


class Limiter(ABC):
    """The limiter interface; the "no limits" short-circuit lives here, once for all."""

    async def acquire(self, key: Principal | None, *, stream: bool) -> Permit:
        if key is None or not key.has_limits:
            return UNLIMITED
        return await self._acquire(key, stream)

    @abstractmethod
    async def _acquire(self, key: Principal, stream: bool) -> Permit: ...

    def retire(self) -> None:
        """A reload replaced this limiter: free resources once the permits handed out end."""
        return None  # an in-process limiter holds nothing to free

    async def close(self) -> None:
        """Shutdown: free resources now."""
        return None


def build_limiter(redis_url: str | None) -> Limiter:
    if not redis_url:
        return LocalLimiter()
    # imported here: redis is needed only when limits are shared
    from app.security.redis_limits import RedisLimiter

    return RedisLimiter(redis_url)


@dataclass(slots=True)
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


class LocalLimiter(Limiter):
    """Counters in this process. Check and count happen without an await in between, so they
    are atomic on the event loop."""

    def __init__(self) -> None:
        self._usage: dict[str, _Usage] = {}

    async def _acquire(self, key: Principal, stream: bool) -> Permit:
        now = time.monotonic()
        u = self._usage.setdefault(key.id, _Usage(window_start=now))
        u.roll(now)
        self._check(key, u, now, stream)
        u.requests += 1
        if stream:
            u.streams += 1
        return _LocalPermit(self, key.id, stream)

    def _check(self, key: Principal, u: _Usage, now: float, stream: bool) -> None:
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


class _LocalPermit(Permit):
    __slots__ = ("_key_id", "_limiter", "_released", "_stream")

    def __init__(self, limiter: LocalLimiter, key_id: str, stream: bool) -> None:
        self._limiter = limiter
        self._key_id = key_id
        self._stream = stream
        self._released = False

    def record_tokens(self, tokens: int) -> None:
        if tokens > 0:
            self._limiter.add_tokens(self._key_id, tokens)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._stream:
            self._limiter.end_stream(self._key_id)


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
