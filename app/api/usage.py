"""``GET /v1/usage``: the caller's spend and remaining budget per window, as JSON.

Contract: thin, inside the service's accounting block. Without a query, the caller's own windows
(theirs and their team's: :func:`~app.security.budgets.owners`). ``?key=<id>``, ``?user=<id>``
or ``?team=<name>`` (one of them) names someone else: allowed for admins (a key entry with
``admin: true``, or a signed-in user in ``client_auth.oidc.admin_groups``) and for the caller's
own key, user or team; anyone else gets 403 ``permission_error``, an unknown key or team 404.
Each window (day, week, month; UTC calendar periods) says ``spent_usd``, ``budget_usd`` (null:
no cap), ``remaining_usd``, ``utilization``, ``status`` and ``resets_at``. The figures come from
the same store the budgets check (Redis when configured, else this process).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, respond, service
from app.errors import InvalidRequest, NotFound, PermissionDenied
from app.security.budgets import Owner, owners
from app.security.policy import Principal

ROUTE = "/v1/usage"
_ASKS = ("key", "user", "team")


def _own(principal: Principal, scope: str, name: str) -> bool:
    if scope == "team":
        return principal.team == name
    return principal.kind == scope and principal.id == name


async def get_usage(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting(ROUTE) as acct:
        principal = await authenticate(request, acct.call)
        if principal is None:
            raise PermissionDenied(
                "GET /v1/usage needs an authenticated caller (this gateway has no client "
                "authentication)"
            )
        config = svc.config
        asked = [(s, request.query_params[s]) for s in _ASKS if request.query_params.get(s)]
        if len(asked) > 1:
            raise InvalidRequest("name at most one of key, user or team")
        if not asked:
            who = owners(principal, config.budgets)
        else:
            scope, name = asked[0]
            if not principal.admin and not _own(principal, scope, name):
                raise PermissionDenied(
                    f"{principal.describe()} may read only its own usage (admins may read anyone's)"
                )
            who = _owners_of(request, scope, name)
        windows = await svc.budgets.view(who, config.budgets.warn_at)
        acct.answer(
            {
                "type": "usage",
                "scope": who[0].scope,
                "name": who[0].name,
                "warn_at": config.budgets.warn_at,
                "windows": windows,
            }
        )
    return respond(acct)


def _owners_of(request: Request, scope: str, name: str) -> list[Owner]:
    config = service(request).config
    if scope == "team":
        spec = config.teams.get(name)
        if spec is None:
            raise NotFound(f"no team {name!r} in the gateway's config")
        return [Owner("team", name, spec.budget)]
    if scope == "user":
        budgets = config.budgets
        return [Owner("user", name, budgets.users.get(name, budgets.default_user))]
    entry = next((k for k in request.app.state.identity.keys.entries if k.id == name), None)
    if entry is None:
        raise NotFound(f"no API key {name!r} in the keys file")
    out = [Owner("key", name, entry.budget)]
    if entry.team and entry.team in config.teams:
        out.append(Owner("team", entry.team, config.teams[entry.team].budget))
    return out
