"""Upstream attempts: where a model is served, and the loop of attempts until one answers.

Contract: :func:`attempt_upstream` sends one translated request to the model's targets
(:func:`targets`: the primary endpoint, then its failovers) in the order the worker's
:class:`Circuits` give (:mod:`app.oci.breaker`: targets whose circuit is open are skipped, a
half-open one gets one probe, ``spread: weighted`` draws the first target), following
:class:`~app.oci.retry.RetryPolicy` over that order, and returns the :class:`Attempt` that OCI
answered. A non-streaming answer is read to its end *inside* the attempt, so a body cut off
mid-way is retried like any other failure; nothing has reached the client before this returns.
It raises the last :class:`~app.oci.errors.UpstreamError` when the attempts are spent, or at
once for a failure no retry can fix (OCI's context overflow comes back as the ``prompt is too
long`` 400).

Parameters (:mod:`.param_memory`): the request goes out without the parameters OCI already
refused for the model; a 400 naming another one (``reasoningEffort``, ``temperature``, …;
:func:`~app.oci.param_compat.rejected_param`) is learnt and the request is sent again at once
without it, once per request and outside the retry budget (the model would never accept the
first form). OCI's ``model-retirement-info`` header is noted (:mod:`.lifecycle`).

Each attempt is a ``chat {model}`` span with an ``opc-request-id`` of its own, ended exactly once
by :meth:`Attempt.end` (with the attempt's ``gen_ai.client.operation.duration``) and carrying
the circuit state the attempt saw (``oci.circuit_state``); failed attempts also count in
``gateway_upstream_errors_total``, retries and failovers in theirs, circuit transitions in
``gateway_upstream_circuit_*``. The call records the attempts, the last OCI request id, and
the time spent waiting for OCI.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.trace import Span

from app.catalog import Resolved
from app.config import CircuitBreaker, GatewayConfig
from app.errors import UpstreamKind
from app.observability import metrics as m
from app.observability import tracing
from app.oci.breaker import Breaker, Breakers, Outcome, State, outcome
from app.oci.client import OciClient, UpstreamAnswer
from app.oci.errors import UpstreamError, context_error
from app.oci.param_compat import heal
from app.oci.retry import RetryPolicy
from app.service.accounting import Call, gen_ai_labels
from app.service.lifecycle import RetirementNotices
from app.service.param_memory import ParamMemory
from app.translate import wire
from app.translate.request import OciRequest

log = logging.getLogger("app.service")


@dataclass(frozen=True, slots=True)
class Target:
    """One place a model can be served from: base URL + serving mode + label for spans."""

    base_url: str
    serving: dict[str, str]
    region: str
    #: the OCI model id or endpoint OCID served there
    oci_model: str

    @property
    def key(self) -> tuple[str, str]:
        """Its circuit breaker: one per base URL and OCI model, whichever gateway model uses it."""
        return (self.base_url, self.oci_model)


def targets(config: GatewayConfig, resolved: Resolved, region: str) -> list[Target]:
    """The model's places in failover order (:meth:`ModelSpec.targets`), with their URLs."""
    default = region or "custom-endpoint"
    out = []
    for t in resolved.spec.targets():
        serving = t.serving_mode
        oci_model = serving.get("modelId") or serving.get("endpointId") or ""
        out.append(
            Target(config.base_url(t.region, t.endpoint), serving, t.label(default), oci_model)
        )
    return out


class Circuits:
    """The worker's circuit breakers (:class:`~app.oci.breaker.Breakers`) with their metrics:
    ``gateway_upstream_circuit_state`` for every model that uses a target, and the transitions
    counted and logged once per target."""

    def __init__(self, breakers: Breakers | None = None) -> None:
        self.breakers = breakers or Breakers()
        self.breakers.on_transition = self._moved
        #: target key -> gateway models using it; the labels of its metrics
        self._models: dict[Hashable, set[str]] = {}
        self._labels: dict[Hashable, tuple[str, str]] = {}

    def plan(
        self,
        model: str,
        places: Sequence[Target],
        weights: Sequence[float] | None,
        settings: CircuitBreaker,
    ) -> list[Target]:
        """The targets one request of ``model`` tries, in order (settings follow reloads)."""
        self.breakers.settings = settings
        for t in places:
            users = self._models.setdefault(t.key, set())
            if model not in users:  # once per model and target: its gauge series starts here
                users.add(model)
                self._labels[t.key] = (t.oci_model, t.region)
                state = self.breakers.get(t.key).state
                m.CIRCUIT_STATE.labels(model, t.oci_model, t.region).set(state)
        return [places[i] for i in self.breakers.plan([t.key for t in places], weights)]

    def _moved(self, breaker: Breaker, old: State, new: State) -> None:
        oci_model, target = self._labels.get(breaker.key, ("", ""))
        m.CIRCUIT_TRANSITIONS.labels(oci_model, target, new.label).inc()
        for model in self._models.get(breaker.key, ()):
            m.CIRCUIT_STATE.labels(model, oci_model, target).set(new)
        log.log(
            logging.WARNING if new == State.OPEN else logging.INFO,
            "upstream circuit %s",
            new.label,
            extra={
                "region": target,
                "oci_model": oci_model,
                "circuit_state": new.label,
                "previous_state": old.label,
                "failures": breaker.failures,
                "cooldown_s": self.breakers.settings.cooldown if new == State.OPEN else None,
            },
        )


