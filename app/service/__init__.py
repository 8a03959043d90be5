"""The Messages service: one request's orchestration, from raw body to answer.

Contract: this is the only package that knows every other one. The HTTP layer opens
:meth:`MessagesService.accounting` around each route, hands the service raw body bytes plus the
caller's key, and gets back JSON bytes or a :class:`~app.service.finish.StreamBody`; anything
that fails before the first byte is raised as a :class:`~app.errors.GatewayError`, and the
accounting turns every outcome, bugs included, into the answer and the request's record.
Within a stream, failures become an ``event: error`` and the stream closes cleanly.

Per request (:meth:`MessagesService.messages`): parse within the limits (400 naming the field,
:mod:`.parse`), resolve the model (404 listing valid names) and the key's permission, translate,
apply the routing rules (:mod:`.routing`: may pick another model, then translated again),
check the prompt against the model's context window (400 ``prompt is too long: N tokens > M
maximum``), check the caller's spend budgets (429 with ``x-should-retry: false`` when one is
spent, :mod:`app.security.budgets`), take the key's permit (429), then make the attempts over
the model's endpoints (:mod:`.upstream`, retrying only while nothing was sent) and finish the
answer (:mod:`.finish`), counting tokens, times, overhead and cost (:mod:`.accounting`).

Jobs, one module each: :mod:`.parse` (body -> request model, limits), :mod:`.media` (url
images and PDFs fetched as base64), :mod:`.upstream` (targets, attempts, spans; refused
parameters in :mod:`.param_memory`, retirement notices in :mod:`.lifecycle`), :mod:`.finish`
(JSON and stream answers), :mod:`.web_search` (the server-tool loop: ``web_search``, searches
in :mod:`.search_backends`, tool search over ``defer_loading`` tools in :mod:`.tool_search`,
streamed turns in :mod:`.web_search_stream`), :mod:`.accounting` (the per-request record:
metrics, access log, calibrator feed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.anthropic.conversation_cache import MEMO, ConversationCache
from app.anthropic.models import (
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)
from app.catalog import Catalog, Resolved
from app.config import GatewayConfig
from app.errors import PermissionDenied, prompt_too_long
from app.observability import metrics as m
from app.oci.client import OciClient
from app.security.budgets import Budgets
from app.security.limits import Limiter
from app.security.policy import Principal
from app.service import tool_search, web_search
from app.service.accounting import Accounting, Call, new_request_id
from app.service.finish import OpenStreams, Reply, StreamBody, json_answer
from app.service.lifecycle import RetirementNotices
from app.service.media import inline_media
from app.service.param_memory import ParamMemory
from app.service.parse import parse
from app.service.routing import route
from app.service.upstream import Circuits, attempt_upstream
from app.translate.common import mint_id
from app.translate.server_tools import history, model_request, web_search_tool
from app.translate.to_oci import to_oci
from app.translate.tokens import Calibrator, raw_estimate

__all__ = ["Accounting", "Call", "MessagesService", "StreamBody"]

log = logging.getLogger("app.service")


def warn_unpriced(config: GatewayConfig) -> None:
    """Budgets without prices never bite: say so at load time. A model is unpriced when its
    entry sets ``price: null``, or serves a dedicated endpoint or an OCI id the shipped list
    (app/catalog/list_prices.py) does not know, and sets no ``price``."""
    budgeted = any(t.budget for t in config.teams.values()) or bool(
        config.budgets.default_user or config.budgets.users
    )
    unpriced = sorted(name for name, spec in config.models.items() if spec.unit_price is None)
    if unpriced:
        log.log(
            logging.WARNING if budgeted else logging.INFO,
            "models without models.<name>.price cost 0 USD (budgets cannot limit them): %s",
            ", ".join(unpriced),
        )


def _has_url_sources(req: MessagesRequest) -> bool:
    """Whether any image/document block (also inside a tool result) has a url source: the
    walk over the parsed blocks costs ~0.05 ms for a 1 MB turn, a bytes search of the body
    ~0.7 ms (``"`` is everywhere in JSON, so the substring search barely skips)."""
    for msg in req.messages:
        if isinstance(msg.content, str) or MEMO in msg.__dict__:
            continue  # a kept conversation's message has none (conversation_cache.shareable)
        for block in msg.content:
            kind = type(block)
            if kind is TextBlock or kind is ToolUseBlock:
                continue  # most blocks of an agent's turn: no call for them (0.2 -> 0.05 ms/MB)
            if isinstance(block, ToolResultBlock):
                if isinstance(block.content, list) and any(_url_source(i) for i in block.content):
                    return True
            elif _url_source(block):
                return True
    return False


def _url_source(block: object) -> bool:
    if isinstance(block, ImageBlock):
        return isinstance(block.source, UrlSource)
    return isinstance(block, DocumentBlock) and block.source.get("type") == "url"


class MessagesService:
    """Process-wide state built in the lifespan: config, catalog, OCI client, limits, and the
    open streams; one instance serves every request."""

    def __init__(
        self,
        config: GatewayConfig,
        client: OciClient,
        limiter: Limiter,
        region: str | None,
        budgets: Budgets | None = None,
    ) -> None:
        self.config = config
        self.catalog = Catalog(config)
        self.client = client
        self.limiter = limiter
        if budgets is None:
            from app.security.spend_store import LocalStore

            budgets = Budgets(LocalStore(config.budgets.history_days))
        #: spend budgets and the usage data (in this process, or shared through Redis)
        self.budgets = budgets
        warn_unpriced(config)
        self.calibrator = Calibrator()
        self.region = region or config.oci.region or ""
        self.streams = OpenStreams()
        #: what OCI taught this process: refused parameters, retirement notices
        self.params = ParamMemory()
        self.notices = RetirementNotices()
        #: this worker's circuit breakers over the upstream targets (and the spreading draw)
        self.circuits = Circuits()
        #: recent conversations, decoded: a turn decodes only its new messages
        hit, miss = m.CONVERSATION_CACHE.labels("hit"), m.CONVERSATION_CACHE.labels("miss")
        self.conversations = ConversationCache(
            config.server.conversation_cache_mb << 20,
            on_result=lambda found: (hit if found else miss).inc(),
            on_size=m.CONVERSATION_CACHE_BYTES.set,
        )

    @property
    def stream_tasks(self) -> set[asyncio.Task[Any]]:
        return self.streams.tasks

    def abort_streams(self) -> None:
        """End every open stream with ``event: error`` (the drain period is over)."""
        self.streams.abort()

    def swap_config(self, config: GatewayConfig) -> None:
        """Use a new config for new requests; in-flight ones keep the objects they hold."""
        self.config = config
        self.catalog = Catalog(config)
        self.region = config.oci.region or self.region
        self.conversations.resize(config.server.conversation_cache_mb << 20)
        warn_unpriced(config)

    def accounting(self, route: str) -> Accounting:
        """The record of one request on ``route``, opened as it arrives (``async with``)."""
        return Accounting(Call(new_request_id(), route, time.perf_counter()))

    def resolve(self, model: str, key: Principal | None) -> Resolved:
        resolved = self.catalog.resolve(model)
        if key is not None and not key.allows(resolved.name):
            raise PermissionDenied(f"{key.describe()} may not use model {resolved.name!r}")
        return resolved

    def count_tokens(self, body: bytes, key: Principal | None, call: Call) -> int:
        config = self.config
        req = parse(body, CountTokensRequest, config.server, self.conversations)
        resolved = call.resolved = self.resolve(req.model, key)
        kind = tool_search.search_kind(req.tools, config.tool_search.offer)
        if resolved.spec.has("tools") and (web_search_tool(req) is not None or kind):
            loop = web_search.first_turn_tools(req, config)  # what the loop's first turn sends
            req = model_request(req, history(req.messages), first=True, exhausted=False, tools=loop)
        elif req.tools:  # deferred tools not loaded yet are not sent (tool search)
            req = tool_search.without_deferred(req)
        oci = to_oci(req, resolved, config.oci.compartment_id)
        return self.calibrator.estimate(resolved.name, raw_estimate(oci.body))

    async def messages(
        self, body: bytes, key: Principal | None, call: Call, hint: str | None = None
    ) -> bytes | StreamBody:
        config = self.config  # one config for the whole request, even across a reload
        req = parse(body, MessagesRequest, config.server, self.conversations)
        resolved = call.resolved = self.resolve(req.model, key)
        call.stream = req.stream
        # the bytes are not needed past this point: an in-flight request holds only its model
        # and its ChatDetails (docs/design.md, "Long conversations")
        del body
        if _has_url_sources(req):  # url images/PDFs become base64 before translation
            t0 = time.perf_counter()
            await inline_media(req, resolved.spec, config.media)
            # waiting for a media server is not the gateway's own time (gateway_overhead)
            call.upstream_wait += time.perf_counter() - t0
        if resolved.spec.has("tools") and (
            web_search_tool(req) is not None
            or tool_search.search_kind(req.tools, config.tool_search.offer) is not None
        ):  # the gateway runs web_search / tool search itself (a server-tool loop)
            return await web_search.answer(self, req, resolved, key, call, config)
        if req.tools:  # deferred tools not loaded yet are not sent (tool search)
            req = tool_search.without_deferred(req)
        oci = to_oci(req, resolved, config.oci.compartment_id)
        raw = raw_estimate(oci.body)
        estimate = self.calibrator.estimate(resolved.name, raw)
        routed = route(config.routing, req, hint, resolved, estimate, key, self.catalog)
        if routed is not None:  # a routing rule picked the model (app/service/routing.py)
            call.route_rule, _, resolved = routed
            call.resolved = resolved
            oci = to_oci(req, resolved, config.oci.compartment_id)
            raw = raw_estimate(oci.body)
            estimate = self.calibrator.estimate(resolved.name, raw)
        window = resolved.spec.context_window
        if estimate > window:
            raise prompt_too_long(estimate, window)
        # the request model is not needed past the translation: a long turn in flight holds
        # only its ChatDetails (and their serialised bytes), not the ~1000 block models too
        stream, model = req.stream, req.model
        del req
        # before the OCI call, on the spend so far; this request's cost is added at its end
        ticket = call.ticket = await self.budgets.admit(key, config.budgets)
        call.headers.update(ticket.headers)
        permit = await self.limiter.acquire(key, stream=stream)
        try:
            attempt = await attempt_upstream(
                self.client,
                config,
                self.region,
                oci,
                resolved,
                call,
                estimate=estimate,
                params=self.params,
                notices=self.notices,
                circuits=self.circuits,
            )
        except BaseException:
            permit.release()
            raise
        reply = Reply(
            attempt=attempt,
            oci=oci,
            resolved=resolved,
            config=config,
            calibrator=self.calibrator,
            permit=permit,
            model=model,
            message_id=mint_id("msg_"),
            estimate=estimate,
            raw=raw,
        )
        if stream:
            return StreamBody(reply, call, self.streams)
        try:
            return json_answer(reply, call)
        finally:
            permit.release()
