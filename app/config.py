"""The gateway config file (YAML): schema, loading, validation.

Contract:
- :func:`load_config` reads a YAML file into a :class:`GatewayConfig` or raises
  :class:`ConfigError` whose message names the bad key and why. Unknown keys are errors (a typo
  must not silently fall back to a default).
- Secrets never live here: the OCI key comes from the OCI config file / workload identity, client
  keys from the keys file named by ``client_auth.api_keys_file``.
- The file's public contract is documented key by key in the README ("Configuration").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

# The ``models:`` entries are the catalog's specs; their schema lives with the catalog.
from app.catalog.catalog import discovery_ids
from app.catalog.spec import ModelSpec

# Sections for single features (media fetching, routing rules, web search) have their own module.
from app.config_sections import Media, RoutingRule, Strict, ToolSearch, WebSearch

# The ``teams:`` entries are policies; their schema lives with the policy object.
from app.security.policy import Budget, TeamSpec

AuthMode = Literal[
    "api_key",
    "instance_principal",
    "resource_principal",
    "workload_identity",
    "security_token",
    "demo",
]


class ConfigError(Exception):
    """The config file is missing, unreadable or invalid; the message says where and why."""


_Strict = Strict


class Timeouts(_Strict):
    connect: float = Field(10.0, gt=0)
    #: until OCI answers with response headers
    first_byte: float = Field(120.0, gt=0)
    #: longest silence allowed between two streamed chunks
    idle: float = Field(300.0, gt=0)


class Retries(_Strict):
    #: attempts per request in total (1 = no retry); only before any byte reached the client
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_base: float = Field(0.25, ge=0)
    backoff_max: float = Field(4.0, ge=0)


class CircuitBreaker(_Strict):
    """Per upstream target (base URL + serving mode), per worker: app/oci/breaker.py."""

    enabled: bool = True
    #: consecutive failed attempts (timeouts, connection errors, 5xx) that open the circuit
    failures: int = Field(3, ge=1, le=1000)
    #: seconds an open target is skipped before one probe request is let through
    cooldown: float = Field(30.0, gt=0)


class OciSection(_Strict):
    region: str | None = None
    endpoint: str | None = None
    compartment_id: str
    auth: AuthMode = "api_key"
    config_file: str = "~/.oci/config"
    profile: str = "DEFAULT"
    key_file: str | None = None
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    max_connections: int = Field(4096, ge=1)

    @model_validator(mode="after")
    def _region_or_endpoint(self) -> OciSection:
        # The inference URL is built from these two alone (GatewayConfig.base_url): a region
        # in the OCI profile or the signer does not reach it, so a config without either
        # could never serve a request. Say so at load time, not at the first request.
        if not self.region and not self.endpoint:
            raise ValueError("one of region or endpoint is required")
        return self

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be a full URL such as https://host[:port]")
        return v.rstrip("/") if v else v


#: JWT signature algorithms a config may allow: asymmetric only. ``none`` and the HMAC family
#: (HS*) are refused even when configured: verifying HS256 with a *public* key lets anyone who
#: has that key (everyone: it is published in the JWKS) mint tokens — the classic confusion.
JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class Oidc(_Strict):
    """``client_auth.oidc``: accept JWTs from the company IdP (README "Company sign-in")."""

    issuer: str
    audience: str | tuple[str, ...]
    #: default: ``jwks_uri`` of ``<issuer>/.well-known/openid-configuration``
    jwks_url: str | None = None
    user_claim: str = "sub"
    groups_claim: str = "groups"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    #: seconds of clock skew allowed on exp/nbf/iat
    leeway: float = Field(60.0, ge=0, le=600)
    #: refuse (403) users whose groups map to no ``teams.<name>.oidc_groups``
    require_team: bool = False
    #: fewest seconds between two JWKS fetches that unknown kids trigger (key rotation)
    jwks_min_refetch: float = Field(30.0, ge=0.1)
    #: members of these IdP groups are admins: ``GET /v1/usage`` for any key, user or team
    admin_groups: tuple[str, ...] = ()

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be a full URL such as https://idp.example.com")
        return v

    @field_validator("audience")
    @classmethod
    def _audience(cls, v: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if not v or (not isinstance(v, str) and not all(v)):
            raise ValueError("required: the aud the IdP puts in tokens for this gateway")
        return v

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if a not in JWT_ALGORITHMS]
        if bad or not v:
            raise ValueError(
                f"{', '.join(bad) or '(empty)'} not allowed: use asymmetric algorithms "
                f"({', '.join(sorted(JWT_ALGORITHMS))}); 'none' and HMAC (HS*) are refused"
            )
        return v


class ClientAuth(_Strict):
    api_keys_file: str | None = None
    oidc: Oidc | None = None
    #: start without any client authentication although oci.auth holds real credentials
    allow_anonymous: bool = False

    @model_validator(mode="after")
    def _anonymous_alone(self) -> ClientAuth:
        if self.allow_anonymous and (self.api_keys_file or self.oidc):
            raise ValueError(
                "allow_anonymous cannot be combined with api_keys_file or oidc (with either, "
                "every request must authenticate)"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys_file or self.oidc)


class ServerLimits(_Strict):
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_messages: int = Field(10000, ge=1)
    max_tools: int = Field(512, ge=0)
    max_blocks: int = Field(20000, ge=1)
    max_depth: int = Field(64, ge=4)
    #: seconds of upstream silence after which a `ping` event keeps the client connection alive
    ping_interval: float = Field(10.0, gt=0)
    #: seconds a client may take to send its request body (408 after that)
    body_timeout: float = Field(60.0, gt=0)
    #: MiB per worker of recent conversations kept decoded, so that a turn decodes only its new
    #: messages (app/anthropic/conversation_cache.py); 0 turns it off
    conversation_cache_mb: int = Field(64, ge=0)
    cors_origins: tuple[str, ...] = ()


class Limits(_Strict):
    redis_url: str | None = None


class Budgets(_Strict):
    """``budgets``: spend caps of signed-in users, and how budgets are signalled (README
    "Spend and budgets"; key and team budgets sit on the key entry and ``teams.<name>``)."""

    #: every signed-in (OIDC) user without an entry of their own in ``users``
    default_user: Budget | None = None
    #: per user (the token's user claim)
    users: dict[str, Budget] = {}
    #: share of a budget from which answers say ``allowed_warning`` (Claude Code warns)
    warn_at: float = Field(0.75, gt=0, lt=1)
    #: days of per-day usage data kept (Redis) for ``python -m app usage``
    history_days: int = Field(90, ge=1, le=800)


class Observability(_Strict):
    #: record prompt and completion text in spans (off by default: prompts are user data)
    record_content: bool = False


class GatewayConfig(_Strict):
    oci: OciSection
    models: dict[str, ModelSpec]
    aliases: dict[str, str] = {}
    default_model: str | None = None
    client_auth: ClientAuth = ClientAuth()
    teams: dict[str, TeamSpec] = {}
    server: ServerLimits = ServerLimits()
    limits: Limits = Limits()
    budgets: Budgets = Budgets()
    observability: Observability = Observability()
    media: Media = Media()
    #: ordered rules, first match wins, applied after the model name is resolved
    routing: tuple[RoutingRule, ...] = ()
    web_search: WebSearch = WebSearch()
    tool_search: ToolSearch = ToolSearch()

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        if not self.models:
            raise ValueError("models: at least one model is required")
        for i, rule in enumerate(self.routing):
            if rule.model not in self.models:
                raise ValueError(
                    f"routing[{i}].model: refers to undefined model {rule.model!r} "
                    f"(defined: {', '.join(sorted(self.models))})"
                )
        for pattern, target in self.aliases.items():
            if target not in self.models:
                raise ValueError(
                    f"aliases.{pattern}: refers to undefined model {target!r} "
                    f"(defined: {', '.join(sorted(self.models))})"
                )
        if self.default_model is not None and self.default_model not in self.models:
            raise ValueError(
                f"default_model: refers to undefined model {self.default_model!r} "
                f"(defined: {', '.join(sorted(self.models))})"
            )
        return self

    @model_validator(mode="after")
    def _discovery_ids(self) -> GatewayConfig:
        discovery_ids(self.models, self.aliases)  # ValueError names the ambiguous id
        return self

    @model_validator(mode="after")
    def _team_models(self) -> GatewayConfig:
        # a plain name (no glob) that is no model is a typo that would lock the team out
        for team, spec in self.teams.items():
            for name in spec.models or ():
                if not any(c in name for c in "*?[") and name not in self.models:
                    raise ValueError(
                        f"teams.{team}.models: {name!r} is not a model of the config "
                        f"(defined: {', '.join(sorted(self.models))}); globs like 'grok-*' work"
                    )
        return self

    def base_url(self, region: str | None = None, endpoint: str | None = None) -> str:
        """The inference base URL (without ``/20231130``)."""
        if endpoint:
            return endpoint.rstrip("/")
        if not region and self.oci.endpoint:
            return self.oci.endpoint
        region = region or self.oci.region
        if not region:
            raise ConfigError("oci.region: required when oci.endpoint is not set")
        return f"https://inference.generativeai.{region}.{_second_level_domain(region)}"


def _second_level_domain(region: str) -> str:
    # Realms other than oc1 (oci-genai-wire §1).
    if region == "eu-frankfurt-2":
        return "oci.oraclecloud.eu"
    if region.startswith("uk-gov-"):
        return "oci.oraclegovcloud.uk"
    return "oci.oraclecloud.com"


def check_client_auth(config: GatewayConfig) -> None:
    """Closed by default: with real OCI credentials some client authentication is required.

    Not part of :func:`parse_config` (a config without it is well-formed; ``check`` and the
    chart tests load it): the start-up and every reload apply it. ``oci.auth: demo`` (the
    bundled emulator, no real credentials) is exempt.
    """
    ca = config.client_auth
    if ca.enabled or ca.allow_anonymous or config.oci.auth == "demo":
        return
    raise ConfigError(
        f"client_auth: no client authentication is configured, and oci.auth is "
        f"{config.oci.auth!r}: the gateway would sign anyone's requests with your OCI "
        "credentials. Set client_auth.api_keys_file (create keys with `python -m app keys "
        'create`) or client_auth.oidc (README "Company sign-in"); for a gateway that only '
        "you can reach, set client_auth: {allow_anonymous: true}"
    )


def format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{loc}: {msg}")
    return "; ".join(lines)


def parse_config(data: Any, source: str = "config") -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {format_validation_error(err)}") from None


def load_config(path: str | Path, oci_endpoint: str | None = None) -> GatewayConfig:
    """Load and validate the YAML file; ``oci_endpoint`` (env GATEWAY_OCI_ENDPOINT) overrides."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the config file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML ({err})") from None
    if isinstance(data, dict) and oci_endpoint:
        data.setdefault("oci", {})
        if isinstance(data["oci"], dict):
            data["oci"]["endpoint"] = oci_endpoint
    return parse_config(data, str(p))


def expand(path: str) -> str:
    return os.path.expanduser(os.path.expandvars(path))
