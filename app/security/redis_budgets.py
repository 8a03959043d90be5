"""Spend shared by every worker and replica through Redis (the limits' Redis); atomic; fail-open.

Contract: the :class:`~app.security.spend_store.SpendStore` interface. Every key carries the
hash tag ``{ocigw-spend}``, so a multi-key script is legal on Redis Cluster too (all spend in one
slot: a few small keys per caller and per day):

- ``ocigw:{ocigw-spend}:c:<scope>:<name>:<period>`` the USD of one window (a float string,
  ``INCRBYFLOAT``), expiring a day after the window resets;
- ``ocigw:{ocigw-spend}:d:<YYYY-MM-DD>`` a hash of the day's usage data, fields
  ``usd|<dim>|<value>``, ``req|…``, ``in|…``, ``out|…``, kept ``budgets.history_days``.

:data:`_ADD` adds one request to all of them in ONE script (Redis runs it without interleaving
any other command, so replicas never lose an increment) and returns the windows' new totals.
Reads are one ``MGET``. When Redis fails, the request is served (fail-open), the failure is
logged (at most once per 30 s) and counted in ``gateway_spend_backend_errors_total``, an
in-process :class:`~app.security.spend_store.LocalStore` stands in, and Redis is tried again
after :data:`_RETRY_AFTER_FAILURE` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.observability import metrics as m
from app.security.spend_store import Cell, LocalStore, Rows, SpendStore, days

log = logging.getLogger("app.security.redis")
PREFIX = "ocigw:{ocigw-spend}"
_RETRY_AFTER_FAILURE = 2.0
_GRACE = 86400  # a window's total outlives its reset by a day (late charges, the usage view)

# KEYS: the window cells..., the day hash (last)
# ARGV: usd, input tokens, output tokens, day ttl, then one expire-at per cell, then the
#       dimension fields ("<dim>|<value>")
# Returns the cells' new totals (as strings: Lua numbers would be truncated to integers).
_ADD = """
local usd, tin, tout, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local n = #KEYS - 1
local totals = {}
for i = 1, n do
  totals[i] = redis.call('INCRBYFLOAT', KEYS[i], usd)
  redis.call('EXPIREAT', KEYS[i], ARGV[4 + i])
end
local day = KEYS[n + 1]
for j = 5 + n, #ARGV do
  local f = ARGV[j]
  redis.call('HINCRBYFLOAT', day, 'usd|' .. f, usd)
  redis.call('HINCRBY', day, 'req|' .. f, 1)
  redis.call('HINCRBY', day, 'in|' .. f, tin)
  redis.call('HINCRBY', day, 'out|' .. f, tout)
end
redis.call('EXPIRE', day, ttl)
return totals
"""


def cell_key(cell: Cell) -> str:
    return f"{PREFIX}:c:{cell.key}"


def day_key(day: str) -> str:
    return f"{PREFIX}:d:{day}"


def _store_failure(err: Exception) -> bool:
    return isinstance(err, (ConnectionError, TimeoutError, OSError)) or type(
        err
    ).__module__.startswith("redis")


class RedisStore(SpendStore):
    def __init__(self, url: str, history_days: int = 90) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=0
        )
        self._add = self._redis.register_script(_ADD)
        self._local = LocalStore(history_days)
        self._history = history_days
        self._down_until = 0.0
        self._last_log = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired = False

    def _failed(self, err: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + _RETRY_AFTER_FAILURE
        m.SPEND_BACKEND_ERRORS.inc()
        if now - self._last_log > 30:
            self._last_log = now
            log.error(
                "spend store unavailable, budgets count this process only (fail-open): %s",
                type(err).__name__,
            )

    async def read(self, cells: list[Cell]) -> list[float]:
        if time.monotonic() < self._down_until:
            return self._local.read_now(cells)
        try:
            values = await self._redis.mget([cell_key(c) for c in cells])
        except Exception as err:
            if not _store_failure(err):
                raise
            self._failed(err)
            return self._local.read_now(cells)
        return [float(v) if v is not None else 0.0 for v in values]

    def add(
        self,
        cells: list[Cell],
        usd: float,
        dims: dict[str, list[str]],
        tokens: tuple[int, int],
        day: str,
        done: Callable[[list[float]], None],
    ) -> None:
        if time.monotonic() < self._down_until:
            self._local.add(cells, usd, dims, tokens, day, done)
            return
        self._spawn(self._add_shared(cells, usd, dims, tokens, day, done))

    async def _add_shared(
        self,
        cells: list[Cell],
        usd: float,
        dims: dict[str, list[str]],
        tokens: tuple[int, int],
        day: str,
        done: Callable[[list[float]], None],
    ) -> None:
        fields = [f"{dim}|{value}" for dim, values in dims.items() for value in values]
        try:
            totals = await self._add(
                keys=[*(cell_key(c) for c in cells), day_key(day)],
                args=[
                    repr(usd),
                    tokens[0],
                    tokens[1],
                    self._history * 86400,
                    *(c.reset + _GRACE for c in cells),
                    *fields,
                ],
            )
        except Exception as err:
            self._failed(err)
            self._local.add(cells, usd, dims, tokens, day, done)
            return
        done([float(t) for t in totals])

    async def report(self, by: str, since: str, until: str) -> Rows:
        out: Rows = {}
        pipe = self._redis.pipeline(transaction=False)
        wanted = days(since, until)
        for day in wanted:
            pipe.hgetall(day_key(day))
        for book in await pipe.execute():
            for raw, value in book.items():
                kind, dim, name = raw.decode().split("|", 2)
                if dim != by:
                    continue
                row = out.setdefault(name, [0.0, 0.0, 0.0, 0.0])
                row[("usd", "req", "in", "out").index(kind)] += float(value)
        return out

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(self._tasks.discard)

    def retire(self) -> None:
        self._retired = True
        self._spawn(self.close())

    async def close(self) -> None:
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if pending:  # charges under way land first (bounded)
            await asyncio.wait(pending, timeout=1.0)
        await self._redis.aclose()


__all__ = ["RedisStore"]
