"""Per-key limits shared by every worker and replica through Redis; atomic; fail-open.

Contract: the :class:`~app.security.limits.Limiter` interface. Counters live in Redis under
``ocigw:{<key id>}:…`` (the braces put all of a key's counters in one Redis Cluster hash slot):
per-minute request and token counters (fixed windows, with the previous window weighted in, as
in the in-process limiter) and a sorted set of open streams whose scores are expiry times, so a
replica that dies mid-stream cannot leak a slot for longer than an hour.

Admission is ONE Lua script (:data:`_ADMIT`, run with ``EVALSHA`` through redis-py's
``register_script``): it drops expired stream slots, checks every limit and only then counts the
request and takes the stream slot. Redis runs a script without interleaving any other command,
so N replicas racing for the last slot admit exactly one: a limit is never exceeded. Tokens are
counted after the answer (``INCRBY``), so a request admitted while the budget is not yet spent
may overshoot ``tokens_per_minute`` by its own size, as with any limiter that learns the cost
from the answer.

When Redis fails (down, slow, refusing), the request is served anyway (fail-open), the failure is
logged (at most once per 30 s) and counted in ``gateway_ratelimit_backend_errors_total``, an
in-process :class:`~app.security.limits.LocalLimiter` (held, not inherited) enforces the limits
meanwhile, and Redis is tried again after :data:`_RETRY_AFTER_FAILURE` seconds, so shared limits
come back by themselves when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from app.observability import metrics as m
from app.security.limits import WINDOW, Limiter, LocalLimiter, Permit, refuse
from app.security.policy import Principal

log = logging.getLogger("app.security.redis")
_STREAM_TTL = 3600
_COUNTER_TTL = int(WINDOW * 3)
_RETRY_AFTER_FAILURE = 2.0

# KEYS: requests this window, requests last window, tokens this window, tokens last window,
#       open streams (sorted set: member -> expiry time)
# ARGV: now, weight of the last window, requests/min, tokens/min, max streams (0 = no limit for
#       each), is a stream (1/0), stream member, counter ttl, stream ttl
# Returns 0 (admitted and counted) or the refused limit: 1 requests, 2 tokens, 3 concurrency.
_ADMIT = """
local now, frac = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, max_streams = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function count(key) return tonumber(redis.call('GET', key) or '0') end
if rpm > 0 and count(KEYS[1]) + 1 + count(KEYS[2]) * frac > rpm then return 1 end
if tpm > 0 and count(KEYS[3]) + count(KEYS[4]) * frac >= tpm then return 2 end
local stream = ARGV[6] == '1'
if stream then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if max_streams > 0 and redis.call('ZCARD', KEYS[5]) >= max_streams then return 3 end
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[8])
if stream then
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[9]), ARGV[7])
  redis.call('EXPIRE', KEYS[5], ARGV[9])
end
return 0
"""
_REFUSED = {1: "requests", 2: "tokens", 3: "concurrency"}


def _store_failure(err: Exception) -> bool:
    # redis raises its own hierarchy (not all of it subclasses the builtins); any of it means
    # "the store is unavailable", never "refuse the request"
    return isinstance(err, (ConnectionError, TimeoutError, OSError)) or type(
        err
    ).__module__.startswith("redis")


class RedisLimiter(Limiter):
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=0
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._local = LocalLimiter()
        self._down_until = 0.0
        self._last_log = 0.0
        #: permits handed out and not yet released: their bookkeeping still needs the client
        self._open = 0
        self._retired = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Task[None] | None = None

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

    async def _acquire(self, key: Principal, stream: bool) -> Permit:
        if time.monotonic() < self._down_until:
            return await self._local.acquire(key, stream=stream)
        now = time.time()
        window = int(now // WINDOW)
        base = f"ocigw:{{{key.id}}}"
        member = secrets.token_hex(8) if stream else ""
        try:
            verdict = await self._admit(
                keys=[
                    f"{base}:req:{window}",
                    f"{base}:req:{window - 1}",
                    f"{base}:tok:{window}",
                    f"{base}:tok:{window - 1}",
                    f"{base}:streams",
                ],
                args=[
                    repr(now),
                    repr(1.0 - (now - window * WINDOW) / WINDOW),
                    key.requests_per_minute or 0,
                    key.tokens_per_minute or 0,
                    key.max_concurrent_streams or 0,
                    1 if stream else 0,
                    member,
                    _COUNTER_TTL,
                    _STREAM_TTL,
                ],
            )
        except Exception as err:
            if not _store_failure(err):
                raise
            self._failed(err)
            return await self._local.acquire(key, stream=stream)
        limit = _REFUSED.get(int(verdict))
        if limit == "concurrency":
            refuse(key.id, limit, 1.0, key.max_concurrent_streams or 0)
        elif limit is not None:
            value = key.requests_per_minute if limit == "requests" else key.tokens_per_minute
            refuse(key.id, limit, (window + 1) * WINDOW - now, value or 0)
        self._open += 1
        return _SharedPermit(self, key.id, member or None)

    # ---- bookkeeping of permits (fire-and-forget: the request is over, nobody waits) ----------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(self._tasks.discard)

    async def count_tokens(self, key_id: str, tokens: int) -> None:
        name = f"ocigw:{{{key_id}}}:tok:{int(time.time() // WINDOW)}"
        try:
            pipe = self._redis.pipeline(transaction=True)  # MULTI: never a counter without ttl
            pipe.incrby(name, tokens)
            pipe.expire(name, _COUNTER_TTL)
            await pipe.execute()
        except Exception as err:
            self._failed(err)

    async def free_slot(self, key_id: str, member: str) -> None:
        try:
            await self._redis.zrem(f"ocigw:{{{key_id}}}:streams", member)
        except Exception as err:
            self._failed(err)

    def permit_ended(self) -> None:
        self._open -= 1
        self._close_if_retired()

    # ---- lifecycle ----------------------------------------------------------------------------

    def retire(self) -> None:
        self._retired = True
        self._close_if_retired()

    def _close_if_retired(self) -> None:
        if self._retired and self._open == 0 and self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self.close())

    async def close(self) -> None:
        if self._tasks:  # token counts and freed slots under way land first (bounded)
            await asyncio.wait(set(self._tasks), timeout=1.0)
        await self._redis.aclose()


class _SharedPermit(Permit):
    __slots__ = ("_key_id", "_limiter", "_member", "_released")

    def __init__(self, limiter: RedisLimiter, key_id: str, member: str | None) -> None:
        self._limiter = limiter
        self._key_id = key_id
        self._member = member
        self._released = False

    def record_tokens(self, tokens: int) -> None:
        if tokens > 0 and not self._released:
            self._limiter.spawn(self._limiter.count_tokens(self._key_id, tokens))

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._member is not None:
            self._limiter.spawn(self._limiter.free_slot(self._key_id, self._member))
        self._limiter.permit_ended()


__all__ = ["RedisLimiter"]
