"""Finishing an answer OCI started: the JSON message, or the SSE stream, and its accounting.

Contract:
- :func:`json_answer` translates a whole non-streaming answer into the Anthropic message and
  returns its JSON bytes, having counted its tokens. Any failure (an answer shape nobody foresaw
  included) ends the attempt's span as failed and propagates, for the route's accounting to
  turn into a 500.
- :class:`StreamBody` is the SSE body of a streaming answer. Iterating it pumps OCI's events
  through :class:`~app.translate.stream.StreamTranslator`, with a ``ping`` through every long
  upstream silence. Every failure after the first byte becomes one ``event: error`` and a clean
  end; a shutdown (:meth:`OpenStreams.abort`) ends it with ``overloaded_error``; a client that
  leaves cancels it. However it ends, the upstream connection is closed, the key's permit
  released, the span ended and the call finished, exactly once; ``aclose()`` does all that
  even when iteration never began (an async generator that never started runs no ``finally``).
- Time spent waiting for OCI's chunks and for the client to take the bytes is added to the
  call's ``upstream_wait`` / ``client_wait``, so the overhead metric is the gateway's own time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from app.anthropic import sse
from app.catalog import Resolved
from app.config import GatewayConfig
from app.errors import GatewayError, Overloaded, UpstreamKind, error_event
from app.observability import metrics as m
from app.observability import tracing
from app.oci.client import UpstreamAnswer
from app.oci.errors import broken_answer
from app.security.limits import Permit
from app.service.accounting import Call, account_usage, finish_call
from app.service.upstream import Attempt
from app.translate.from_oci import message_from_oci
from app.translate.request import OciRequest
from app.translate.stream_coherev2 import translator_for
from app.translate.tokens import Calibrator

log = logging.getLogger("app.service")


@dataclass(slots=True)
class Reply:
    """An answer OCI started, with what finishing it needs (all fixed when the request began)."""

    attempt: Attempt
    oci: OciRequest
    resolved: Resolved
    config: GatewayConfig
    calibrator: Calibrator
    permit: Permit
    model: str  #: the model string the client sent, echoed back in the message
    message_id: str
    estimate: int  #: calibrated prompt estimate (message_start usage until OCI reports)
    raw: int  #: uncalibrated estimate, to teach the calibrator once OCI reports
    started: bool = False

    @property
    def answer(self) -> UpstreamAnswer:
        assert self.attempt.answer is not None
        return self.attempt.answer


def json_answer(r: Reply, call: Call) -> bytes:
    attempt = r.attempt
    result = attempt.result
    assert result is not None
    try:
        message = message_from_oci(
            result,
            model=r.model,
            message_id=r.message_id,
            estimated_input=r.estimate,
            stop_sequences=r.oci.stop_sequences,
        )
        chat = result.get("chatResponse")
        account_usage(
            call,
            r.resolved,
            raw_estimate=r.raw,
            oci_usage=_oci_usage(chat),
            usage=message["usage"],
            permit=r.permit,
            calibrator=r.calibrator,
        )
        call.stop_reason = message["stop_reason"]
        body = orjson.dumps(message)
        if r.config.observability.record_content:
            tracing.record_content(
                attempt.span, "gen_ai.output.messages", orjson.dumps(message["content"]).decode()
            )
    except BaseException:
        attempt.end(UpstreamKind.OTHER)
        raise
    attempt.end(response_id=r.message_id, finish_reason=_finish_of(chat), usage=call.usage)
    return body


def _oci_usage(chat: Any) -> Any:
    if not isinstance(chat, dict):
        return None
    usage = chat.get("usage")
    choices = chat.get("choices")
    if usage is None and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        usage = choices[0].get("usage")
    return usage


def _finish_of(chat: Any) -> str | None:
    if not isinstance(chat, dict):
        return None
    if chat.get("apiFormat") in ("COHERE", "COHEREV2"):
        finish = chat.get("finishReason")
    else:
        choices = chat.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        finish = first.get("finishReason") if isinstance(first, dict) else None
    return finish if isinstance(finish, str) else None


class OpenStreams:
    """The tasks serving open streams, so a shutdown can end each with an error event."""

    __slots__ = ("aborting", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.aborting = False

    def abort(self) -> None:
        """End every open stream with ``event: error`` (the drain period is over)."""
        self.aborting = True
        for task in list(self.tasks):
            task.cancel("gateway shutting down")


class StreamBody:
    """The SSE body of one answer (see the module docstring)."""

    __slots__ = ("_call", "_gen", "_reply")

    def __init__(self, reply: Reply, call: Call, streams: OpenStreams) -> None:
        self._reply = reply
        self._call = call
        self._gen: AsyncGenerator[bytes, None] = _stream(reply, call, streams)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen

    async def aclose(self) -> None:
        try:
            await self._gen.aclose()
        finally:
            self._abandon()

    def _abandon(self) -> None:
        """Dropped before its stream started (the client left at once): free what ``_stream``
        would have freed."""
        r, call = self._reply, self._call
        if r.started:
            return
        r.started = True
        r.answer.close()
        r.permit.release()
        r.attempt.end(UpstreamKind.CANCELLED)
        call.status = 499  # nginx's "client closed request", for the access log and metrics
        call.error_type = UpstreamKind.CANCELLED
        finish_call(call)


async def _stream(r: Reply, call: Call, streams: OpenStreams) -> AsyncGenerator[bytes, None]:
    attempt, resolved, config = r.attempt, r.resolved, r.config
    translator = translator_for(
        resolved.spec.format,
        message_id=r.message_id,
        model=r.model,
        estimated_input=r.estimate,
        stop_sequences=r.oci.stop_sequences,
        transcript=[] if config.observability.record_content else None,
    )
    events = r.answer.events(idle=config.oci.timeouts.idle, ping_every=config.server.ping_interval)
    first_chunk: float | None = None
    failed: str | None = None  # the kind, once the stream failed
    clock = time.perf_counter
    waiting: float | None = None  # since when this stream waits for OCI
    task = asyncio.current_task()
    # from here on the finally below frees everything; before, StreamBody._abandon would
    gauge = m.ACTIVE_STREAMS.labels(resolved.name)
    gauge.inc()
    if task is not None:
        streams.tasks.add(task)
    r.started = True
    try:
        t = clock()
        yield translator.start()
        call.client_wait += clock() - t
        waiting = clock()
        async for batch in events:
            now = clock()
            call.upstream_wait += now - waiting
            waiting = None
            if batch is None:
                yield sse.PING
                call.client_wait += clock() - now
                waiting = clock()
                continue
            if first_chunk is None:
                first_chunk = now - attempt.t_sent
                m.TIME_TO_FIRST_CHUNK.labels(*attempt.labels).observe(first_chunk)
            out = b""
            for event in batch:
                out += translator.feed(event)
            if out:
                if call.ttft is None and translator.produced_content:
                    call.ttft = clock() - call.t0
                    m.TIME_TO_FIRST_TOKEN.labels(resolved.name).observe(call.ttft)
                t = clock()
                yield out
                call.client_wait += clock() - t
            if translator.matched_stop is not None:
                break  # the gateway's own stop sequence: stop paying for tokens
            waiting = clock()
        if waiting is not None:
            call.upstream_wait += clock() - waiting
            waiting = None
        if not translator.finished:
            raise broken_answer(
                "the OCI stream ended before the answer was complete", retryable=False
            )
        held = translator.end_text()
        if held:
            yield held
        yield translator.finish()
        account_usage(
            call,
            resolved,
            raw_estimate=r.raw,
            oci_usage=translator.usage,
            usage=translator.final_usage(),
            permit=r.permit,
            calibrator=r.calibrator,
        )
        call.stop_reason = translator.stop_reason
    except GatewayError as err:
        failed = m.error_label(err.upstream_kind)
        call.error_type = err.upstream_kind or err.error_type
        m.UPSTREAM_ERRORS.labels(resolved.name, resolved.spec.oci_model, failed).inc()
        log.warning(
            "stream failed after start",
            extra={
                "request_id": call.request_id,
                "error_type": call.error_type,
                "opc_request_id": call.opc_request_id,
            },
        )
        yield error_event(err)
    except Exception as exc:  # a bug or an unforeseen upstream shape: end the stream cleanly
        failed = call.error_type = UpstreamKind.OTHER
        log.error(
            "stream translation failed",
            exc_info=exc,
            extra={
                "request_id": call.request_id,
                "error_class": type(exc).__name__,
                "opc_request_id": call.opc_request_id,
            },
        )
        yield error_event(GatewayError("the gateway failed while translating the stream"))
    except asyncio.CancelledError:
        if streams.aborting and task is not None and task.cancelling():
            # shutdown, not the client: tell the client before the connection closes
            task.uncancel()
            failed = call.error_type = UpstreamKind.SHUTDOWN
            yield error_event(Overloaded("the gateway is restarting; please retry"))
            return
        failed = call.error_type = UpstreamKind.CANCELLED
        call.status = 499
        raise
    except GeneratorExit:
        failed = call.error_type = UpstreamKind.CANCELLED
        call.status = 499
        raise
    finally:
        if waiting is not None:
            call.upstream_wait += clock() - waiting
        await events.aclose()  # after a break: stops its silence timer now, not at GC
        if task is not None:
            streams.tasks.discard(task)
        r.answer.close()
        gauge.dec()
        r.permit.release()
        if translator.transcript is not None:
            tracing.record_content(
                attempt.span, "gen_ai.output.messages", "".join(translator.transcript)
            )
        attempt.end(
            failed,
            response_id=r.message_id,
            finish_reason=translator.finish_reason,
            usage=call.usage,
            time_to_first_chunk=first_chunk,
        )
        if failed is not None and not call.usage:  # cut off: it still costs (an estimate)
            call.partial_usage = translator.final_usage()
        finish_call(call)
