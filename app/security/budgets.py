"""Spend budgets in USD per key, per signed-in user and per team, per UTC calendar window.

Contract:
- Windows are UTC calendar periods (:func:`window_span`): the day from 00:00Z, the ISO week from
  Monday 00:00Z, the month from the 1st 00:00Z. A budget ``{usd_per_day, usd_per_week,
  usd_per_month}`` is one cap per window it names; a caller has up to two budgets (their own:
  the key's ``budget`` for a key, ``budgets.users.<id>`` or ``budgets.default_user`` for a
  signed-in user; and their team's ``teams.<name>.budget``), and every cap must hold.
- :meth:`Budgets.admit` runs before the OCI call. It reads the spend so far of every window of
  the caller (one round trip) and raises :class:`BudgetExceeded` when any cap is spent (429,
  ``x-should-retry: false``, ``retry-after`` at the reset of the latest exceeded window, a
  message naming the budget and its reset), else returns a :class:`Ticket` carrying the
  ``anthropic-ratelimit-unified-*`` headers for the answer. The request's own cost is unknown
  until OCI answers, so it is added afterwards (:meth:`Ticket.charge`): a request admitted while
  a cap is not yet spent may overshoot it by its own cost (plus the cost of the requests in
  flight at that moment) — the same bound as for ``tokens_per_minute``.
- Spend lives in a :class:`~app.security.spend_store.SpendStore`: this process
  (:class:`~app.security.spend_store.LocalStore`) or Redis, shared by every replica
  (:mod:`app.security.redis_budgets`; fail-open on Redis trouble, like the limits).
- The clock is injectable (``clock``: epoch seconds), so window resets are testable without
  waiting for midnight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from app.errors import RateLimited
from app.observability import metrics as m
from app.security.policy import Budget, Principal
from app.security.spend_store import Cell, SpendStore

Window = Literal["day", "week", "month"]
Scope = Literal["key", "user", "team"]
WINDOWS: tuple[Window, ...] = ("day", "week", "month")
FIELD: dict[Window, str] = {"day": "usd_per_day", "week": "usd_per_week", "month": "usd_per_month"}
_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


def window_span(window: Window, now: float) -> tuple[str, int, int]:
    """(label, start, reset) of the UTC calendar ``window`` holding ``now`` (epoch seconds)."""
    t = datetime.fromtimestamp(now, UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        start, reset, label = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
    elif window == "week":
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        reset, label = start + timedelta(days=7), f"{iso.year}-W{iso.week:02d}"
    else:
        start = day.replace(day=1)
        reset = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
        label = start.strftime("%Y-%m")
    return label, int(start.timestamp()), int(reset.timestamp())


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose spend a window counts: ``scope`` (key, user, team) and ``name``."""

    scope: Scope
    name: str
    budget: Budget | None

    def describe(self) -> str:
        kind = {"key": "API key", "user": "user", "team": "team"}[self.scope]
        return f"{kind} {self.name!r}"


def owners(principal: Principal, user_budgets: Any) -> list[Owner]:
    """The caller's own spend owner and their team's (``user_budgets``: ``config.budgets``)."""
    if principal.kind == "user":
        own = user_budgets.users.get(principal.id, user_budgets.default_user)
        out = [Owner("user", principal.id, own)]
    else:
        out = [Owner("key", principal.id, principal.budget)]
    if principal.team:
        out.append(Owner("team", principal.team, principal.team_budget))
    return out


@dataclass(frozen=True, slots=True)
class Reading:
    """One window of one owner: its spend so far and its cap (None: no cap)."""

    owner: Owner
    window: Window
    label: str
    reset: int
    spent: float
    limit: float | None

    @property
    def utilization(self) -> float:
        return self.spent / self.limit if self.limit else 0.0

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.spent)

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.spent >= self.limit

    def as_json(self, warn_at: float) -> dict[str, Any]:
        return {
            "scope": self.owner.scope,
            "name": self.owner.name,
            "window": self.window,
            "period": self.label,
            "spent_usd": round(self.spent, 6),
            "budget_usd": self.limit,
            "remaining_usd": None if self.remaining is None else round(self.remaining, 6),
            "utilization": None if self.limit is None else round(self.utilization, 4),
            "status": status_of([self], warn_at) if self.limit is not None else None,
            "resets_at": iso(self.reset),
            "reset": self.reset,
        }


def cell_of(owner: Owner, window: Window, now: float) -> tuple[Cell, int]:
    label, _, reset = window_span(window, now)
    return Cell(owner.scope, owner.name, window, label, reset), reset


def status_of(capped: list[Reading], warn_at: float) -> str:
    if any(r.exceeded for r in capped):
        return "rejected"
    if any(r.utilization >= warn_at for r in capped):
        return "allowed_warning"
    return "allowed"


