"""``GET /v1/models`` and ``GET /v1/models/{id}``: the catalog in Anthropic's list shape.

Contract: ids are the gateway model names of the config (what clients put in ``model``), then
the aliases that are plain names (no glob), with
``display_name``, ``created_at``, ``max_input_tokens`` and ``max_tokens``; pagination with
``limit`` (1 to 1000), ``after_id`` and ``before_id`` as on the Anthropic API (§7). A model
whose OCI answers carried ``model-retirement-info`` (seen by this process) also has
``retirement_info`` (OCI's text) and ``deprecated: true``; clients ignore unknown fields.
Accounted like every route (``gateway_requests_total``, one access-log line).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import authenticate, respond, service
from app.errors import InvalidRequest, NotFound
from app.service.lifecycle import RetirementNotices

_CREATED = "2025-01-01T00:00:00Z"


def _info(name: str, spec: Any, notices: RetirementNotices) -> dict[str, Any]:
    info = {
        "type": "model",
        "id": name,
        "display_name": spec.display_name or name,
        "created_at": _CREATED,
        "max_input_tokens": spec.context_window,
        "max_tokens": spec.max_output_tokens,
    }
    notice = notices.get(spec.oci_model)
    if notice is not None:
        info["deprecated"] = True
        info["retirement_info"] = notice.text
    return info


async def list_models(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting("/v1/models") as acct:
        await authenticate(request, acct.call)
        q = request.query_params
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            raise InvalidRequest("limit: must be an integer") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        listing = dict(svc.catalog.listing())
        names = list(listing)
        if q.get("after_id") in names:
            names = names[names.index(q["after_id"]) + 1 :]
        if q.get("before_id") in names:
            names = names[: names.index(q["before_id"])]
        page = names[:limit]
        acct.answer(
            {
                "data": [_info(n, listing[n], svc.notices) for n in page],
                "has_more": len(names) > limit,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )
    return respond(acct)


async def get_model(request: Request) -> Response:
    svc = service(request)
    async with svc.accounting("/v1/models/{id}") as acct:
        await authenticate(request, acct.call)
        model_id = request.path_params["model_id"]
        spec = dict(svc.catalog.listing()).get(model_id)
        if spec is None:
            raise NotFound(f"model {model_id!r} is not served by this gateway")
        acct.answer(_info(model_id, spec, svc.notices))
    return respond(acct)
