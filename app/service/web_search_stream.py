"""The SSE side of the server-tool loop (app/service/web_search.py).

Contract: :class:`TurnStream` reads one streamed OCI turn through the answer translator and
hands out its blocks in pieces -- ``("start", block)``, ``("delta", delta)``, ``("stop",)`` --
as the chunks arrive, so the answer's text reaches the client token by token; calls of the
gateway's own functions (``web_search``, the tool search) are kept back whole for the loop to
run. :attr:`TurnStream.message` is the whole turn afterwards (blocks, stop reason, usage), and
the turn's tokens are accounted as any answer's. :class:`SearchStream` is the loop's SSE body:
``message_start`` at once, each block or piece re-indexed as it comes (``ping`` through the
waits), ``message_delta`` with the loop's usage; failures after the start end it with
``event: error``; the permit is released and the call finished exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from app.anthropic import sse
from app.errors import GatewayError, Overloaded, UpstreamKind, error_event
from app.observability import metrics as m
from app.oci.errors import broken_answer
from app.service.accounting import Call, account_usage, finish_call
from app.service.finish import OpenStreams, Reply, StreamBody
from app.translate import server_tools as st
from app.translate.stream_coherev2 import translator_for

if TYPE_CHECKING:
    from app.service.web_search import _Loop

log = logging.getLogger("app.service")


class TurnStream:
    """One streamed OCI turn as pieces of blocks, the calls of ``held`` functions kept back;
    :attr:`message` is the whole turn once :meth:`pieces` is done."""

    def __init__(self, reply: Reply, call: Call, held: set[str]) -> None:
        self.reply, self.call, self.held = reply, call, held
        self.message: dict[str, Any] = {}
        self._content: list[dict[str, Any]] = []
        self._block: dict[str, Any] = {}
        self._hold = False
        self._args = ""

    async def pieces(self) -> AsyncGenerator[tuple[Any, ...], None]:
        r, call = self.reply, self.call
        translator = translator_for(
            r.resolved.spec.format,
            message_id=r.message_id,
            model=r.model,
            estimated_input=r.estimate,
            stop_sequences=r.oci.stop_sequences,
        )
        timeouts = r.config.oci.timeouts
        events = r.answer.events(idle=timeouts.idle, ping_every=r.config.server.ping_interval)
        failed: str | None = None
        clock = time.perf_counter
        try:
            waiting = clock()
            async for batch in events:
                call.upstream_wait += clock() - waiting
                for event in batch or ():
                    for piece in self._parse(translator.feed(event)):
                        yield piece
                if translator.matched_stop is not None:
                    break
                waiting = clock()
            if not translator.finished:
                raise broken_answer(
                    "the OCI stream ended before the answer was complete", retryable=False
                )
            for piece in self._parse(translator.end_text() + translator.finish()):
                yield piece
            usage = translator.final_usage()
            account_usage(
                call,
                r.resolved,
                raw_estimate=r.raw,
                oci_usage=translator.usage,
                usage=usage,
                permit=r.permit,
                calibrator=r.calibrator,
            )
            self.message = {
                "type": "message",
                "content": self._content,
                "stop_reason": translator.stop_reason,
                "stop_sequence": translator.matched_stop,
                "usage": usage,
            }
        except GatewayError as err:
            failed = m.error_label(err.upstream_kind)
            raise
        except BaseException:
            failed = UpstreamKind.CANCELLED
            raise
        finally:
            await events.aclose()
            r.answer.close()
            r.attempt.end(failed, response_id=r.message_id, finish_reason=translator.finish_reason)

    def _parse(self, out: bytes) -> list[tuple[Any, ...]]:
        """The client's pieces among the translator's SSE frames (message frames dropped)."""
        pieces: list[tuple[Any, ...]] = []
        for frame in out.split(b"\n\n"):
            at = frame.find(b"data: ")
            if at < 0:
                continue
            ev = orjson.loads(frame[at + 6 :])
            t = ev["type"]
            if t == "content_block_start":
                cb = ev["content_block"]
                self._hold = cb.get("type") == "tool_use" and cb.get("name") in self.held
                self._block, self._args = dict(cb), ""
                if not self._hold:
                    pieces.append(("start", cb))
            elif t == "content_block_delta":
                d, b = ev["delta"], self._block
                if d["type"] == "input_json_delta":
                    self._args += d["partial_json"]
                else:  # text_delta, thinking_delta, signature_delta: the field it extends
                    field = d["type"].removesuffix("_delta")
                    b[field] = b.get(field, "") + d[field]
                if not self._hold:
                    pieces.append(("delta", d))
            elif t == "content_block_stop":
                if self._block.get("type") == "tool_use":
                    self._block["input"] = orjson.loads(self._args) if self._args.strip() else {}
                self._content.append(self._block)
                if not self._hold:
                    pieces.append(("stop",))
        return pieces


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
                if not isinstance(block, tuple):
                    yield st.block_events(index, block)
                    index += 1
                elif block[0] == "start":
                    payload = {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": block[1],
                    }
                    yield sse.event("content_block_start", payload)
                elif block[0] == "delta":
                    payload = {"type": "content_block_delta", "index": index, "delta": block[1]}
                    yield sse.event("content_block_delta", payload)
                else:
                    yield sse.block_stop(index)
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
