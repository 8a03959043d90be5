"""The web search backends: one query in, a list of :class:`SearchHit` out. Outbound HTTP.

Contract: :func:`search` runs one query against the configured backend (``web_search`` in the
config) within ``timeout`` seconds and returns at most ``max_results`` hits, or raises
:class:`SearchUnavailable` -- not configured, unreachable, timed out, a non-2xx answer or a body
that is not the backend's JSON -- whose ``error_code`` is the Anthropic
``web_search_tool_result_error`` code to show (``unavailable`` or ``too_many_requests``).
Never anything else: a failing search is a tool result, not a 500.

Backends and their documented APIs:
- ``searxng``: ``GET {url}/search?q=…&format=json`` (the instance must enable the json format in
  ``search.formats``) → ``results[{url, title, content, publishedDate}]``.
- ``brave``: ``GET https://api.search.brave.com/res/v1/web/search?q=…&count=N`` with
  ``X-Subscription-Token`` → ``web.results[{url, title, description, page_age, age}]``. Brave
  supports ``site:`` operators, so allowed domains become ``(site:a OR site:b)`` hints.
- ``tavily``: ``POST https://api.tavily.com/search`` ``{query, max_results, include_domains,
  exclude_domains}`` with ``Authorization: Bearer <key>`` → ``results[{url, title, content,
  published_date}]``.

``user_location`` (the tool's ``{city, region, country, timezone}``): Brave gets ``country``
(its 2-letter ``country`` parameter, the ISO code Anthropic's ``country`` is). SearXNG's API has
no location parameter (only ``language``, which a location does not determine) and Tavily's
``country`` takes an English country name, not the ISO code: neither gets the location.

Domain rules are always applied to the hits here as well (a hint is not a guarantee), by
:func:`app.translate.server_tools.domain_allowed`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from app.config_sections import WebSearch
from app.translate.server_tools import SearchHit, domain_allowed

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"


class SearchUnavailable(Exception):
    def __init__(self, message: str, error_code: str = "unavailable") -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class Domains:
    allowed: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()


async def search(
    cfg: WebSearch, query: str, domains: Domains, location: dict[str, str] | None = None
) -> list[SearchHit]:
    if cfg.backend is None:
        raise SearchUnavailable(
            "web search is not set up on this gateway (web_search.backend in its config)"
        )
    try:
        async with asyncio.timeout(cfg.timeout):
            async with aiohttp.ClientSession(trust_env=True) as session:
                if cfg.backend == "brave":
                    hits = await _brave(session, cfg, query, domains, location)
                else:
                    hits = await _BACKENDS[cfg.backend](session, cfg, query, domains)
    except SearchUnavailable:
        raise
    except TimeoutError:
        raise SearchUnavailable(f"the {cfg.backend} search timed out ({cfg.timeout}s)") from None
    except (aiohttp.ClientError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SearchUnavailable(f"the {cfg.backend} search failed: {type(err).__name__}") from None
    kept = [h for h in hits if domain_allowed(h.url, domains.allowed, domains.blocked)]
    return kept[: cfg.max_results]


def _key(cfg: WebSearch) -> str:
    assert cfg.api_key_file is not None  # the config requires it for the hosted backends
    try:
        return Path(cfg.api_key_file).read_text().strip()
    except OSError as err:
        raise SearchUnavailable(f"web_search.api_key_file cannot be read: {err.strerror}") from None


async def _json(resp: aiohttp.ClientResponse, backend: str) -> Any:
    if resp.status == 429:
        raise SearchUnavailable(f"{backend} rate-limited the search", "too_many_requests")
    if resp.status >= 300:
        raise SearchUnavailable(f"{backend} answered HTTP {resp.status}")
    return await resp.json(content_type=None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def _searxng(
    session: aiohttp.ClientSession, cfg: WebSearch, query: str, domains: Domains
) -> list[SearchHit]:
    assert cfg.url is not None
    url = cfg.url.rstrip("/") + "/search"
    async with session.get(url, params={"q": query, "format": "json"}) as resp:
        body = await _json(resp, "searxng")
    return [
        SearchHit(
            _text(r.get("url")),
            _text(r.get("title")),
            _text(r.get("content")),
            _text(r.get("publishedDate")) or None,
        )
        for r in body.get("results") or []
        if isinstance(r, dict) and _text(r.get("url"))
    ]


def _site_hints(query: str, domains: Domains) -> str:
    if domains.allowed:
        query += " (" + " OR ".join(f"site:{d}" for d in domains.allowed) + ")"
    return query + "".join(f" -site:{d}" for d in domains.blocked)


async def _brave(
    session: aiohttp.ClientSession,
    cfg: WebSearch,
    query: str,
    domains: Domains,
    location: dict[str, str] | None = None,
) -> list[SearchHit]:
    headers = {"Accept": "application/json", "X-Subscription-Token": _key(cfg)}
    params = {"q": _site_hints(query, domains), "count": str(min(cfg.max_results * 2, 20))}
    country = (location or {}).get("country", "")
    if len(country) == 2 and country.isalpha():  # Brave's `country`: a 2-letter code, as ours
        params["country"] = country.upper()
    async with session.get(cfg.url or BRAVE_URL, params=params, headers=headers) as resp:
        body = await _json(resp, "brave")
    web = body.get("web") or {}
    return [
        SearchHit(
            _text(r.get("url")),
            _text(r.get("title")),
            _text(r.get("description")),
            _text(r.get("page_age")) or _text(r.get("age")) or None,
        )
        for r in web.get("results") or []
        if isinstance(r, dict) and _text(r.get("url"))
    ]


async def _tavily(
    session: aiohttp.ClientSession, cfg: WebSearch, query: str, domains: Domains
) -> list[SearchHit]:
    payload: dict[str, Any] = {"query": query, "max_results": cfg.max_results}
    if domains.allowed:
        payload["include_domains"] = list(domains.allowed)
    if domains.blocked:
        payload["exclude_domains"] = list(domains.blocked)
    headers = {"Authorization": f"Bearer {_key(cfg)}"}
    async with session.post(cfg.url or TAVILY_URL, json=payload, headers=headers) as resp:
        body = await _json(resp, "tavily")
    return [
        SearchHit(
            _text(r.get("url")),
            _text(r.get("title")),
            _text(r.get("content")),
            _text(r.get("published_date")) or None,
        )
        for r in body.get("results") or []
        if isinstance(r, dict) and _text(r.get("url"))
    ]


_BACKENDS = {"searxng": _searxng, "brave": _brave, "tavily": _tavily}
