"""Model specs: what one gateway model is on OCI, and where it can be served from. No I/O.

Contract: :class:`ModelSpec` is the ``models.<name>`` entry of the config file (validated
strictly: unknown keys, unknown ``profile`` keys and a spec with both or neither of
``model_id``/``endpoint_id`` are errors), and the single source of what the translators and the
service need to know about a model: its OCI target (:meth:`ModelSpec.serving_mode`), its
failover places in order (:meth:`ModelSpec.targets`), and its behaviour
(:attr:`ModelSpec.profile`, from which :attr:`~ModelSpec.format`,
:attr:`~ModelSpec.max_tokens_field`, :meth:`~ModelSpec.has` and
:attr:`~ModelSpec.output_limit` derive).

The profile is the table's (:mod:`app.catalog.profiles`, looked up by ``base_model`` or else
``model_id``), then the legacy keys ``capabilities`` (exactly the listed ones),
``api_format`` and ``max_tokens_param``, then the ``profile:`` overrides; ``context_window`` and
``max_output_tokens`` default to the table's figures. It is computed once, when the config is
loaded: translators read it per request, never per chunk.

The spec knows no base URL: a :class:`Target` names a region or an endpoint (or neither: the
gateway's own ``oci.region``/``oci.endpoint``), and the config (``GatewayConfig.base_url``)
turns that into a URL. That keeps this module free of the config file's other sections, so
``translate/`` can depend on it without depending on ``config.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from app.catalog.list_prices import list_price
from app.catalog.price import Price
from app.catalog.profiles import ApiFormat, ModelProfile, ProfileOverrides, table_profile

Capability = Literal["tools", "vision", "reasoning", "documents", "structured_output"]
_CAPABILITIES: tuple[str, ...] = get_args(Capability)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _serving_mode(model_id: str | None, endpoint_id: str | None) -> dict[str, str]:
    # a fresh dict each time: it goes into a request body that callers may edit
    if endpoint_id:
        return {"servingType": "DEDICATED", "endpointId": endpoint_id}
    return {"servingType": "ON_DEMAND", "modelId": model_id or ""}


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send a model's request: the OCI ``servingMode`` plus where it lives.

    ``region`` and ``endpoint`` are both None for the primary target (the gateway's own
    ``oci.region``/``oci.endpoint``); ``GatewayConfig.base_url(target.region, target.endpoint)``
    gives the URL in every case.
    """

    serving_mode: dict[str, str]
    region: str | None = None
    endpoint: str | None = None

    def label(self, default: str) -> str:
        """A bounded label for spans and logs: the region, else the endpoint, else ``default``."""
        return self.region or self.endpoint or default


class Upstream(_Spec):
    """One more place to serve a model from (failover order follows the list)."""

    region: str | None = None
    endpoint: str | None = None
    #: the model there, when it differs (default: the spec's own ``model_id``)
    model_id: str | None = None
    endpoint_id: str | None = None
    #: share of the requests that start here, with the model's ``spread: weighted``
    weight: float | None = Field(None, ge=0)


