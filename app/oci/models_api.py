"""OCI's management API ``ListModels``: what the tenancy's region offers, and what is retiring.

Contract:
- :func:`management_url` is the management API's base URL: ``https://generativeai.<region>.…``
  (oci-genai-wire.md §1: a different host from inference, ``inference.generativeai.…``); with
  ``oci.endpoint`` set (the emulator, a proxy) that same endpoint serves both.
- :func:`list_models` sends ``GET /20231130/models?compartmentId=…&capability=CHAT`` signed with
  the gateway's signer (:meth:`~app.oci.client.OciClient.get_json`), follows ``opc-next-page``
  (at most :data:`MAX_PAGES` pages), and returns :class:`OciModel` rows (the SDK's
  ``ModelSummary`` wire names: ``id``, ``displayName``, ``vendor``, ``version``,
  ``capabilities``, ``lifecycleState``, ``timeDeprecated``, ``timeOnDemandRetired``,
  ``timeDedicatedRetired``). Failures raise :class:`~app.oci.errors.UpstreamError`.
- :func:`lifecycle_warnings` (pure) says, for each configured on-demand model, whether the list
  lacks it, or shows it deprecated, retired or retiring, or not ACTIVE. A configured
  ``model_id`` matches a row's ``displayName`` (the name OCI's docs use) or its OCID.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from app.config import GatewayConfig
from app.oci.client import OciClient

MODELS_PATH = "/20231130/models"
MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class OciModel:
    id: str
    display_name: str
    vendor: str
    version: str
    capabilities: tuple[str, ...]
    lifecycle_state: str
    time_deprecated: str | None
    time_on_demand_retired: str | None
    time_dedicated_retired: str | None

    @classmethod
    def from_summary(cls, item: dict[str, Any]) -> OciModel:
        def text(key: str) -> str:
            value = item.get(key)
            return value if isinstance(value, str) else ""

        def when(key: str) -> str | None:
            value = item.get(key)
            return value if isinstance(value, str) and value else None

        caps = item.get("capabilities")
        return cls(
            id=text("id"),
            display_name=text("displayName"),
            vendor=text("vendor"),
            version=text("version"),
            capabilities=tuple(c for c in caps if isinstance(c, str))
            if isinstance(caps, list)
            else (),
            lifecycle_state=text("lifecycleState"),
            time_deprecated=when("timeDeprecated"),
            time_on_demand_retired=when("timeOnDemandRetired"),
            time_dedicated_retired=when("timeDedicatedRetired"),
        )


def management_url(config: GatewayConfig) -> str:
    if config.oci.endpoint:
        return config.oci.endpoint
    # the inference host without its "inference." label (oci-genai-wire.md §1)
    return config.base_url().replace("://inference.", "://", 1)


async def list_models(
    client: OciClient,
    config: GatewayConfig,
    capability: str | None = "CHAT",
    *,
    page_size: int | None = None,
) -> list[OciModel]:
    query: dict[str, str] = {"compartmentId": config.oci.compartment_id}
    if capability:
        query["capability"] = capability
    if page_size:
        query["limit"] = str(page_size)
    base = management_url(config) + MODELS_PATH
    rows: list[OciModel] = []
    page: str | None = None
    for _ in range(MAX_PAGES):
        params = {**query, "page": page} if page else query
        data, page = await client.get_json(f"{base}?{urlencode(params)}", uuid.uuid4().hex.upper())
        items = data.get("items")
        if isinstance(items, list):
            rows.extend(OciModel.from_summary(i) for i in items if isinstance(i, dict))
        if not page:
            break
    return rows


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def find(models: list[OciModel], model_id: str) -> OciModel | None:
    """The row a configured ``model_id`` names (an ACTIVE one first when several match)."""
    matches = [m for m in models if model_id in (m.display_name, m.id)]
    return next(
        (m for m in matches if m.lifecycle_state == "ACTIVE"), matches[0] if matches else None
    )


def lifecycle_warnings(
    config: GatewayConfig, models: list[OciModel], now: datetime | None = None
) -> list[str]:
    now = now or datetime.now(UTC)
    out: list[str] = []
    for name, spec in config.models.items():
        od = "on-demand"
        if not spec.model_id:  # a dedicated endpoint: ListModels does not list endpoints
            continue
        row = find(models, spec.model_id)
        if row is None:
            out.append(f"{name}: {spec.model_id} is not offered for CHAT in this region")
            continue
        if row.lifecycle_state and row.lifecycle_state != "ACTIVE":
            out.append(f"{name}: {spec.model_id} is {row.lifecycle_state}")
        retired = _parse_time(row.time_on_demand_retired)
        deprecated = _parse_time(row.time_deprecated)
        if retired is not None and retired <= now:
            out.append(
                f"{name}: {spec.model_id} was retired for {od} use on {row.time_on_demand_retired}"
            )
        elif deprecated is not None and deprecated <= now:
            until = f"; on-demand retirement {row.time_on_demand_retired}" if retired else ""
            out.append(f"{name}: {spec.model_id} is deprecated since {row.time_deprecated}{until}")
        elif retired is not None:
            out.append(
                f"{name}: {spec.model_id} retires for {od} use on {row.time_on_demand_retired}"
            )
        elif deprecated is not None:
            out.append(f"{name}: {spec.model_id} will be deprecated on {row.time_deprecated}")
    return out


def table(models: list[OciModel]) -> str:
    """The rows as a fixed-width text table (``python -m app models``)."""
    head = (
        "model",
        "vendor",
        "version",
        "capabilities",
        "state",
        "deprecated",
        "on-demand retired",
        "dedicated retired",
    )
    rows = [
        (
            m.display_name or m.id,
            m.vendor,
            m.version,
            ",".join(m.capabilities),
            m.lifecycle_state,
            (m.time_deprecated or "-")[:10],
            (m.time_on_demand_retired or "-")[:10],
            (m.time_dedicated_retired or "-")[:10],
        )
        for m in sorted(models, key=lambda m: (m.display_name, m.version))
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    )
