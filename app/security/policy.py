"""Who a caller is and what they may do: the ONE policy object of an authenticated request.

Contract:
- :class:`Principal` is what authentication hands the service, the same shape for an API key
  and for an OIDC user: ``id`` (what logs, metrics and spans show: the key id, or the user
  claim of the token), ``kind``, ``team``, the model rules, the per-minute limits, and the
  budgets (stored for the spend engineer; NOT enforced yet). The service asks
  :meth:`Principal.allows` for the model and the limiter reads the limits; nothing else needs
  to know where the caller came from.
- :func:`effective` builds it as the *intersection* of the caller's own settings (a key
  entry's ``models`` and limits) and their team's (``teams.<name>`` of the config): a model
  must match a pattern of every rule set that has one (glob patterns, :mod:`fnmatch`), and of
  each per-minute limit the smaller value applies. Team limits apply to each member on their
  own (a team-wide cap is what the team budget is for). Budgets are not intersected: the
  key's (or user's) and the team's are separate counters, so both are kept.
- :class:`TeamSpec`, :class:`RateLimits` and :class:`Budget` are the config schema of
  ``teams:`` and of ``budget:`` (the keys file validates its entries with the same models).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Budget(_Strict):
    """Spend caps in USD per calendar window (parsed and stored; enforced by a later change)."""

    usd_per_day: float | None = Field(None, gt=0)
    usd_per_week: float | None = Field(None, gt=0)
    usd_per_month: float | None = Field(None, gt=0)


class RateLimits(_Strict):
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    max_concurrent_streams: int | None = Field(None, ge=1)


class TeamSpec(_Strict):
    #: gateway model names or glob patterns (``grok-*``) the team may use; None = every model
    models: tuple[str, ...] | None = None
    limits: RateLimits = RateLimits()
    budget: Budget | None = None
    #: members of these IdP groups (the token's groups claim) belong to the team
    oidc_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    kind: Literal["key", "user"] = "key"
    team: str | None = None
    owner: str | None = None
    #: every rule set must allow the model (one per layer: the key's, the team's)
    model_rules: tuple[tuple[str, ...], ...] = ()
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent_streams: int | None = None
    budget: Budget | None = None
    team_budget: Budget | None = None

    def allows(self, model: str) -> bool:
        return all(_matches(model, rules) for rules in self.model_rules)

    @property
    def has_limits(self) -> bool:
        """Whether any per-minute limit applies: callers without limits skip the limiter."""
        return not (
            self.requests_per_minute is None
            and self.tokens_per_minute is None
            and self.max_concurrent_streams is None
        )

    def describe(self) -> str:
        """How error messages name the caller (never the credential itself)."""
        who = f"API key {self.id!r}" if self.kind == "key" else f"user {self.id!r}"
        return f"{who} (team {self.team!r})" if self.team else who


#: no limits (a shared, immutable default)
NO_LIMITS = RateLimits()


def _matches(model: str, patterns: tuple[str, ...]) -> bool:
    return any(model == p or fnmatch.fnmatchcase(model, p) for p in patterns)


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def effective(
    id: str,
    *,
    kind: Literal["key", "user"] = "key",
    owner: str | None = None,
    models: tuple[str, ...] | None = None,
    limits: RateLimits = NO_LIMITS,
    budget: Budget | None = None,
    team: str | None = None,
    spec: TeamSpec | None = None,
) -> Principal:
    """The caller's own settings intersected with their team's (``spec``; None = no team)."""
    rules = tuple(r for r in (models, spec.models if spec else None) if r is not None)
    tl = spec.limits if spec else NO_LIMITS
    return Principal(
        id=id,
        kind=kind,
        team=team,
        owner=owner,
        model_rules=rules,
        requests_per_minute=_smaller(limits.requests_per_minute, tl.requests_per_minute),
        tokens_per_minute=_smaller(limits.tokens_per_minute, tl.tokens_per_minute),
        max_concurrent_streams=_smaller(limits.max_concurrent_streams, tl.max_concurrent_streams),
        budget=budget,
        team_budget=spec.budget if spec else None,
    )


def team_for_groups(teams: dict[str, TeamSpec], groups: list[str]) -> str | None:
    """The first team (in config order) one of whose ``oidc_groups`` the user is in."""
    member = set(groups)
    for name, spec in teams.items():
        if member.intersection(spec.oidc_groups):
            return name
    return None
