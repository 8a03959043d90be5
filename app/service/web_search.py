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

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from app.anthropic import sse
from app.anthropic.models import Message, MessagesRequest
from app.catalog import Resolved
from app.config import GatewayConfig
from app.errors import GatewayError, Overloaded, UpstreamKind, error_event, prompt_too_long
from app.security.limits import Permit
from app.service.accounting import Call, finish_call
from app.service.finish import OpenStreams, Reply, StreamBody, json_answer
from app.service.search_backends import Domains, SearchUnavailable, search
from app.service.upstream import attempt_upstream
from app.translate import server_tools as st
from app.translate.common import mint_id
from app.translate.to_oci import to_oci
from app.translate.tokens import raw_estimate

if TYPE_CHECKING:
    from app.service import MessagesService

log = logging.getLogger("app.service")

_STARTED = "started"


class _Loop:
    """One request's search loop; :meth:`run` yields blocks as the turns complete."""

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
        tool = st.web_search_tool(req)
        assert tool is not None
        self.svc, self.req, self.resolved, self.call, self.config = svc, req, resolved, call, config
        self.permit, self.message_id = permit, message_id
        self.opts = st.options(tool, config.web_search.max_uses)
        self.domains = Domains(self.opts.allowed, self.opts.blocked)
        self.deadline = time.monotonic() + config.web_search.deadline
        self.usage: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0}
        self.searches = 0
        self.first_input = 0
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None

    async def _turn(self, messages: list[Message], *, first: bool, exhausted: bool) -> Any:
        svc, resolved, config, call = self.svc, self.resolved, self.config, self.call
        turn = st.model_request(self.req, messages, first=first, exhausted=exhausted)
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
        reply = Reply(
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
        message = orjson.loads(json_answer(reply, call))
        for key, value in message["usage"].items():
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value
        return message

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
            return await search(self.config.web_search, query, self.domains)
        except SearchUnavailable as err:
            log.warning(
                "web search failed: %s",
                err,
                extra={"request_id": self.call.request_id, "error_type": err.error_code},
            )
            return {"error_code": err.error_code, "message": str(err)}
        finally:  # the backend's time is not the gateway's own (overhead metric)
            self.call.upstream_wait += time.perf_counter() - t0

    async def run(self) -> AsyncGenerator[Any, None]:
        messages = st.history(self.req.messages)
        max_turns = self.opts.max_uses + 2
        exhausted = False
        for n in range(max_turns):
            message = await self._turn(messages, first=n == 0, exhausted=exhausted)
            if n == 0:
                self.first_input = message["usage"].get("input_tokens", 0)
                yield _STARTED
            content = message["content"]
            calls = [b for b in content if b["type"] == "tool_use" and b["name"] == st.NAME]
            client_tools = any(b["type"] == "tool_use" and b["name"] != st.NAME for b in content)
            self.stop_reason = message["stop_reason"]
            self.stop_sequence = message.get("stop_sequence")
            if not calls:
                for block in content:
                    yield block
                return
            assistant: list[dict[str, Any]] = []
            results: list[dict[str, Any]] = []
            for block in content:
                if not any(block is c for c in calls):
                    assistant.append(block)
                    yield block
                    continue
                block_id = mint_id("srvtoolu_")
                query = st.query_of(block)
                yield st.server_tool_use(block_id, query)
                assistant.append({**block, "id": block_id})
                if self.searches >= self.opts.max_uses:
                    exhausted = True
                    found: Any = {"error_code": "max_uses_exceeded"}
                else:
                    found = await self._search(query)
                if isinstance(found, dict):
                    yield st.search_error(block_id, found["error_code"])
                    text = f"Web search error: {found['error_code']}. {found.get('message', '')}"
                    if found["error_code"] == "max_uses_exceeded":
                        text += " No more searches: answer with what you have."
                else:
                    yield st.search_result(block_id, found)
                    text = st.results_text(found)
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": block_id,
                        "content": [{"type": "text", "text": text.strip()}],
                    }
                )
            if client_tools:
                return  # the client runs its tools; the searches are in its history now
            messages = [
                *messages,
                Message(role="assistant", content=assistant),
                Message(role="user", content=results),
            ]
            if n + 2 == max_turns:
                exhausted = True  # the last turn: the model must answer now
        # only reached if the last allowed turn still searched: its blocks were sent
        self.stop_reason = "end_turn"

    def final_usage(self) -> dict[str, Any]:
        usage = dict(self.usage)
        usage["server_tool_use"] = {"web_search_requests": self.searches}
        return usage


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


class SearchStream(StreamBody):
    """The SSE body of a search loop (the module docstring)."""

    __slots__ = ("_done", "_loop", "_pending", "_sse", "_turns")

    def __init__(self, loop: _Loop, turns: AsyncGenerator[Any, None], streams: OpenStreams) -> None:
        self._call = loop.call
        self._loop = loop
        self._turns = turns
        self._done = False
        #: the turn being awaited (a task, so that pings can go out meanwhile)
        self._pending: asyncio.Task[Any] | None = None
        self._sse = self._events(streams)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._sse

    async def aclose(self) -> None:
        try:
            await self._sse.aclose()
        finally:
            await self._cleanup(499)

    async def _cleanup(self, status: int | None) -> None:
        if self._done:
            return
        self._done = True
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.wait({pending})  # the generator must stop running before aclose
        await self._turns.aclose()
        self._loop.permit.release()
        if status is not None:
            self._call.status = status
        finish_call(self._call)

    async def _events(self, streams: OpenStreams) -> AsyncGenerator[bytes, None]:
        loop, call = self._loop, self._call
        task = asyncio.current_task()
        if task is not None:
            streams.tasks.add(task)
        status: int | None = None
        index = 0
        try:
            yield st.message_start(loop.message_id, loop.req.model, loop.first_input)
            while True:
                if self._pending is None:
                    self._pending = asyncio.ensure_future(self._turns.__anext__())
                fut = self._pending
                done, _ = await asyncio.wait({fut}, timeout=loop.config.server.ping_interval)
                if not done:
                    yield sse.PING
                    continue
                self._pending = None
                try:
                    block = fut.result()
                except StopAsyncIteration:
                    break
                yield st.block_events(index, block)
                index += 1
            usage = loop.final_usage()
            call.usage, call.stop_reason = usage, loop.stop_reason
            yield st.message_end(loop.stop_reason, loop.stop_sequence, usage)
        except GatewayError as err:
            call.error_type = err.upstream_kind or err.error_type
            yield error_event(err)
        except asyncio.CancelledError:
            if streams.aborting and task is not None and task.cancelling():
                task.uncancel()
                call.error_type = UpstreamKind.SHUTDOWN
                yield error_event(Overloaded("the gateway is restarting; please retry"))
                return
            status = 499
            raise
        except GeneratorExit:
            status = 499
            raise
        except Exception as exc:  # a bug: end the stream cleanly
            log.error(
                "web search stream failed",
                exc_info=exc,
                extra={"request_id": call.request_id, "error_class": type(exc).__name__},
            )
            yield error_event(GatewayError("the gateway failed while running web search"))
        finally:
            if task is not None:
                streams.tasks.discard(task)
            await self._cleanup(status)
