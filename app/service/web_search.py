"""The ``web_search`` server tool, run by the gateway: a server-side tool loop over OCI.

Contract: :func:`answer` serves a Messages request that carries Anthropic's ``web_search``
server tool (for a model with the ``tools`` capability). Each turn is one non-streaming OCI
call of :func:`app.translate.server_tools.model_request` (the tool offered as a function
``web_search(query)``). When the model calls it, the gateway runs the search
(:mod:`.search_backends`), the client gets a ``server_tool_use`` block and a
``web_search_tool_result`` block (results, or a ``web_search_tool_result_error``), the model
gets the results as the tool result, and the next turn follows; the loop ends with the first
answer that calls no search, or one that also calls a client tool (returned as is, with
``stop_reason: tool_use``). Bounds: ``max_uses`` searches (the tool's, else
``web_search.max_uses``; one more call is answered ``max_uses_exceeded`` and the next turn may
not call tools), ``max_uses + 2`` turns, and ``web_search.deadline`` seconds for the whole loop
(searches after it are answered ``unavailable``). A search that fails -- no backend configured,
backend down, timeout -- is an error result the model then explains, never an HTTP error.

Answers: JSON, the concatenation of every turn's blocks, usage summed over the turns with
``server_tool_use.web_search_requests``; or SSE, ``message_start`` at once and each block as
its turn completes (with ``ping`` through the waits). Failures of the first turn are HTTP errors
as for any request; later ones end the stream with ``event: error`` (JSON: the HTTP error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from app.anthropic.models import Message, MessagesRequest, Tool, blocks
from app.catalog import Resolved
from app.config import GatewayConfig
from app.errors import prompt_too_long
from app.observability import metrics as m
from app.security.limits import Permit
from app.service import tool_search as ts
from app.service.accounting import Call
from app.service.finish import Reply, StreamBody, json_answer
from app.service.search_backends import Domains, SearchUnavailable, search
from app.service.upstream import attempt_upstream
from app.service.web_search_stream import SearchStream, TurnStream
from app.translate import server_tools as st
from app.translate.common import mint_id
from app.translate.to_oci import to_oci
from app.translate.tokens import raw_estimate

if TYPE_CHECKING:
    from app.service import MessagesService

log = logging.getLogger("app.service")

_STARTED = "started"
WEB, TOOLS = "web_search", "tool_search"


class _Loop:
    """One request's server-tool loop; :meth:`run` yields blocks (JSON) or pieces of blocks
    (``("start", block)``, ``("delta", delta)``, ``("stop",)``: a streamed turn) as they come."""

    def __init__(
        self,
        svc: MessagesService,
        req: MessagesRequest,
        resolved: Resolved,
        call: Call,
        config: GatewayConfig,
        permit: Permit,
        message_id: str,
    ) -> None:
        self.svc, self.req, self.resolved, self.call, self.config = svc, req, resolved, call, config
        self.permit, self.message_id = permit, message_id
        web = st.web_search_tool(req)
        #: the functions the gateway answers itself: name -> WEB | TOOLS
        self.functions: dict[str, str] = {st.NAME: WEB} if web is not None else {}
        self.opts = st.options(web, config.web_search.max_uses) if web is not None else None
        if self.opts is not None:
            self.domains = Domains(self.opts.allowed, self.opts.blocked)
            self.location = st.user_location(web) if web is not None else None
        self.kind = ts.search_kind(req.tools, config.tool_search.offer)
        self.search_name = ts.function_name(req.tools, config.tool_search.name)
        if self.kind is not None:
            self.functions[self.search_name] = TOOLS
            self.searcher = ts.Searcher(req.tools, self.kind, config.tool_search.max_results)
        self.loaded = ts.referenced(req.messages)
        self.deadline = time.monotonic() + config.web_search.deadline
        self.usage: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0}
        self.searches = self.tool_searches = 0
        self.first_input = 0
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None

    def tools(self) -> list[Tool] | None:
        return self.turn_tools(self.req, self.config, self.loaded)

    @staticmethod
    def turn_tools(req: Any, config: GatewayConfig, loaded: set[str]) -> list[Tool] | None:
        """A turn's tools: deferred ones only once loaded, the search as a function."""
        tools = ts.visible_tools(req.tools, loaded)
        kind = ts.search_kind(req.tools, config.tool_search.offer)
        if kind is None or tools is None:
            return tools
        fn = ts.function(ts.function_name(req.tools, config.tool_search.name), kind)
        if ts.search_tool(tools) is None:
            return [*tools, fn]
        return [fn if ts.server_search(t) is not None else t for t in tools]

    def _add_usage(self, usage: dict[str, Any]) -> None:
        for key, value in usage.items():
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value

    async def _attempt(self, messages: list[Message], *, first: bool, exhausted: bool) -> Reply:
        svc, resolved, config, call = self.svc, self.resolved, self.config, self.call
        turn = st.model_request(
            self.req, messages, first=first, exhausted=exhausted, tools=self.tools()
        )
        if self.req.stream:  # streamed turns: the answer's text reaches the client as it comes
            turn = turn.replace(stream=True)
        oci = to_oci(turn, resolved, config.oci.compartment_id)
        raw = raw_estimate(oci.body)
        estimate = svc.calibrator.estimate(resolved.name, raw)
        if estimate > resolved.spec.context_window:
            raise prompt_too_long(estimate, resolved.spec.context_window)
        attempt = await attempt_upstream(
            svc.client,
            config,
            svc.region,
            oci,
            resolved,
            call,
            estimate=estimate,
            params=svc.params,
            notices=svc.notices,
            circuits=svc.circuits,
        )
        return Reply(
            attempt=attempt,
            oci=oci,
            resolved=resolved,
            config=config,
            calibrator=svc.calibrator,
            permit=self.permit,
            model=self.req.model,
            message_id=self.message_id,
            estimate=estimate,
            raw=raw,
        )

    async def _turn(self, reply: Reply) -> AsyncGenerator[Any, None]:
        """A JSON turn yields its message; a streamed one its pieces (except the gateway's own
        function calls, kept back) and then the message those pieces make."""
        if not self.req.stream:
            message = orjson.loads(json_answer(reply, self.call))
            self._add_usage(message["usage"])
            yield message
            return
        turn = TurnStream(reply, self.call, set(self.functions))
        async for piece in turn.pieces():
            yield piece
        self._add_usage(turn.message["usage"])
        yield turn.message

    async def _search(self, query: str) -> dict[str, Any] | list[st.SearchHit]:
        """The hits, or the error block's ``error_code`` in a dict."""
        if not query:
            return {"error_code": "invalid_input"}
        if time.monotonic() >= self.deadline:
            return {"error_code": "unavailable", "message": "the search loop's deadline passed"}
        if self.config.web_search.backend is not None:  # counted: a search was sent
            self.searches += 1
        t0 = time.perf_counter()
        try:
            return await search(self.config.web_search, query, self.domains, self.location)
        except SearchUnavailable as err:
            log.warning(
                "web search failed: %s",
                err,
                extra={"request_id": self.call.request_id, "error_type": err.error_code},
            )
            return {"error_code": err.error_code, "message": str(err)}
        finally:  # the backend's time is not the gateway's own (overhead metric)
            self.call.upstream_wait += time.perf_counter() - t0

    async def _web(self, block_id: str, query: str) -> tuple[dict[str, Any], str]:
        """The client's result block and the model's text for one web search call."""
        assert self.opts is not None
        if self.searches >= self.opts.max_uses:
            self.exhausted = True
            found: Any = {"error_code": "max_uses_exceeded"}
        else:
            found = await self._search(query)
        backend = self.config.web_search.backend or "none"
        if isinstance(found, dict):
            m.SERVER_TOOL_CALLS.labels(WEB, backend, found["error_code"]).inc()
            text = f"Web search error: {found['error_code']}. {found.get('message', '')}"
            if found["error_code"] == "max_uses_exceeded":
                text += " No more searches: answer with what you have."
            return st.search_error(block_id, found["error_code"]), text
        m.SERVER_TOOL_CALLS.labels(WEB, backend, "ok" if found else "empty").inc()
        return st.search_result(block_id, found), st.results_text(found)

    def _tool_search(self, block_id: str, query: str) -> tuple[dict[str, Any], str]:
        assert self.kind is not None
        if self.tool_searches >= self.config.tool_search.max_uses:
            code, message = "too_many_requests", "no more tool searches in this request"
        else:
            self.tool_searches += 1
            try:
                names = self.searcher.search(query)
            except ts.SearchError as err:
                code, message = err.error_code, str(err)
            else:
                self.loaded.update(names)  # sent inline from the next turn on
                m.SERVER_TOOL_CALLS.labels(TOOLS, self.kind, "ok" if names else "empty").inc()
                return ts.result_block(block_id, names), ts.result_text(names)
        m.SERVER_TOOL_CALLS.labels(TOOLS, self.kind, code).inc()
        return ts.error_block(block_id, code, message), f"Tool search error: {code}. {message}"

    async def run(self) -> AsyncGenerator[Any, None]:
        messages = st.history(self.req.messages)
        max_turns = 2 + (self.opts.max_uses if self.opts else 0)
        max_turns += self.config.tool_search.max_uses if self.kind else 0
        self.exhausted = False
        for n in range(max_turns):
            reply = await self._attempt(messages, first=n == 0, exhausted=self.exhausted)
            if n == 0 and self.req.stream:  # OCI answered: later failures are error events
                self.first_input = reply.estimate
                yield _STARTED
            message: dict[str, Any] = {}
            turn = self._turn(reply)
            try:
                async for item in turn:
                    if isinstance(item, dict) and item.get("type") == "message":
                        message = item
                    else:
                        yield item
            finally:
                await turn.aclose()
            if n == 0 and not self.req.stream:
                self.first_input = message["usage"].get("input_tokens", 0)
                yield _STARTED
            content = message["content"]
            calls = [b for b in content if b["type"] == "tool_use" and b["name"] in self.functions]
            client_tools = any(
                b["type"] == "tool_use" and b["name"] not in self.functions for b in content
            )
            self.stop_reason = message["stop_reason"]
            self.stop_sequence = message.get("stop_sequence")
            assistant: list[dict[str, Any]] = []
            results: list[dict[str, Any]] = []
            for block in content:  # in order (a streamed turn sent its other blocks already)
                if not any(block is c for c in calls):
                    assistant.append(block)
                    if not self.req.stream:
                        yield block
                    continue
                block_id = mint_id("srvtoolu_")
                query = st.query_of(block)
                yield st.server_tool_use(block_id, query) | {"name": block["name"]}
                assistant.append({**block, "id": block_id})
                if self.functions[block["name"]] == WEB:
                    result, text = await self._web(block_id, query)
                else:
                    result, text = self._tool_search(block_id, query)
                yield result
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": block_id,
                        "content": [{"type": "text", "text": text.strip()}],
                    }
                )
            if not calls:
                return
            if client_tools:
                return  # the client runs its tools; the searches are in its history now
            messages = [
                *messages,
                Message(role="assistant", content=blocks(assistant)),
                Message(role="user", content=blocks(results)),
            ]
            if n + 2 == max_turns:
                self.exhausted = True  # the last turn: the model must answer now
        # only reached if the last allowed turn still searched: its blocks were sent
        self.stop_reason = "end_turn"

    def final_usage(self) -> dict[str, Any]:
        usage = dict(self.usage)
        usage["server_tool_use"] = {"web_search_requests": self.searches}
        if self.kind is not None:  # Anthropic counts tool search as tool_search_requests
            usage["server_tool_use"]["tool_search_requests"] = self.tool_searches
        return usage


