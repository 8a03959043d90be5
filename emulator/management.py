"""OCI Generative AI *management* API, the part a gateway reads: ListModels and GetModel.

Contract (SDK ``oci.generative_ai.GenerativeAiClient.list_models`` / ``get_model``, 2.189.0):

* ``GET /20231130/models?compartmentId=...`` → ``ModelCollection`` ``{"items": [ModelSummary]}``.
  ``compartmentId`` is required (400 otherwise). Filters, as the SDK sends them: ``vendor``,
  ``capability`` (repeatable), ``lifecycleState``, ``displayName``, ``id``. ``sortBy``
  (``displayName`` | ``lifecycleState`` | ``timeCreated``) and ``sortOrder`` (``ASC`` | ``DESC``);
  without ``sortBy`` the items come sorted by displayName ascending (the real default is not
  documented). ``limit`` + ``page``: a page that is not the last has an ``opc-next-page``
  header whose value is the ``page`` of the next one.
* ``GET /20231130/models/{modelId}`` → ``Model`` (the summary's fields plus ``description``
  and ``timeUpdated``); the id is the model OCID or the model name; unknown → 404.

A ``ModelSummary`` here: ``id`` (``ModelInfo.ocid``), ``displayName`` (the model name, e.g.
``xai.grok-4``, which chat requests may use as ``modelId``), ``vendor`` (the id prefix),
``version``, ``capabilities`` (``["CHAT"]``), ``lifecycleState`` (``ACTIVE``), ``type``
(``BASE``), ``timeCreated``, and ``timeDeprecated`` / ``timeOnDemandRetired`` /
``timeDedicatedRetired`` when the catalog has them; absent fields are omitted like the SDK
omits ``None``. Vendor spelling and the capability list of real base models are not verified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .catalog import Catalog, ModelInfo
from .errors import OCIError

MODELS_PATH = "/20231130/models"
PLACEHOLDER_TIME_CREATED = "2024-01-01T00:00:00.000Z"  # when the evidence gives no date
_SORT_FIELDS = ("displayName", "lifecycleState", "timeCreated")


def model_summary(info: ModelInfo) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": info.ocid,
        "compartmentId": None,  # "For pretrained models, this value is null" (SDK)
        "capabilities": ["CHAT"],
        "lifecycleState": "ACTIVE",
        "displayName": info.model_id,
        "vendor": info.vendor,
        "version": info.version,
        "timeCreated": info.time_created or PLACEHOLDER_TIME_CREATED,
        "type": "BASE",
        "timeDeprecated": info.time_deprecated,
        "timeOnDemandRetired": info.time_on_demand_retired,
        "timeDedicatedRetired": info.time_dedicated_retired,
    }
    return {k: v for k, v in summary.items() if v is not None or k == "compartmentId"}


def model_detail(info: ModelInfo) -> dict[str, Any]:
    summary = model_summary(info)
    return {**summary, "description": f"{info.model_id} (emulated base model)",
            "timeUpdated": summary["timeCreated"]}


def _invalid(message: str) -> OCIError:
    return OCIError(400, "InvalidParameter", message)


def _matches(summary: dict[str, Any], query: Mapping[str, Sequence[str]]) -> bool:
    for param, key in (("vendor", "vendor"), ("lifecycleState", "lifecycleState"),
                       ("displayName", "displayName"), ("id", "id")):
        if param in query and summary.get(key) != query[param][0]:
            return False
    wanted = query.get("capability") or []
    return all(c in summary["capabilities"] for c in wanted)


def list_models(catalog: Catalog,
                query: Mapping[str, Sequence[str]]) -> tuple[dict[str, Any], str | None]:
    """``(ModelCollection, opc-next-page or None)`` for a parsed query string."""
    if not query.get("compartmentId", [""])[0]:
        raise _invalid("compartmentId: required query parameter missing")
    items = [s for s in map(model_summary, catalog.models.values()) if _matches(s, query)]
    sort_by = query.get("sortBy", ["displayName"])[0]
    order = query.get("sortOrder", ["ASC"])[0]
    if sort_by not in _SORT_FIELDS or order not in ("ASC", "DESC"):
        raise _invalid(f"sortBy/sortOrder: unsupported value {sort_by!r}/{order!r}")
    items.sort(key=lambda s: (s[sort_by], s["displayName"]), reverse=order == "DESC")
    try:
        start = int(query.get("page", ["0"])[0])
        limit = int(query.get("limit", [str(len(items) or 1)])[0])
    except ValueError:
        raise _invalid("page/limit: must be integers") from None
    if limit < 1 or start < 0:
        raise _invalid("page/limit: out of range")
    page = items[start: start + limit]
    next_page = str(start + limit) if start + limit < len(items) else None
    return {"items": page}, next_page


def get_model(catalog: Catalog, model_id: str) -> dict[str, Any]:
    info = catalog.by_ocid(model_id) or catalog.models.get(model_id)
    if info is None:
        raise OCIError(404, "NotAuthorizedOrNotFound",
                       "Authorization failed or requested resource not found.")
    return model_detail(info)
