"""Model specs: what one gateway model is on OCI, and where it can be served from. No I/O.

Contract: :class:`ModelSpec` is the ``models.<name>`` entry of the config file (validated
strictly: unknown keys and a spec with both or neither of ``model_id``/``endpoint_id`` are
errors), and the single source of what the translators and the service need to know about a
model: its OCI target (:meth:`ModelSpec.serving_mode`), its failover places in order
(:meth:`ModelSpec.targets`), its wire format (:attr:`ModelSpec.format`), its output-token field
(:attr:`ModelSpec.max_tokens_field`) and its capabilities (:meth:`ModelSpec.has`).

The spec knows no base URL: a :class:`Target` names a region or an endpoint (or neither: the
gateway's own ``oci.region``/``oci.endpoint``), and the config (``GatewayConfig.base_url``)
turns that into a URL. That keeps this module free of the config file's other sections, so
``translate/`` can depend on it without depending on ``config.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.catalog.price import Price

Capability = Literal["tools", "vision", "reasoning", "documents", "structured_output"]
ApiFormat = Literal["GENERIC", "COHERE", "COHEREV2"]

# openai gpt-5* and o-series reject maxTokens (oci-genai-wire §5)
_MAX_COMPLETION_TOKENS = re.compile(r"^openai\.(gpt-5|o\d)")
# Command A Vision takes only COHEREV2 (GENERIC: "Chat request type does not match serving
# model", v1 drops images: litellm cohere_v2.py); Command A Reasoning needs it for `thinking`
# (acedergren getApiFormat(); reference/oci-real-world.md #2)
_COHEREV2 = re.compile(r"^cohere\.command-a-(vision|reasoning)")


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
    model_id: str | None = None
    endpoint_id: str | None = None
    api_format: ApiFormat | None = None
    context_window: int = Field(128000, ge=256)
    max_output_tokens: int = Field(4096, ge=1)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    capabilities: tuple[Capability, ...] = ("tools",)
    display_name: str | None = None
    #: extra OCI regions/endpoints tried in order on 429/5xx/connection failure
    failover: tuple[Upstream, ...] = ()
    #: ``weighted``: each request starts at a target drawn by ``weight`` (default 1), then fails
    #: over through the others in order; unset: the primary first (app/oci/breaker.py)
    spread: Literal["weighted"] | None = None
    weight: float | None = Field(None, ge=0)
    #: USD per million tokens (app/catalog/price.py); None: requests cost 0 (no default prices)
    price: Price | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ModelSpec:
        if bool(self.model_id) == bool(self.endpoint_id):
            raise ValueError("exactly one of model_id or endpoint_id is required")
        return self

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
        if self.api_format:
            return self.api_format
        model_id = self.model_id or ""
        if _COHEREV2.match(model_id):
            return "COHEREV2"
        return "COHERE" if model_id.startswith("cohere.") else "GENERIC"

    @property
    def tokens_param(self) -> str:
        if self.max_tokens_param:
            return self.max_tokens_param
        if _MAX_COMPLETION_TOKENS.match(self.model_id or ""):
            return "max_completion_tokens"
        return "max_tokens"

    @property
    def max_tokens_field(self) -> str:
        """The GENERIC ``chatRequest`` field for the output limit (COHERE always ``maxTokens``)."""
        if self.tokens_param == "max_completion_tokens":
            return "maxCompletionTokens"
        return "maxTokens"

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

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
