"""The config file's sections for single features: media fetching, routing rules, web search.

Contract: pydantic models of ``media:``, ``routing:`` and ``web_search:`` (README
"Configuration"), strict like every section (an unknown key is an error, values are frozen);
:mod:`app.config` composes them into :class:`~app.config.GatewayConfig` and checks what refers
across sections (a routing rule's target model).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Every config section: a typo must fail loudly, and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Media(Strict):
    """Anthropic ``url`` image/document sources: OCI takes base64 only, so the gateway fetches
    them (app/service/media.py); the limits keep that fetch from being a way into the network."""

    fetch: bool = True
    #: largest image or document fetched, in bytes
    max_bytes: int = Field(5 * 1024 * 1024, ge=1)
    #: seconds for all the fetches of one request together
    timeout: float = Field(10.0, gt=0)
    #: url sources in one request at most
    max_items: int = Field(20, ge=1, le=100)
    max_redirects: int = Field(3, ge=0, le=10)
    #: fetch from private, loopback, link-local and other non-public addresses too
    allow_private: bool = False
    #: host names or IP literals fetched even when they resolve to non-public addresses
    allowed_hosts: tuple[str, ...] = ()


#: the kinds of request a routing rule can match (app/service/routing.py says how each is known)
RequestClass = Literal["main", "subagent", "compaction", "auxiliary", "title"]


class RouteMatch(Strict):
    """``routing[].match``: every matcher given must hold (none given: every request)."""

    request_class: RequestClass | tuple[RequestClass, ...] | None = None
    #: the gateway's calibrated input-token estimate for the requested model, at least this
    min_input_tokens: int | None = Field(None, ge=0)
    #: whether the request asks for thinking (``enabled`` or ``adaptive``)
    thinking: bool | None = None
    #: glob over the model name the client sent or the gateway model it resolved to
    model: str | None = None


class RoutingRule(Strict):
    match: RouteMatch = RouteMatch()
    #: the gateway model (a key of ``models:``) that serves the requests the rule matches
    model: str


class WebSearch(Strict):
    """The backend that runs Anthropic's ``web_search`` server tool (app/service/web_search.py);
    without ``backend`` the tool answers ``unavailable`` (README "Web search")."""

    backend: Literal["searxng", "brave", "tavily"] | None = None
    #: SearXNG: the instance's base URL (required); Brave/Tavily: override of the API's URL
    url: str | None = None
    #: file holding the Brave / Tavily API key (a secret: never inline in the config)
    api_key_file: str | None = None
    #: results handed to the model per search
    max_results: int = Field(5, ge=1, le=20)
    #: seconds for one search
    timeout: float = Field(10.0, gt=0)
    #: seconds for the whole search loop of one request (every model call and search)
    deadline: float = Field(300.0, gt=0)
    #: searches per request when the tool's own ``max_uses`` is absent
    max_uses: int = Field(5, ge=1, le=50)

    @model_validator(mode="after")
    def _needs(self) -> WebSearch:
        if self.backend == "searxng" and not self.url:
            raise ValueError("web_search.url: the SearXNG instance's base URL is required")
        if self.backend in ("brave", "tavily") and not self.api_key_file:
            raise ValueError(f"web_search.api_key_file: required for backend {self.backend}")
        return self


class ToolSearch(Strict):
    """Tool search over ``defer_loading`` tools, run by the gateway (app/service/tool_search.py;
    README "Tool search")."""

    #: with deferred tools but no Anthropic tool search tool in the request, offer the gateway's
    #: own search function anyway (not when the client brings its own, e.g. Claude Code's
    #: ``ToolSearch``)
    offer: bool = True
    #: the name of that function (the model calls it; clients see it in ``server_tool_use``)
    name: str = Field("tool_search", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    #: tools per search (Anthropic's tool search returns 3-5)
    max_results: int = Field(5, ge=1, le=20)
    #: searches per request
    max_uses: int = Field(10, ge=1, le=50)
