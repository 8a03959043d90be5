"""One request's record, from arrival to its last byte: metrics, access log, calibrator feed.

Contract:
- Every route runs inside ``async with Accounting(call) as acct`` (``MessagesService.accounting``
  builds both), and nothing else in the gateway sets a request's status, error type or request
  metrics. The block ends in one of four ways:

  * it gave an answer (:meth:`Accounting.answer`): JSON is serialised there, inside the block,
    and the call is finished on exit; a stream finishes the call itself, at its last byte, its
    ``event: error``, or when it is dropped unstarted (see ``service.finish.StreamBody``);
  * it raised a :class:`~app.errors.GatewayError`: :attr:`Accounting.error` is the envelope to
    send (4xx before any upstream call also count in ``gateway_client_errors_total``);
  * it raised anything else, i.e. a bug or an upstream shape nobody foresaw: logged once at ERROR
    with its traceback (never the request body), answered as a 500 ``api_error`` carrying this
    request's own id;
  * it was cancelled (the server ended the task): recorded as 499 and the cancellation goes on.

- :func:`finish_call` runs at most once per :class:`Call`: ``gateway_requests_total``, the
  duration and overhead histograms (for requests that named a model), the request's cost
  (:func:`charge`), one access-log line and one audit record (``app.audit``). Overhead is the
  gateway's own time: the duration minus the time spent waiting for OCI (``upstream_wait``)
  and for the client (``client_wait``).
- :func:`charge`: the answer's cost in USD at the model's ``price``, from the usage the client
  was sent (OCI's counts; a stream cut off before OCI's usage arrived costs the translator's
  estimate, ``call.partial_usage``, flagged ``cost_estimated``). It counts
  ``gateway_spend_usd_total`` and adds the cost to the caller's budget windows and the usage
  data through the request's budget ticket.
- :func:`account_usage` counts an answer's tokens per model and key, charges the key's token
  budget, and teaches the calibrator, but only from counts OCI reported (never from estimates).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from app.catalog import Resolved
from app.catalog.price import cost
from app.errors import STATUS_BY_TYPE, GatewayError, UpstreamKind, internal_error
from app.observability import metrics as m
from app.observability.logging import access_log, audit_log
from app.security.budgets import Ticket
from app.security.limits import Permit
from app.security.policy import Principal
from app.service.attribution import NONE, Attribution
from app.translate.common import reasoning_tokens
from app.translate.tokens import Calibrator

if TYPE_CHECKING:
    from app.service.finish import StreamBody

log = logging.getLogger("app.service")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(slots=True)
class Call:
    """Book-keeping of one client request, for metrics, spans and the access log."""

    request_id: str
    route: str
    t0: float
    key_id: str = "-"
    stream: bool = False
    resolved: Resolved | None = None
    status: int = 200
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    reasoning_tokens: int = 0
    ttft: float | None = None
    opc_request_id: str | None = None
    #: seconds spent waiting for OCI: headers, body, every streamed chunk, retry backoff
    upstream_wait: float = 0.0
    #: seconds spent waiting for the client: its request body, taking the streamed bytes
    client_wait: float = 0.0
    error_type: str | None = None
    attempts: int = 0
    finished: bool = False
    principal: Principal | None = None
    attribution: Attribution = NONE
    #: the caller's budget windows, from the pre-check (None: no budget check was made)
    ticket: Ticket | None = None
    #: response headers the answer carries whatever it is (anthropic-ratelimit-unified-*)
    headers: dict[str, str] = field(default_factory=dict)
    #: usage of a stream that ended before OCI reported its own (the translator's estimate)
    partial_usage: dict[str, int] | None = None
    #: whether ``usage`` holds counts OCI reported (not the gateway's estimate)
    usage_reported: bool = False
    cost_usd: float = 0.0
    cost_estimated: bool = False
    route_rule: int | None = None  #: index of the routing rule that chose the model


class Accounting:
    """The owner of one :class:`Call` for the length of a route (see the module docstring)."""

    __slots__ = ("call", "error", "json", "stream")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.error: GatewayError | None = None
        self.json: bytes | None = None
        self.stream: StreamBody | None = None

    def answer(self, result: bytes | dict[str, Any] | StreamBody) -> None:
        """The route's answer: JSON bytes, a JSON-able dict, or a stream. The last statement of
        the block, so that serialising the JSON is still inside it."""
        if isinstance(result, bytes):
            self.json = result
        elif isinstance(result, dict):
            self.json = orjson.dumps(result)
        else:
            self.stream = result

    async def __aenter__(self) -> Accounting:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        call = self.call
        if exc is None:
            if self.stream is None:
                finish_call(call)
            return False
        if self.stream is not None:  # an answer was set and then something failed: free it
            stream, self.stream = self.stream, None
            await stream.aclose()
        if isinstance(exc, GatewayError):
            self.error = exc
        elif isinstance(exc, Exception):
            log.error(
                "unexpected error",
                exc_info=exc,
                extra={
                    "request_id": call.request_id,
                    "route": call.route,
                    "error_class": type(exc).__name__,
                    "opc_request_id": call.opc_request_id,
                },
            )
            self.error = internal_error()
        else:  # CancelledError (or an interpreter exit): the task ends here
            call.status = 499
            call.error_type = UpstreamKind.CANCELLED
            finish_call(call)
            return False
        err = self.error
        call.status = err.status
        call.error_type = err.upstream_kind or err.error_type
        if err.upstream_kind is None:
            # the label is an Anthropic error type: bounded by the one table in app.errors
            label = err.error_type if err.error_type in STATUS_BY_TYPE else "api_error"
            m.CLIENT_ERRORS.labels(call.route, label).inc()
        finish_call(call)
        return True  # the route answers with self.error


def finish_call(call: Call) -> None:
    if call.finished:
        return
    call.finished = True
    duration = time.perf_counter() - call.t0
    overhead = max(0.0, duration - call.upstream_wait - call.client_wait)
    resolved = call.resolved
    model = resolved.name if resolved else ""
    m.REQUESTS.labels(call.route, model, m.status_class(call.status), call.key_id).inc()
    if resolved is not None:
        m.REQUEST_DURATION.labels(call.route, model).observe(duration)
        m.OVERHEAD.labels(call.route).observe(overhead)
    charge(call)
    usage = call.usage or call.partial_usage or {}
    who = call.principal
    attribution = call.attribution.fields()
    cost_usd = round(call.cost_usd, 8) if call.ticket is not None or call.cost_usd else None
    access_log(
        request_id=call.request_id,
        key_id=call.key_id,
        route=call.route,
        requested_model=resolved.requested if resolved else None,
        model=model or None,
        oci_model=resolved.spec.oci_model if resolved else None,
        stream=call.stream,
        status=call.status,
        stop_reason=call.stop_reason,
        input_tokens=call.usage.get("input_tokens"),
        output_tokens=call.usage.get("output_tokens"),
        ttft_ms=round(call.ttft * 1000, 1) if call.ttft is not None else None,
        duration_ms=round(duration * 1000, 1),
        overhead_ms=round(overhead * 1000, 2),
        attempts=call.attempts,
        opc_request_id=call.opc_request_id,
        error_type=call.error_type,
        cost_usd=cost_usd,
        team=who.team if who else None,
        **attribution,
        routing_rule=call.route_rule,
    )
    audit_log(
        request_id=call.request_id,
        key_id=call.key_id,
        principal_kind=who.kind if who else None,
        owner=who.owner if who else None,
        team=who.team if who else None,
        route=call.route,
        model=model or None,
        oci_model=resolved.spec.oci_model if resolved else None,
        stream=call.stream,
        status=call.status,
        error_type=call.error_type,
        input_tokens=usage.get("input_tokens"),
        cache_read_input_tokens=usage.get("cache_read_input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cost_usd=cost_usd,
        cost_estimated=call.cost_estimated or None,
        duration_ms=round(duration * 1000, 1),
        **attribution,
    )


def charge(call: Call) -> None:
    """The request's cost (see the module docstring); nothing without a model or an answer."""
    resolved = call.resolved
    usage = call.usage or call.partial_usage
    if resolved is None or not usage:
        return
    call.cost_estimated = not call.usage or not call.usage_reported
    call.cost_usd = usd = cost(resolved.spec.unit_price, usage)
    who = call.principal
    team = (who.team if who else None) or "-"
    if usd > 0:
        m.SPEND.labels(resolved.name, call.key_id, team).inc(usd)
    ticket = call.ticket
    if ticket is None:
        return
    dims: dict[str, list[str]] = {"model": [resolved.name]}
    if who is not None:
        dims["key" if who.kind == "key" else "user"] = [who.id]
        if who.kind == "key" and who.owner:
            dims["user"] = [who.owner]
        if who.team:
            dims["team"] = [who.team]
    if call.attribution.request_class:
        dims["class"] = [call.attribution.request_class]
    if call.attribution.tags:
        dims["tag"] = list(call.attribution.tags)
    tokens = usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)
    ticket.charge(usd, dims, (tokens, usage.get("output_tokens", 0)))


