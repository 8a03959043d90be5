"""``GET /v1/models`` and ``GET /v1/models/{id}``: the catalog in Anthropic's list shape.

Contract: the listing (:meth:`app.catalog.Catalog.listing`) is every model's *discovery id*
(``claude-<name>`` or ``models.<name>.discovery_id``: what Claude Code's picker keeps), then
the gateway model names, then the aliases that are plain names (no glob) — each only when the
caller may use the model it reaches (:meth:`app.security.policy.Principal.allows`; anonymous
callers see all). Every entry has ``display_name``, ``created_at``, ``max_input_tokens``,
``max_tokens`` and a ``description`` naming the OCI model, its context window and
capabilities; pagination with ``limit`` (1 to 1000), ``after_id`` and ``before_id``, and
``has_more``/``first_id``/``last_id`` as on the Anthropic API (§7). Every listed id resolves to
its model in ``/v1/messages`` and ``GET /v1/models/{id}`` (404 for ids the caller may not use,
as for unknown ones: the listing does not reveal them either). A model whose OCI answers
carried ``model-retirement-info`` (seen by this process) also has ``retirement_info`` (OCI's
text) and ``deprecated: true``; clients ignore unknown fields.
Accounted like every route (``gateway_requests_total``, one access-log line).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, respond, service
from app.catalog import ModelSpec
from app.errors import InvalidRequest, NotFound
from app.security.policy import Principal
from app.service.lifecycle import RetirementNotices

_CREATED = "2025-01-01T00:00:00Z"
_CAPS = ("tools", "vision", "reasoning", "documents", "structured_output")


def describe(name: str, spec: ModelSpec) -> str:
    """What the picker shows under the name: the OCI model, its window and capabilities."""
    caps = ", ".join(c.replace("_", " ") for c in _CAPS if spec.has(c)) or "text only"
    return (
        f"{name} on OCI Generative AI ({spec.oci_model}): {spec.context_window:,}-token "
        f"context, up to {spec.output_limit:,} output tokens; {caps}"
    )


def _info(mid: str, name: str, spec: ModelSpec, notices: RetirementNotices) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "model",
        "id": mid,
        "display_name": spec.display_name or name,
        "created_at": _CREATED,
        "description": describe(name, spec),
        "max_input_tokens": spec.context_window,
        "max_tokens": spec.max_output_tokens,
    }
    notice = notices.get(spec.oci_model)
    if notice is not None:
        info["deprecated"] = True
        info["retirement_info"] = notice.text
    return info


def _visible(request: Request, key: Principal | None) -> dict[str, tuple[str, ModelSpec]]:
    listing = service(request).catalog.listing()
    return {mid: (n, s) for mid, n, s in listing if key is None or key.allows(n)}


async def list_models(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting("/v1/models") as acct:
        key = await authenticate(request, acct.call)
        q = request.query_params
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            raise InvalidRequest("limit: must be an integer") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        listing = _visible(request, key)
        ids = list(listing)
        if q.get("after_id") in listing:
            ids = ids[ids.index(q["after_id"]) + 1 :]
        if q.get("before_id") in listing:
            ids = ids[: ids.index(q["before_id"])]
        page = ids[:limit]
        acct.answer(
            {
                "data": [_info(i, *listing[i], svc.notices) for i in page],
                "has_more": len(ids) > limit,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )
    return respond(acct)


async def get_model(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting("/v1/models/{id}") as acct:
        key = await authenticate(request, acct.call)
        model_id = request.path_params["model_id"]
        hit = _visible(request, key).get(model_id)
        if hit is None:
            raise NotFound(f"model {model_id!r} is not served by this gateway")
        acct.answer(_info(model_id, *hit, svc.notices))
    return respond(acct)