def first_turn_tools(req: MessagesRequest | Any, config: GatewayConfig) -> list[Tool] | None:
    """The tools the loop's first turn offers (count_tokens counts that request)."""
    return _Loop.turn_tools(req, config, ts.referenced(req.messages))


async def answer(
    svc: MessagesService,
    req: MessagesRequest,
    resolved: Resolved,
    key: Any,
    call: Call,
    config: GatewayConfig,
) -> bytes | StreamBody:
    permit = await svc.limiter.acquire(key, stream=req.stream)
    loop = _Loop(svc, req, resolved, call, config, permit, mint_id("msg_"))
    gen = loop.run()
    try:
        first = await gen.__anext__()  # the first turn: its failures are HTTP errors
        assert first == _STARTED
    except BaseException:
        await gen.aclose()
        permit.release()
        raise
    if req.stream:
        return SearchStream(loop, gen, svc.streams)
    try:
        content = [block async for block in gen]
    finally:
        permit.release()
    return _finish_json(loop, content)


def _finish_json(loop: _Loop, content: list[dict[str, Any]]) -> bytes:
    usage = loop.final_usage()
    loop.call.usage = usage
    loop.call.stop_reason = loop.stop_reason
    return orjson.dumps(
        {
            "id": loop.message_id,
            "type": "message",
            "role": "assistant",
            "model": loop.req.model,
            "content": content,
            "stop_reason": loop.stop_reason,
            "stop_sequence": loop.stop_sequence,
            "usage": usage,
        }
    )
