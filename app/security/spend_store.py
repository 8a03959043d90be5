"""Where spend is kept: the windows the budgets check, and the per-day usage data.

Contract:
- A :class:`Cell` is one owner's spend in one calendar window (``scope``, ``name``,
  ``window``, ``label``; it expires at ``reset``). :meth:`SpendStore.read` gives the USD of
  several cells in one round trip; :meth:`SpendStore.add` adds one request's cost to several
  cells and, in the same atomic step, to the day's usage data (USD, requests, input and output
  tokens per dimension value: ``model``, ``key``, ``user``, ``team``, ``class``, ``tag``;
  bounded values only, never a session id), then calls ``done`` with the cells' new totals.
  ``add`` never blocks the request: with Redis it runs in the background.
- :meth:`SpendStore.report` sums the usage data of one dimension over ``[since, until]`` (days,
  ``YYYY-MM-DD``), for ``python -m app usage``.
- :class:`LocalStore` keeps all of it in this process: each worker and replica counts its own
  requests only (README "Spend and budgets" says when that is enough).
  :func:`build_store` picks it, or the Redis store when ``limits.redis_url`` is set.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: a report's row: dimension value -> [usd, requests, input tokens, output tokens]
Rows = dict[str, list[float]]


@dataclass(frozen=True, slots=True)
class Cell:
    scope: str
    name: str
    window: str
    label: str
    reset: int

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.name}:{self.label}"


class SpendStore(ABC):
    @abstractmethod
    async def read(self, cells: list[Cell]) -> list[float]: ...

    @abstractmethod
    def add(
        self,
        cells: list[Cell],
        usd: float,
        dims: dict[str, list[str]],
        tokens: tuple[int, int],
        day: str,
        done: Callable[[list[float]], None],
    ) -> None: ...

    @abstractmethod
    async def report(self, by: str, since: str, until: str) -> Rows: ...

    def retire(self) -> None:
        """A reload replaced this store: free resources once the work under way is done."""
        return None

    async def close(self) -> None:
        return None


def days(since: str, until: str, limit: int = 800) -> list[str]:
    """The days from ``since`` to ``until`` (inclusive, at most ``limit``)."""
    start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    end = datetime.strptime(until, "%Y-%m-%d").replace(tzinfo=UTC)
    out: list[str] = []
    while start <= end and len(out) < limit:
        out.append(start.strftime("%Y-%m-%d"))
        start += timedelta(days=1)
    return out


class LocalStore(SpendStore):
    """This process only. Every step is synchronous, so it is atomic on the event loop."""

    def __init__(self, history_days: int = 90) -> None:
        self._cells: dict[str, tuple[float, int]] = {}  # key -> (usd, reset)
        self._days: dict[str, dict[str, Rows]] = {}  # day -> dimension -> rows
        self._history = history_days

    async def read(self, cells: list[Cell]) -> list[float]:
        return self.read_now(cells)

    def read_now(self, cells: list[Cell]) -> list[float]:
        return [self._cells.get(c.key, (0.0, 0))[0] for c in cells]

    def add(
        self,
        cells: list[Cell],
        usd: float,
        dims: dict[str, list[str]],
        tokens: tuple[int, int],
        day: str,
        done: Callable[[list[float]], None],
    ) -> None:
        totals = []
        for c in cells:
            total = self._cells.get(c.key, (0.0, c.reset))[0] + usd
            self._cells[c.key] = (total, c.reset)
            totals.append(total)
        if day not in self._days:
            self._prune(day)
        book = self._days.setdefault(day, {})
        for dim, values in dims.items():
            rows = book.setdefault(dim, {})
            for value in values:
                row = rows.setdefault(value, [0.0, 0.0, 0.0, 0.0])
                row[0] += usd
                row[1] += 1
                row[2] += tokens[0]
                row[3] += tokens[1]
        done(totals)

    def _prune(self, today: str) -> None:
        # a new day: drop the windows that reset and the days past the history
        now = datetime.strptime(today, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        self._cells = {k: v for k, v in self._cells.items() if v[1] > now}
        oldest = (datetime.fromtimestamp(now, UTC) - timedelta(days=self._history)).strftime(
            "%Y-%m-%d"
        )
        self._days = {d: v for d, v in self._days.items() if d >= oldest}

    async def report(self, by: str, since: str, until: str) -> Rows:
        out: Rows = {}
        for day in days(since, until):
            for value, row in self._days.get(day, {}).get(by, {}).items():
                acc = out.setdefault(value, [0.0, 0.0, 0.0, 0.0])
                for i in range(4):
                    acc[i] += row[i]
        return out


def build_store(redis_url: str | None, history_days: int) -> SpendStore:
    if not redis_url:
        return LocalStore(history_days)
    # imported here: redis is needed only when spend is shared
    from app.security.redis_budgets import RedisStore

    return RedisStore(redis_url, history_days)