def account_usage(
    call: Call,
    resolved: Resolved,
    *,
    raw_estimate: int,
    oci_usage: Any,
    usage: dict[str, int],
    permit: Permit,
    calibrator: Calibrator,
) -> None:
    """Tokens of one answer: ``usage`` is the Anthropic usage sent to the client, ``oci_usage``
    what OCI reported (any shape: it is checked here), ``raw_estimate`` the uncalibrated
    prompt estimate the calibrator learns against."""
    oci = oci_usage if isinstance(oci_usage, dict) else None
    call.usage = usage
    call.usage_reported = oci is not None and type(oci.get("promptTokens")) is int
    call.reasoning_tokens = reasoning_tokens(oci)
    name, oci_model, requested = resolved.name, resolved.spec.oci_model, resolved.requested
    inp = usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)
    out = usage.get("output_tokens", 0)
    if oci is not None and type(oci.get("promptTokens")) is int and inp:
        # only counts OCI reported teach the estimator (never our own estimate)
        calibrator.observe(name, raw_estimate, inp)
    key = call.key_id
    if inp:
        m.TOKENS.labels(requested, name, oci_model, key, "input").inc(usage.get("input_tokens", 0))
    if usage.get("cache_read_input_tokens"):
        m.TOKENS.labels(requested, name, oci_model, key, "cache_read").inc(
            usage["cache_read_input_tokens"]
        )
    if out:
        m.TOKENS.labels(requested, name, oci_model, key, "output").inc(out)
    if call.reasoning_tokens:
        m.TOKENS.labels(requested, name, oci_model, key, "reasoning").inc(call.reasoning_tokens)
    labels = gen_ai_labels(resolved)
    m.TOKEN_USAGE.labels(*labels, "input").observe(inp)
    m.TOKEN_USAGE.labels(*labels, "output").observe(out)
    permit.record_tokens(inp + out)


def gen_ai_labels(resolved: Resolved) -> tuple[str, str, str, str]:
    """The semconv label values (operation, provider, request model, response model)."""
    oci_model = resolved.spec.oci_model
    return ("chat", "oci.genai", oci_model, oci_model)