class ModelSpec(_Spec):
    # populate_by_name: code may pass ``profile_overrides=``; the config file says ``profile:``
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    model_id: str | None = None
    endpoint_id: str | None = None
    #: the OCI model a dedicated endpoint serves, for its profile (default: ``model_id``)
    base_model: str | None = None
    api_format: ApiFormat | None = None
    context_window: int = Field(128000, ge=256)
    max_output_tokens: int = Field(4096, ge=1)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    #: legacy: exactly these capabilities (default: the profile table's)
    capabilities: tuple[Capability, ...] | None = None
    #: per-model changes to the table's profile (any behaviour field, see profiles.py)
    profile_overrides: ProfileOverrides = Field(ProfileOverrides(), alias="profile")
    display_name: str | None = None
    #: the id ``GET /v1/models`` lists for Claude Code's picker (default ``claude-<name>``);
    #: Claude Code keeps only ids starting with ``claude``/``anthropic`` (app/catalog/catalog.py)
    discovery_id: str | None = Field(None, pattern=r"(?i)^(claude|anthropic)[A-Za-z0-9._:@/-]*$")
    #: extra OCI regions/endpoints tried in order on 429/5xx/connection failure
    failover: tuple[Upstream, ...] = ()
    #: ``weighted``: each request starts at a target drawn by ``weight`` (default 1), then fails
    #: over through the others in order; unset: the primary first (app/oci/breaker.py)
    spread: Literal["weighted"] | None = None
    weight: float | None = Field(None, ge=0)
    #: USD per million tokens (app/catalog/price.py). Unset: the shipped list price of an
    #: on-demand ``model_id`` (app/catalog/list_prices.py); ``null``: requests cost 0
    price: Price | None = None

    _profile: ModelProfile = PrivateAttr()
    _output_limit: int = PrivateAttr()
    _unit_price: Price | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _table_limits(cls, data: Any) -> Any:
        # the table's figures are the defaults of the two limit keys
        if isinstance(data, dict):
            key = data.get("base_model") or data.get("model_id")
            if isinstance(key, str):
                table = table_profile(key)
                data = {
                    "context_window": table.context_window,
                    "max_output_tokens": table.max_output_tokens,
                    **data,
                }
        return data

    @model_validator(mode="after")
    def _one_target(self) -> ModelSpec:
        if bool(self.model_id) == bool(self.endpoint_id):
            raise ValueError("exactly one of model_id or endpoint_id is required")
        return self

    def model_post_init(self, context: Any) -> None:
        changes: dict[str, Any] = {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
        }
        if self.capabilities is not None:
            changes.update({c: c in self.capabilities for c in _CAPABILITIES})
        if self.api_format is not None:
            changes["format"] = self.api_format
        if self.max_tokens_param is not None:
            changes["tokens_param"] = self.max_tokens_param
        changes.update(self.profile_overrides.changes())
        self._profile = profile = table_profile(self.base_model or self.model_id).but(**changes)
        # the on-demand cap applies when any target serves ON_DEMAND: the translated body is
        # shared by the failover targets, so a mixed list takes the lower limit
        on_demand = any(t.serving_mode["servingType"] == "ON_DEMAND" for t in self.targets())
        cap = profile.on_demand_max_output
        self._output_limit = (
            min(cap, self.max_output_tokens) if cap and on_demand else self.max_output_tokens
        )
        self._unit_price = self.price
        if "price" not in self.model_fields_set and self.model_id:
            # dedicated endpoints are billed per unit-hour: only on-demand ids get a list price
            self._unit_price = list_price(self.model_id)

    @property
    def unit_price(self) -> Price | None:
        """What the tokens cost: ``price`` as configured, else the shipped list price of an
        on-demand ``model_id`` (None: unpriced, requests cost 0)."""
        return self._unit_price

    @property
    def price_source(self) -> str | None:
        """``config``, ``list`` (app/catalog/list_prices.py) or None (unpriced)."""
        if self._unit_price is None:
            return None
        return "config" if "price" in self.model_fields_set else "list"

    @property
    def profile(self) -> ModelProfile:
        """The effective profile (table, then this entry's keys; see the module docstring)."""
        return self._profile

    @model_validator(mode="after")
    def _weights(self) -> ModelSpec:
        given = self.weight is not None or any(up.weight is not None for up in self.failover)
        if given and self.spread is None:
            raise ValueError("weight: only used with spread: weighted")
        if self.spread and not any(w > 0 for w in self.weights() or ()):
            raise ValueError("spread: weighted needs a target with a weight above 0")
        return self

    def weights(self) -> tuple[float, ...] | None:
        """Per target (:meth:`targets` order) with ``spread: weighted``; else None."""
        if self.spread is None:
            return None
        ups = (self.weight, *(up.weight for up in self.failover))
        return tuple(1.0 if w is None else w for w in ups)

    @property
    def oci_model(self) -> str:
        return self.model_id or self.endpoint_id or ""

    @property
    def format(self) -> ApiFormat:
        return self._profile.format

    @property
    def tokens_param(self) -> str:
        return self._profile.tokens_param

    @property
    def max_tokens_field(self) -> str:
        """The GENERIC ``chatRequest`` field for the output limit (COHERE always ``maxTokens``)."""
        if self._profile.tokens_param == "max_completion_tokens":
            return "maxCompletionTokens"
        return "maxTokens"

    @property
    def output_limit(self) -> int:
        """The most output tokens a request may ask for: ``max_output_tokens``, lowered to the
        profile's ``on_demand_max_output`` when a target serves ON_DEMAND (DEDICATED endpoints
        have no such cap, RW §8)."""
        return self._output_limit

    def has(self, capability: str) -> bool:
        return capability in _CAPABILITIES and bool(getattr(self._profile, capability))

    def serving_mode(self) -> dict[str, str]:
        """The OCI ``servingMode`` of the primary target (a new dict on every call)."""
        return _serving_mode(self.model_id, self.endpoint_id)

    def targets(self) -> tuple[Target, ...]:
        """Where to send this model's requests, in failover order: the primary first.

        A failover entry without its own ``model_id``/``endpoint_id`` serves the spec's
        ``model_id`` on demand there.
        """
        return (
            Target(self.serving_mode()),
            *(
                Target(
                    _serving_mode(up.model_id or self.model_id, up.endpoint_id),
                    up.region,
                    up.endpoint,
                )
                for up in self.failover
            ),
        )
