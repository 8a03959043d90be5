"""Model lifecycle notices OCI sent with its answers, for this process.

Contract: OCI adds a ``model-retirement-info`` response header to every inference on a
deprecated model (OCI release note "Get notified about model retirement dates", 2025-07-10;
oci-real-world.md #6). :meth:`RetirementNotices.note` keeps the latest value per OCI model id,
logs one WARNING per model and value (no request content), and sets
``gateway_model_retirement_notice{model,oci_model}`` to 1. :meth:`get` (by OCI model id, so an
alias shows its target's notice) is what ``GET /v1/models`` shows. The store is per process
(each worker learns from its own traffic) and bounded by the catalog's models; the header's
wording is OCI's, kept to 300 characters.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.observability import metrics as m

log = logging.getLogger("app.service.lifecycle")

MAX_NOTICE = 300


@dataclass(frozen=True, slots=True)
class Notice:
    model: str
    text: str
    #: when it was first seen (Unix time)
    seen_at: float


class RetirementNotices:
    def __init__(self) -> None:
        self._notices: dict[str, Notice] = {}

    def note(self, model: str, oci_model: str, value: str) -> None:
        text = value.strip()[:MAX_NOTICE]
        known = self._notices.get(oci_model)
        if known is not None and known.text == text:
            return  # the per-answer path: one dict lookup and a compare
        self._notices[oci_model] = Notice(model, text, time.time())
        m.MODEL_RETIREMENT_NOTICE.labels(model, oci_model).set(1)
        log.warning(
            "OCI says model %s (%s) is being retired: %s",
            model,
            oci_model,
            text,
            extra={"model": model, "oci_model": oci_model},
        )

    def get(self, oci_model: str) -> Notice | None:
        return self._notices.get(oci_model)