class Attempt:
    """One attempt at OCI: its span and clock and, once OCI answered, the answer."""

    __slots__ = ("_ended", "answer", "labels", "opc_request_id", "result", "span", "t_sent")

    def __init__(self, span: Span, labels: tuple[str, str, str, str], opc_request_id: str) -> None:
        self.span = span
        self.labels = labels
        self.opc_request_id = opc_request_id
        self.t_sent = time.perf_counter()
        self.answer: UpstreamAnswer | None = None
        #: the whole JSON answer of a non-streaming request
        self.result: dict[str, Any] | None = None
        self._ended = False

    def end(
        self,
        error: str | None = None,
        *,
        opc_request_id: str | None = None,
        response_id: str | None = None,
        finish_reason: str | None = None,
        usage: dict[str, int] | None = None,
        time_to_first_chunk: float | None = None,
    ) -> None:
        """End the span and time the operation, once; ``error`` (a kind) marks it failed."""
        if self._ended:
            return
        self._ended = True
        label = m.error_label(error) if error else ""
        m.OPERATION_DURATION.labels(*self.labels, label).observe(time.perf_counter() - self.t_sent)
        tracing.end_chat_span(
            self.span,
            opc_request_id=opc_request_id or self.opc_request_id,
            response_id=response_id,
            finish_reason=finish_reason,
            input_tokens=usage.get("input_tokens") if usage else None,
            output_tokens=usage.get("output_tokens") if usage else None,
            time_to_first_chunk=time_to_first_chunk,
            error_type=label or None,
        )