def unified_headers(capped: list[Reading], warn_at: float) -> dict[str, str]:
    """The ``anthropic-ratelimit-unified-*`` headers for the caller's capped windows.

    Claude Code reads them on every answer to show usage against the limit and to warn before
    it is reached, and on a 429 to tell a spend cap from a throttle (Claude Code gateway docs:
    code.claude.com/docs/en/llm-gateway-protocol and claude-apps-gateway-spend-limits). The
    forms follow what Anthropic's API sends, as captured by several public clients of it:
    ``-status`` allowed | allowed_warning | rejected and ``-reset`` epoch seconds (Claude Code
    2.1.241 ends the turn with a ``rate_limit`` error, no retry, on a 429 with ``-status:
    rejected``); utilization is a 0..1 fraction, as in Anthropic's per-window
    ``-5h-utilization`` / ``-7d-utilization``. Those per-window names belong to Anthropic's
    rolling 5-hour / 7-day subscription windows; the gateway's windows are UTC calendar days,
    weeks and months, so it sends the un-suffixed ``-utilization`` for the binding window rather
    than borrow names Claude Code would label "5-hour" or "weekly". The binding window: the
    exceeded one that resets last when rejected, else the most used one.
    """
    if not capped:
        return {}
    status = status_of(capped, warn_at)
    if status == "rejected":
        binding = max((r for r in capped if r.exceeded), key=lambda r: r.reset)
    else:
        binding = max(capped, key=lambda r: (r.utilization, -r.reset))
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": str(binding.reset),
        "anthropic-ratelimit-unified-utilization": f"{binding.utilization:.4f}",
    }


class BudgetExceeded(RateLimited):
    """429 for a spent budget: never retried (``x-should-retry: false``) before its reset."""

    def __init__(self, reading: Reading, headers: dict[str, str], now: float) -> None:
        r = reading
        super().__init__(
            f"{r.owner.describe()} has spent ${r.spent:.2f} of its {_ADJECTIVE[r.window]} "
            f"budget of ${r.limit:.2f}; the budget resets at {iso(r.reset)} (UTC). Ask the "
            "gateway's operators to raise it, or wait until then.",
            retry_after=max(1.0, math.ceil(r.reset - now)),
        )
        self._unified = headers

    def headers(self) -> dict[str, str]:
        return {**super().headers(), **self._unified, "x-should-retry": "false"}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body = super().body(request_id)
        # the shape of Anthropic's own spend-cap answer (error.details.error_code)
        body["error"]["details"] = {"error_code": "budget_exceeded"}
        return body


class Ticket:
    """An admitted request's windows: charge it once with the answer's cost."""

    __slots__ = ("_budgets", "_cells", "_charged", "headers", "readings")

    def __init__(
        self,
        budgets: Budgets,
        cells: list[tuple[Cell, Reading | None]],
        readings: list[Reading],
        headers: dict[str, str],
    ) -> None:
        self._budgets = budgets
        self._cells = cells
        self._charged = False
        self.readings = readings
        self.headers = headers

    def charge(self, usd: float, dims: dict[str, list[str]], tokens: tuple[int, int]) -> None:
        """Add the request's cost to every window of the caller and to the usage data
        (``dims``: dimension -> values, e.g. ``{"model": ["grok"], "tag": ["ci"]}``)."""
        if self._charged:
            return
        self._charged = True
        self._budgets.record(self._cells, usd, dims, tokens)


class Budgets:
    """The budget check and the spend record of one process (see the module docstring)."""

    def __init__(self, store: SpendStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def admit(self, principal: Principal | None, budgets: Any) -> Ticket:
        """``budgets``: the config's ``budgets`` section (user budgets, ``warn_at``)."""
        now = self.clock()
        own = owners(principal, budgets) if principal is not None else []
        cells: list[tuple[Cell, Reading | None]] = []
        capped: list[Reading] = []
        wanted = [(o, w) for o in own for w in WINDOWS]
        limits = [getattr(o.budget, FIELD[w]) if o.budget else None for o, w in wanted]
        spent: list[float] = []
        if any(limit is not None for limit in limits):
            spent = await self.store.read([cell_of(o, w, now)[0] for o, w in wanted])
        for i, (o, w) in enumerate(wanted):
            cell, reset = cell_of(o, w, now)
            reading = None
            limit = limits[i]
            if limit is not None:
                reading = Reading(o, w, cell.label, reset, spent[i], limit)
                capped.append(reading)
                m.BUDGET_USD.labels(o.scope, o.name, w).set(limit)
                m.SPEND_WINDOW_USD.labels(o.scope, o.name, w).set(spent[i])
            cells.append((cell, reading))
        headers = unified_headers(capped, budgets.warn_at)
        exceeded = [r for r in capped if r.exceeded]
        if exceeded:
            worst = max(exceeded, key=lambda r: r.reset)
            m.BUDGET_REJECTED.labels(worst.owner.scope, worst.window).inc()
            raise BudgetExceeded(worst, headers, now)
        return Ticket(self, cells, capped, headers)

    def record(
        self,
        cells: list[tuple[Cell, Reading | None]],
        usd: float,
        dims: dict[str, list[str]],
        tokens: tuple[int, int],
    ) -> None:
        capped = {c: r for c, r in cells if r is not None}

        def totals(values: list[float]) -> None:
            for (cell, _), value in zip(cells, values, strict=False):
                if cell in capped:
                    m.SPEND_WINDOW_USD.labels(cell.scope, cell.name, cell.window).set(value)

        day = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")
        self.store.add([c for c, _ in cells], usd, dims, tokens, day, totals)

    async def view(self, own: list[Owner], warn_at: float) -> list[dict[str, Any]]:
        """Every window of ``own`` (spend, cap, remaining, reset), for ``GET /v1/usage``."""
        now = self.clock()
        wanted = [(o, w) for o in own for w in WINDOWS]
        spent = await self.store.read([cell_of(o, w, now)[0] for o, w in wanted])
        out = []
        for (o, w), s in zip(wanted, spent, strict=True):
            label, _, reset = window_span(w, now)
            limit = getattr(o.budget, FIELD[w]) if o.budget else None
            out.append(Reading(o, w, label, reset, s, limit).as_json(warn_at))
        return out
