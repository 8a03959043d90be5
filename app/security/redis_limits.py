"""Per-key limits shared by every worker and replica through Redis; fail-open.

Contract: same interface as :class:`app.security.limits.Limiter`. Counters live in Redis under
``ocigw:{key id}:…``: per-minute request and token counters (fixed windows, with the previous
window weighted in, as in the in-process limiter) and a sorted set of open streams whose scores
are expiry times, so a replica that dies mid-stream cannot leak a slot for longer than an hour.
Check-then-increment is not atomic across replicas: under a burst the limit can be exceeded by
the number of requests racing in the same millisecond, never by more.

When Redis fails (down, slow, refusing), the request is served anyway (fail-open), the failure is
logged (at most once per 30 s) and counted in ``gateway_ratelimit_backend_errors_total``, the
in-process limiter enforces the limits meanwhile, and Redis is retried after a short pause — so
limits come back by themselves when it returns.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from app.observability import metrics as m
from app.security.keys import ClientKey
from app.security.limits import WINDOW, Limiter, Permit, refuse

log = logging.getLogger("app.security.redis")
_STREAM_TTL = 3600.0
_RETRY_AFTER_FAILURE = 2.0


class RedisLimiter(Limiter):
    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=0
        )
        self._down_until = 0.0
        self._last_log = 0.0

    def _failed(self, err: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + _RETRY_AFTER_FAILURE
        m.RATELIMIT_BACKEND_ERRORS.inc()
        if now - self._last_log > 30:
            self._last_log = now
            log.error(
                "limit store unavailable, serving without shared limits (fail-open): %s",
                type(err).__name__,
            )

    async def acquire(self, key: ClientKey | None, *, stream: bool) -> Permit:
        if key is None or (
            key.requests_per_minute is None
            and key.tokens_per_minute is None
            and key.max_concurrent_streams is None
        ):
            return Permit()
        if time.monotonic() < self._down_until:
            return await super().acquire(key, stream=stream)
        try:
            return await self._acquire(key, stream)
        except (ConnectionError, TimeoutError, OSError) as err:
            self._failed(err)
        except Exception as err:  # redis raises its own hierarchy; any of it means "store down"
            if type(err).__module__.startswith("redis"):
                self._failed(err)
            else:
                raise
        return await super().acquire(key, stream=stream)

    async def _acquire(self, key: ClientKey, stream: bool) -> Permit:
        now = time.time()
        window = int(now // WINDOW)
        frac = 1.0 - (now - window * WINDOW) / WINDOW
        base = f"ocigw:{key.id}"
        r = self._redis
        pipe = r.pipeline(transaction=False)
        pipe.get(f"{base}:req:{window}")
        pipe.get(f"{base}:req:{window - 1}")
        pipe.get(f"{base}:tok:{window}")
        pipe.get(f"{base}:tok:{window - 1}")
        pipe.zremrangebyscore(f"{base}:streams", 0, now)
        pipe.zcard(f"{base}:streams")
        req, req_prev, tok, tok_prev, _, streams = await pipe.execute()
        reset = (window + 1) * WINDOW - now
        if key.requests_per_minute is not None and (
            _int(req) + 1 + _int(req_prev) * frac > key.requests_per_minute
        ):
            refuse(key.id, "requests", reset, key.requests_per_minute)
        if key.tokens_per_minute is not None and (
            _int(tok) + _int(tok_prev) * frac >= key.tokens_per_minute
        ):
            refuse(key.id, "tokens", reset, key.tokens_per_minute)
        if (
            stream
            and key.max_concurrent_streams is not None
            and (int(streams) >= key.max_concurrent_streams)
        ):
            refuse(key.id, "concurrency", 1.0, key.max_concurrent_streams)
        pipe = r.pipeline(transaction=False)
        pipe.incr(f"{base}:req:{window}")
        pipe.expire(f"{base}:req:{window}", int(WINDOW * 3))
        member = None
        if stream:
            member = secrets.token_hex(8)
            pipe.zadd(f"{base}:streams", {member: now + _STREAM_TTL})
            pipe.expire(f"{base}:streams", int(_STREAM_TTL))
        await pipe.execute()
        return _RedisPermit(self, key.id, stream, member)

    async def add_tokens_shared(self, key_id: str, tokens: int) -> None:
        window = int(time.time() // WINDOW)
        name = f"ocigw:{key_id}:tok:{window}"
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incrby(name, tokens)
            pipe.expire(name, int(WINDOW * 3))
            await pipe.execute()
        except Exception as err:
            self._failed(err)

    async def end_stream_shared(self, key_id: str, member: str) -> None:
        try:
            await self._redis.zrem(f"ocigw:{key_id}:streams", member)
        except Exception as err:
            self._failed(err)

    async def close(self) -> None:
        await self._redis.aclose()


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


class _RedisPermit(Permit):
    def __init__(
        self, limiter: RedisLimiter, key_id: str, stream: bool, member: str | None
    ) -> None:
        super().__init__(None, key_id, stream)
        self._shared = limiter
        self._member = member

    def record_tokens(self, tokens: int) -> None:
        if tokens > 0 and self.key_id is not None:
            _spawn(self._shared.add_tokens_shared(self.key_id, tokens))

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self._member is not None and self.key_id is not None:
            _spawn(self._shared.end_stream_shared(self.key_id, self._member))


_TASKS: set[Any] = set()


def _spawn(coro: Any) -> None:
    """Fire-and-forget bookkeeping; a reference is kept so the task is not collected early."""
    import asyncio

    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


__all__ = ["RedisLimiter"]
