"""Orchestrates one request: resolve the model, translate, call OCI, translate back, account.

Contract: this is the only module that knows every other one. The HTTP layer hands it raw body
bytes plus who is calling; it returns either a complete JSON answer or an async iterator of SSE
bytes, and raises :class:`~app.errors.GatewayError` for anything that fails before the first byte.
Within a stream, failures become an ``event: error`` and the stream closes cleanly.

Per request it: validates (400 naming the field), resolves the model (404 listing valid names),
checks the key's permissions and limits, translates, checks the prompt against the model's
context window (400 ``prompt is too long: N tokens > M maximum``), then makes up to
``oci.retries.max_attempts`` attempts over the model's endpoints (primary, then failover) — each
attempt a ``chat {model}`` span — retrying 429/5xx/connection failures only while nothing has
been sent to the client. It counts tokens per model, times first token and overhead, and writes
one access-log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError

from app.anthropic import sse
from app.anthropic.models import (
    CountTokensRequest,
    MessagesRequest,
    ToolUseBlock,
    describe_errors,
)
from app.catalog import Catalog, Resolved
from app.config import GatewayConfig
from app.errors import (
    GatewayError,
    InvalidRequest,
    Overloaded,
    PermissionDenied,
    error_event,
    prompt_too_long,
)
from app.observability import metrics as m
from app.observability import tracing
from app.observability.logging import access_log
from app.oci.client import (
    OciClient,
    UpstreamError,
    backoff,
    context_overflow_numbers,
    read_chunks,
    read_json,
)
from app.security.keys import ClientKey
from app.security.limits import Limiter, Permit
from app.translate.common import mint_id, reasoning_tokens
from app.translate.from_oci import message_from_oci
from app.translate.request import OciRequest, serving_mode
from app.translate.stream import StreamTranslator
from app.translate.to_oci import to_oci
from app.translate.tokens import Calibrator, raw_estimate

log = logging.getLogger("app.service")


@dataclass(slots=True)
class Target:
    """One place a model can be served from: base URL + serving mode + label for spans."""

    base_url: str
    serving: dict[str, str]
    region: str


@dataclass(slots=True)
class Call:
    """Book-keeping of one client request, for metrics, spans and the access log."""

    request_id: str
    route: str
    key_id: str
    t0: float
    stream: bool = False
    resolved: Resolved | None = None
    status: int = 200
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    reasoning: int = 0
    ttft: float | None = None
    opc_request_id: str | None = None
    upstream_wait: float = 0.0
    error_type: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class Answer:
    """An upstream answer that arrived (HTTP 200): what the JSON and stream finishers need."""

    resp: aiohttp.ClientResponse
    oci: OciRequest
    resolved: Resolved
    model: str  #: the model string the client sent, echoed back in the message
    message_id: str
    estimate: int  #: calibrated prompt estimate (message_start usage until OCI reports)
    raw: int  #: uncalibrated estimate, to teach the calibrator once OCI reports
    span: Any
    t_sent: float
    permit: Permit
    started: bool = False


class StreamBody:
    """The SSE body of one answer. ``aclose()`` frees the upstream even if iteration never
    began (an async generator that never started runs no ``finally`` when closed)."""

    __slots__ = ("_abandon", "_gen")

    def __init__(self, gen: AsyncIterator[bytes], abandon: Callable[[], None]) -> None:
        self._gen = gen
        self._abandon = abandon

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen

    async def aclose(self) -> None:
        try:
            await self._gen.aclose()  # type: ignore[attr-defined]
        finally:
            self._abandon()


class Gateway:
    """Process-wide state built in the lifespan: config, catalog, OCI client, keys, limits."""

    def __init__(
        self,
        config: GatewayConfig,
        client: OciClient,
        limiter: Limiter,
        region: str | None,
        demo: bool = False,
    ) -> None:
        self.config = config
        self.catalog = Catalog(config)
        self.client = client
        self.limiter = limiter
        self.calibrator = Calibrator()
        self.region = region or config.oci.region or ""
        self.demo = demo
        #: tasks serving open streams, so a shutdown can end them with an error event
        self.stream_tasks: set[asyncio.Task[Any]] = set()
        self.aborting = False

    def abort_streams(self) -> None:
        """End every open stream with ``event: error`` (the drain period is over)."""
        self.aborting = True
        for task in list(self.stream_tasks):
            task.cancel("gateway shutting down")

    def swap_config(self, config: GatewayConfig) -> None:
        """Use a new config for new requests; in-flight ones keep the objects they hold."""
        self.config = config
        self.catalog = Catalog(config)
        self.region = config.oci.region or self.region

    # ---- request parsing -----------------------------------------------------------------

    def parse(
        self, body: bytes, model_cls: type[MessagesRequest] | type[CountTokensRequest]
    ) -> Any:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise InvalidRequest(f"the request body is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise InvalidRequest("the request body must be a JSON object")
        limits = self.config.server
        try:
            req = model_cls.model_validate(data)
        except ValidationError as err:
            raise InvalidRequest(describe_errors(err)) from None
        if len(req.messages) > limits.max_messages:
            raise InvalidRequest(
                f"messages: {len(req.messages)} messages exceed the limit of {limits.max_messages}"
            )
        if req.tools and len(req.tools) > limits.max_tools:
            raise InvalidRequest(
                f"tools: {len(req.tools)} tools exceed the limit of {limits.max_tools}"
            )
        # One pass over the messages: block count, a non-system turn, and the depth of tool
        # inputs. Only free-form JSON that the gateway re-serialises needs a depth check: the
        # message structure is bounded by the models, orjson refuses input nested over 1024
        # levels, and tool schemas are cut at a fixed depth by the sanitiser (walking the whole
        # body cost ~200 us per Claude Code turn).
        blocks = 0
        conversation = False
        tool_inputs: list[dict[str, Any]] = []
        for msg in req.messages:
            if msg.role != "system":
                conversation = True
            if isinstance(msg.content, list):
                blocks += len(msg.content)
                tool_inputs.extend(
                    b.input for b in msg.content if isinstance(b, ToolUseBlock) and b.input
                )
        if blocks > limits.max_blocks:
            raise InvalidRequest(
                f"messages: {blocks} content blocks exceed the limit of {limits.max_blocks}"
            )
        if not conversation and model_cls is MessagesRequest:
            raise InvalidRequest("messages: at least one user message is required")
        for value in tool_inputs:
            _check_depth(value, limits.max_depth)
        return req

    def resolve(self, model: str, key: ClientKey | None) -> Resolved:
        resolved = self.catalog.resolve(model)
        if key is not None and not key.allows(resolved.name):
            raise PermissionDenied(f"API key {key.id!r} may not use model {resolved.name!r}")
        return resolved

    def targets(self, resolved: Resolved) -> list[Target]:
        spec = resolved.spec
        out = [Target(self.config.base_url(), serving_mode(spec), self.region or "custom-endpoint")]
        for up in spec.failover:
            serving = (
                {"servingType": "DEDICATED", "endpointId": up.endpoint_id}
                if up.endpoint_id
                else {"servingType": "ON_DEMAND", "modelId": up.model_id or spec.model_id or ""}
            )
            out.append(
                Target(
                    self.config.base_url(up.region, up.endpoint),
                    serving,
                    up.region or up.endpoint or "custom-endpoint",
                )
            )
        return out

    # ---- count_tokens ----------------------------------------------------------------------

    def count_tokens(self, body: bytes, key: ClientKey | None) -> int:
        req = self.parse(body, CountTokensRequest)
        resolved = self.resolve(req.model, key)
        oci = to_oci(req, resolved, self.config.oci.compartment_id)
        return self.calibrator.estimate(resolved.name, raw_estimate(oci.body))

    # ---- messages ----------------------------------------------------------------------------

    async def messages(
        self, body: bytes, key: ClientKey | None, call: Call
    ) -> dict[str, Any] | StreamBody:
        req: MessagesRequest = self.parse(body, MessagesRequest)
        resolved = self.resolve(req.model, key)
        call.resolved = resolved
        call.stream = req.stream
        oci = to_oci(req, resolved, self.config.oci.compartment_id)
        raw = raw_estimate(oci.body)
        estimate = self.calibrator.estimate(resolved.name, raw)
        window = resolved.spec.context_window
        if estimate > window:
            raise prompt_too_long(estimate, window)
        permit = await self.limiter.acquire(key, stream=req.stream)
        try:
            resp, _target, span, t_sent = await self._open(oci, resolved, call, key, estimate)
        except BaseException:
            permit.release()
            raise
        answer = Answer(
            resp, oci, resolved, req.model, mint_id("msg_"), estimate, raw, span, t_sent, permit
        )
        if not req.stream:
            try:
                return await self._finish_json(answer, call)
            finally:
                permit.release()
        return StreamBody(self._stream(answer, call), lambda: self._abandon(answer, call))

    def _abandon(self, a: Answer, call: Call) -> None:
        """The response was dropped before its stream started (client gone at once): free the
        upstream connection, the key's slot and the span that ``_stream`` would have freed."""
        if a.started:
            return
        a.resp.close()
        a.permit.release()
        tracing.end_chat_span(
            a.span,
            opc_request_id=call.opc_request_id,
            response_id=None,
            finish_reason=None,
            input_tokens=None,
            output_tokens=None,
            time_to_first_chunk=None,
            error_type="cancelled",
        )
        call.status = 499
        call.error_type = "cancelled"
        self.finish_call(call)

    async def _open(
        self, oci: OciRequest, resolved: Resolved, call: Call, key: ClientKey | None, estimate: int
    ) -> tuple[aiohttp.ClientResponse, Target, Any, float]:
        """Attempts over the targets until one answers 200; retries only before any byte."""
        retries = self.config.oci.retries
        targets = self.targets(resolved)
        spec = resolved.spec
        labels = _labels(resolved)
        ti = 0
        body = orjson.dumps(oci.body)
        last_error: UpstreamError | None = None
        for attempt in range(retries.max_attempts):
            target = targets[ti]
            if attempt and target.serving != oci.body["servingMode"]:
                oci.body["servingMode"] = target.serving
                body = orjson.dumps(oci.body)
            elif ti == 0 and attempt == 0:
                pass
            call.attempts = attempt + 1
            opc_id = uuid.uuid4().hex.upper()
            call.opc_request_id = opc_id
            span = tracing.chat_span(
                model=resolved.name,
                oci_model=spec.oci_model,
                requested=resolved.requested,
                max_tokens=oci.max_tokens,
                temperature=oci.temperature,
                top_p=oci.top_p,
                region=target.region,
                api_format=spec.format,
                serving_mode=target.serving["servingType"],
                key_id=call.key_id,
                attempt=attempt + 1,
                stream=oci.stream,
            )
            if self.config.observability.record_content:
                tracing.record_content(span, "gen_ai.input.messages", _prompt_json(oci.body))
            t_sent = time.perf_counter()
            try:
                resp = await self.client.send(target.base_url, body, opc_id, stream=oci.stream)
            except UpstreamError as err:
                call.upstream_wait += time.perf_counter() - t_sent
                m.UPSTREAM_ERRORS.labels(resolved.name, spec.oci_model, err.upstream_kind).inc()
                m.OPERATION_DURATION.labels(*labels, err.upstream_kind).observe(
                    time.perf_counter() - t_sent
                )
                tracing.end_chat_span(
                    span,
                    opc_request_id=err.opc_request_id or opc_id,
                    response_id=None,
                    finish_reason=None,
                    input_tokens=None,
                    output_tokens=None,
                    time_to_first_chunk=None,
                    error_type=err.upstream_kind,
                )
                log.warning(
                    "upstream attempt failed",
                    extra={
                        "request_id": call.request_id,
                        "attempt": attempt + 1,
                        "error_type": err.upstream_kind,
                        "upstream_status": err.upstream_status,
                        "opc_request_id": err.opc_request_id or opc_id,
                        "region": target.region,
                    },
                )
                last_error = err
                if err.upstream_kind == "context_overflow":
                    raise self._context_error(err, estimate, spec.context_window) from None
                if not err.retryable or attempt + 1 >= retries.max_attempts:
                    raise
                m.UPSTREAM_RETRIES.labels(resolved.name, err.upstream_kind).inc()
                if len(targets) > 1 and err.upstream_kind in (
                    "rate_limited",
                    "server_error",
                    "connect_error",
                    "timeout",
                ):
                    ti = (ti + 1) % len(targets)
                    m.UPSTREAM_FAILOVERS.labels(resolved.name).inc()
                    delay = (
                        0.0
                        if ti
                        else backoff(
                            attempt, retries.backoff_base, retries.backoff_max, err.retry_after
                        )
                    )
                else:
                    delay = backoff(
                        attempt, retries.backoff_base, retries.backoff_max, err.retry_after
                    )
                if delay:
                    await asyncio.sleep(delay)
                continue
            call.upstream_wait += time.perf_counter() - t_sent
            call.opc_request_id = resp.headers.get("opc-request-id", opc_id)
            return resp, target, span, t_sent
        assert last_error is not None
        raise last_error

    def _context_error(self, err: UpstreamError, estimate: int, window: int) -> GatewayError:
        nums = context_overflow_numbers(err.message)
        tokens, maximum = nums if nums else (max(estimate, window + 1), window)
        return prompt_too_long(tokens, maximum)

    async def _finish_json(self, a: Answer, call: Call) -> dict[str, Any]:
        resp, oci, resolved, model = a.resp, a.oci, a.resolved, a.model
        message_id, estimate, raw, span = a.message_id, a.estimate, a.raw, a.span
        t_sent, permit = a.t_sent, a.permit
        t_wait = time.perf_counter()
        error_kind = None
        result = None
        try:
            result = await read_json(resp, self.config.oci.timeouts.idle)
        except UpstreamError as err:
            error_kind = err.upstream_kind
            raise
        finally:
            resp.release()
            call.upstream_wait += time.perf_counter() - t_wait
            if result is None:
                tracing.end_chat_span(
                    span,
                    opc_request_id=call.opc_request_id,
                    response_id=None,
                    finish_reason=None,
                    input_tokens=None,
                    output_tokens=None,
                    time_to_first_chunk=None,
                    error_type=error_kind or "other",
                )
        message = message_from_oci(
            result,
            model=model,
            message_id=message_id,
            estimated_input=estimate,
            stop_sequences=oci.stop_sequences,
        )
        chat = result.get("chatResponse") or {}
        usage = chat.get("usage")
        if usage is None and isinstance(chat.get("choices"), list) and chat["choices"]:
            first = chat["choices"][0]
            usage = first.get("usage") if isinstance(first, dict) else None
        self._account(call, resolved, raw, usage, message["usage"], message["stop_reason"], permit)
        finish = _finish_of(chat)
        m.OPERATION_DURATION.labels(*_labels(resolved), "").observe(time.perf_counter() - t_sent)
        if self.config.observability.record_content:
            tracing.record_content(
                span, "gen_ai.output.messages", orjson.dumps(message["content"]).decode()
            )
        tracing.end_chat_span(
            span,
            opc_request_id=call.opc_request_id,
            response_id=message_id,
            finish_reason=finish,
            input_tokens=call.usage.get("input_tokens"),
            output_tokens=call.usage.get("output_tokens"),
            time_to_first_chunk=None,
            error_type=None,
        )
        return message

    def _account(
        self,
        call: Call,
        resolved: Resolved,
        raw: int,
        oci_usage: Any,
        usage: dict[str, int],
        stop: str | None,
        permit: Permit,
    ) -> None:
        call.usage = usage
        call.stop_reason = stop
        call.reasoning = reasoning_tokens(oci_usage if isinstance(oci_usage, dict) else None)
        name, oci_model, requested = resolved.name, resolved.spec.oci_model, resolved.requested
        inp = usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)
        out = usage.get("output_tokens", 0)
        if isinstance(oci_usage, dict) and type(oci_usage.get("promptTokens")) is int and inp:
            # only counts OCI reported teach the estimator (never our own estimate)
            self.calibrator.observe(resolved.name, raw, inp)
        key = call.key_id
        if inp:
            m.TOKENS.labels(requested, name, oci_model, key, "input").inc(
                usage.get("input_tokens", 0)
            )
        if usage.get("cache_read_input_tokens"):
            m.TOKENS.labels(requested, name, oci_model, key, "cache_read").inc(
                usage["cache_read_input_tokens"]
            )
        if out:
            m.TOKENS.labels(requested, name, oci_model, key, "output").inc(out)
        if call.reasoning:
            m.TOKENS.labels(requested, name, oci_model, key, "reasoning").inc(call.reasoning)
        labels = _labels(resolved)
        m.TOKEN_USAGE.labels(*labels, "input").observe(inp)
        m.TOKEN_USAGE.labels(*labels, "output").observe(out)
        permit.record_tokens(inp + out)

    async def _stream(self, a: Answer, call: Call) -> AsyncIterator[bytes]:
        a.started = True
        resp, oci, resolved, model = a.resp, a.oci, a.resolved, a.model
        message_id, estimate, raw, span = a.message_id, a.estimate, a.raw, a.span
        t_sent, permit = a.t_sent, a.permit
        translator = StreamTranslator(
            message_id=message_id,
            model=model,
            estimated_input=estimate,
            cohere=resolved.spec.format == "COHERE",
            stop_sequences=oci.stop_sequences,
            transcript=[] if self.config.observability.record_content else None,
        )
        gauge = m.ACTIVE_STREAMS.labels(resolved.name)
        gauge.inc()
        labels = _labels(resolved)
        first_chunk: float | None = None
        error: GatewayError | None = None
        timeouts = self.config.oci.timeouts
        ping_every = self.config.server.ping_interval
        task = asyncio.current_task()
        if task is not None:
            self.stream_tasks.add(task)
        try:
            yield translator.start()
            async for events in read_chunks(resp, idle=timeouts.idle, ping_every=ping_every):
                if events is None:
                    yield sse.PING
                    continue
                if first_chunk is None:
                    first_chunk = time.perf_counter() - t_sent
                    m.TIME_TO_FIRST_CHUNK.labels(*labels).observe(first_chunk)
                out = b""
                for event in events:
                    out += translator.feed(event)
                if out:
                    if call.ttft is None and translator.produced_content:
                        call.ttft = time.perf_counter() - call.t0
                        m.TIME_TO_FIRST_TOKEN.labels(resolved.name).observe(call.ttft)
                    yield out
                if translator.matched_stop is not None:
                    break  # the gateway's own stop sequence: stop paying for tokens
            if not translator.finished:
                raise UpstreamError(
                    "the OCI stream ended before the answer was complete",
                    kind="stream_broken",
                    retryable=False,
                    error_type="api_error",
                )
            yield translator.finish()
            self._account(
                call, resolved, raw, translator.usage, translator.final_usage(), None, permit
            )
            call.stop_reason = translator.stop_reason
        except GatewayError as err:
            error = err
            call.error_type = err.upstream_kind or err.error_type
            m.UPSTREAM_ERRORS.labels(
                resolved.name, resolved.spec.oci_model, err.upstream_kind or "other"
            ).inc()
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
            error = GatewayError("the gateway failed while translating the stream")
            call.error_type = "other"
            log.error(
                "stream translation failed",
                extra={"request_id": call.request_id, "error_class": type(exc).__name__},
            )
            yield error_event(error)
        except asyncio.CancelledError:
            if self.aborting and task is not None and task.cancelling():
                # shutdown, not the client: tell the client before the connection closes
                task.uncancel()
                error = Overloaded("the gateway is restarting; please retry")
                call.error_type = "shutdown"
                yield error_event(error)
                return
            call.error_type = "cancelled"
            call.status = 499  # nginx's "client closed request", for the access log only
            raise
        except GeneratorExit:
            call.error_type = "cancelled"
            call.status = 499
            raise
        finally:
            if task is not None:
                self.stream_tasks.discard(task)
            # close, not release: an unfinished body must not go back to the pool, and closing
            # tells OCI to stop generating (and billing) at once
            resp.close()
            gauge.dec()
            permit.release()
            m.OPERATION_DURATION.labels(*labels, call.error_type or "").observe(
                time.perf_counter() - t_sent
            )
            if translator.transcript is not None:
                tracing.record_content(
                    span, "gen_ai.output.messages", "".join(translator.transcript)
                )
            tracing.end_chat_span(
                span,
                opc_request_id=call.opc_request_id,
                response_id=message_id,
                finish_reason=translator.finish_reason,
                input_tokens=call.usage.get("input_tokens"),
                output_tokens=call.usage.get("output_tokens"),
                time_to_first_chunk=first_chunk,
                error_type=call.error_type if error is not None or call.error_type else None,
            )
            self.finish_call(call)

    # ---- accounting shared with the HTTP layer ----------------------------------------------

    def finish_call(self, call: Call) -> None:
        duration = time.perf_counter() - call.t0
        model = call.resolved.name if call.resolved else ""
        m.REQUESTS.labels(call.route, model, m.status_class(call.status), call.key_id).inc()
        if call.resolved is not None:
            m.REQUEST_DURATION.labels(call.route, model).observe(duration)
            m.OVERHEAD.labels(call.route).observe(max(0.0, duration - call.upstream_wait))
        access_log(
            request_id=call.request_id,
            key_id=call.key_id,
            route=call.route,
            requested_model=call.resolved.requested if call.resolved else None,
            model=model or None,
            oci_model=call.resolved.spec.oci_model if call.resolved else None,
            stream=call.stream,
            status=call.status,
            stop_reason=call.stop_reason,
            input_tokens=call.usage.get("input_tokens"),
            output_tokens=call.usage.get("output_tokens"),
            ttft_ms=round(call.ttft * 1000, 1) if call.ttft is not None else None,
            duration_ms=round(duration * 1000, 1),
            attempts=call.attempts,
            opc_request_id=call.opc_request_id,
            error_type=call.error_type,
        )


def _labels(resolved: Resolved) -> tuple[str, str, str, str]:
    oci_model = resolved.spec.oci_model
    return ("chat", "oci.genai", oci_model, oci_model)


def _finish_of(chat: dict[str, Any]) -> str | None:
    if chat.get("apiFormat") == "COHERE":
        return chat.get("finishReason")
    choices = chat.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0].get("finishReason")
    return None


_PROMPT_KEYS = ("messages", "chatHistory", "message", "preambleOverride", "toolResults")


def _prompt_json(body: dict[str, Any]) -> str:
    chat = body.get("chatRequest") or {}
    return orjson.dumps({k: chat[k] for k in _PROMPT_KEYS if k in chat}).decode()


def _check_depth(data: Any, limit: int) -> None:
    """Reject absurdly nested JSON before pydantic walks it (recursion is not free)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidRequest(f"the request body nests deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
