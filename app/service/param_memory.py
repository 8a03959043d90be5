"""What the gateway learnt about the parameters each OCI model refuses, for this process.

Contract: :class:`ParamMemory` remembers, per OCI model id, the request parameters OCI answered
400 for (:func:`~app.oci.param_compat.rejected_param`), each for ``ttl`` seconds (1 h by
default: a model that starts accepting a parameter again gets it back within the hour; the
memory is per process, so each worker learns once). :meth:`ParamMemory.apply` returns the
``chatRequest`` a new request should send: every remembered parameter dropped (or renamed,
``maxTokens`` <-> ``maxCompletionTokens``), in the order they were learnt. :meth:`learn` records
a rejection; it logs one WARNING per model and parameter for the life of the process (never
any request content) and counts every learnt rejection in ``gateway_param_dropped_total``.

No lock: one instance lives on one event loop and its methods never await.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.observability import metrics as m
from app.oci.param_compat import PARAMS, RENAMES, heal

log = logging.getLogger("app.service.params")

DEFAULT_TTL = 3600.0


class ParamMemory:
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        #: oci model id -> {param: expiry}, in the order learnt
        self._refused: dict[str, dict[str, float]] = {}
        self._logged: set[tuple[str, str]] = set()

    def refused(self, oci_model: str) -> list[str]:
        """The parameters remembered for ``oci_model`` now (expired ones are forgotten)."""
        entry = self._refused.get(oci_model)
        if not entry:
            return []
        now = self._clock()
        for param in [p for p, expiry in entry.items() if expiry <= now]:
            del entry[param]
        if not entry:
            del self._refused[oci_model]
        return list(entry)

    def apply(self, oci_model: str, chat: dict[str, Any]) -> dict[str, Any]:
        """``chat`` without the parameters ``oci_model`` refused; the same object if none."""
        if oci_model not in self._refused:  # the common case: one dict lookup
            return chat
        for param in self.refused(oci_model):
            healed = heal(chat, param)
            if healed is not None:
                chat = healed[0]
        return chat

    def learn(self, model: str, oci_model: str, param: str, action: str) -> None:
        """OCI refused ``param`` for ``oci_model`` (gateway model ``model``); see the docstring."""
        if param not in PARAMS:
            return
        entry = self._refused.setdefault(oci_model, {})
        # a rename the other way round would undo this one: the newer evidence wins
        entry.pop(RENAMES.get(param, ""), None)
        entry.pop(param, None)
        entry[param] = self._clock() + self.ttl
        m.PARAM_DROPPED.labels(model, param).inc()
        if (oci_model, param) not in self._logged:
            self._logged.add((oci_model, param))
            log.warning(
                "OCI model %s does not support parameter %s: %s for this model from now on "
                "(remembered for %.0f s, per process)",
                oci_model,
                param,
                action,
                self.ttl,
                extra={"model": model, "oci_model": oci_model, "param": param},
            )