async def attempt_upstream(
    client: OciClient,
    config: GatewayConfig,
    region: str,
    oci: OciRequest,
    resolved: Resolved,
    call: Call,
    *,
    estimate: int,
    params: ParamMemory,
    notices: RetirementNotices,
    circuits: Circuits,
) -> Attempt:
    """Attempts over the targets until one answers; see the module docstring."""
    policy = RetryPolicy.from_config(config.oci.retries)
    spec = resolved.spec
    places = circuits.plan(
        resolved.name, targets(config, resolved, region), spec.weights(), config.oci.circuit_breaker
    )
    breakers = circuits.breakers
    labels = gen_ai_labels(resolved)
    idle = config.oci.timeouts.idle
    # Memory: the translation is taken over and dropped once serialised, so an in-flight
    # request holds only the bytes it sends (a 1 MB turn: ~1 MB, not 2). Retries on the same
    # serving mode reuse the bytes; a failover to another one or a healed parameter decodes
    # them back (rare paths, ~2 ms per MB). docs/design.md, "Long conversations".
    translated = oci.release_body()
    doc: dict[str, Any] | None = translated
    chat: dict[str, Any] | None = params.apply(spec.oci_model, translated["chatRequest"])
    prompt = _prompt_json(translated) if config.observability.record_content else None
    del translated
    body = b""
    serving: dict[str, str] | None = None  # the serving mode ``body`` was made for
    temperature = top_p = None
    healed = False
    ti = 0
    attempt = 0
    sent = 0
    while True:
        target = places[ti]
        if serving != target.serving:
            if doc is None or chat is None:
                doc = orjson.loads(body)
                chat = doc["chatRequest"]
            # the translation is never edited in place: each target gets its own serving mode
            body = wire.encode({**doc, "servingMode": target.serving, "chatRequest": chat})
            serving = target.serving
            temperature, top_p = chat.get("temperature"), chat.get("topP")
            doc = chat = None
        sent += 1
        call.attempts = sent
        opc_id = uuid.uuid4().hex.upper()
        call.opc_request_id = opc_id
        ticket = breakers.begin(target.key)
        extra: dict[str, Any] = {"oci.circuit_state": ticket.seen.label}
        if call.attribution.session_id or call.attribution.tags or call.attribution.agent_id:
            extra.update(call.attribution.span_attributes())  # session, agent, tags
        if call.route_rule is not None:  # app/service/routing.py
            extra["gateway.routing.rule"] = call.route_rule
        span = tracing.chat_span(
            model=resolved.name,
            oci_model=spec.oci_model,
            requested=resolved.requested,
            max_tokens=oci.max_tokens,
            temperature=temperature,
            top_p=top_p,
            region=target.region,
            api_format=spec.format,
            serving_mode=target.serving["servingType"],
            key_id=call.key_id,
            attempt=sent,
            stream=oci.stream,
            extra=extra,  # set at start: one attribute pass in the SDK, not four
        )
        if prompt is not None:
            tracing.record_content(span, "gen_ai.input.messages", prompt)
        now = Attempt(span, labels, opc_id)
        try:
            now.answer = answer = await client.open(
                target.base_url, body, opc_id, stream=oci.stream
            )
            now.opc_request_id = call.opc_request_id = answer.opc_request_id
            if answer.retirement_info:
                notices.note(resolved.name, spec.oci_model, answer.retirement_info)
            if not oci.stream:
                try:
                    now.result = await answer.json(idle=idle)
                finally:
                    answer.close()  # a no-op once the body was read to its end
        except UpstreamError as err:
            call.upstream_wait += time.perf_counter() - now.t_sent
            breakers.end(ticket, outcome(err))
            kind = m.error_label(err.upstream_kind)
            opc = err.opc_request_id or now.opc_request_id
            now.end(kind, opc_request_id=opc)
            m.UPSTREAM_ERRORS.labels(resolved.name, spec.oci_model, kind).inc()
            log.warning(
                "upstream attempt failed",
                extra={
                    "request_id": call.request_id,
                    "attempt": sent,
                    "error_type": kind,
                    "upstream_status": err.upstream_status,
                    "opc_request_id": opc,
                    "region": target.region,
                    "circuit_state": ticket.seen.label,
                },
            )
            if err.upstream_kind == UpstreamKind.CONTEXT_OVERFLOW:
                raise context_error(err, estimate, spec.context_window) from None
            sent_doc = orjson.loads(body) if err.param else None
            fix = heal(sent_doc["chatRequest"], err.param) if sent_doc and err.param else None
            if fix is not None and err.param is not None:
                doc, (chat, action) = sent_doc, fix
                params.learn(resolved.name, spec.oci_model, err.param, action)
                if not healed:  # once per request: a second refusal goes back to the client
                    healed = True
                    serving = None  # serialised again, without the parameter
                    m.UPSTREAM_RETRIES.labels(resolved.name, kind).inc()
                    continue
                # a second refusal: a failover sends the healed form, a retry the same bytes
            step = policy.after(attempt, ti, len(places), err)
            if step is None:
                raise
            m.UPSTREAM_RETRIES.labels(resolved.name, kind).inc()
            if step.failover:
                m.UPSTREAM_FAILOVERS.labels(resolved.name).inc()
            ti = step.target
            attempt += 1
            if step.delay:
                await asyncio.sleep(step.delay)
                call.upstream_wait += step.delay  # waiting because of OCI, not gateway time
            continue
        except BaseException as exc:  # client gone, shutdown, or a bug: the span ends here too
            call.upstream_wait += time.perf_counter() - now.t_sent
            breakers.end(ticket, Outcome.NEUTRAL)  # says nothing about OCI; frees a probe slot
            if now.answer is not None:
                now.answer.close()
            cancelled = isinstance(exc, asyncio.CancelledError)
            now.end(UpstreamKind.CANCELLED if cancelled else UpstreamKind.OTHER)
            raise
        call.upstream_wait += time.perf_counter() - now.t_sent
        breakers.end(ticket, Outcome.SUCCESS)
        return now


_PROMPT_KEYS = ("messages", "chatHistory", "message", "preambleOverride", "toolResults")


def _prompt_json(body: dict[str, Any]) -> str:
    chat = body.get("chatRequest") or {}
    return wire.encode({k: chat[k] for k in _PROMPT_KEYS if k in chat}).decode()
