"""OCI failures -> gateway errors: the one table from OCI's answers to the Anthropic wire.

Contract:
- :class:`UpstreamError` is a :class:`~app.errors.GatewayError` that also says whether another
  attempt may help (``retryable``) and what OCI answered (``upstream_status``); its
  ``upstream_kind`` is always an :class:`~app.errors.UpstreamKind`.
- :func:`classify` maps an OCI error response (status, body, headers) to one
  (oci-genai-wire.md §9). A ``message`` that is itself JSON (OpenAI-family and xAI models,
  oci-real-world.md #14) is unwrapped first (:func:`~app.oci.param_compat.unwrap_message`), so
  the client reads the inner text and the context-overflow match runs on it; a 400 that says
  the model does not support a parameter carries its wire name in ``param``. The transport's
  own failures come from :func:`timeout_error`, :func:`connect_error` and
  :func:`broken_answer`.
- :func:`context_error` is the whole context-overflow mapping: OCI's "too long" 400, with the
  token counts from its message when it names them (:func:`context_overflow_numbers`), becomes
  the exact ``prompt is too long: N tokens > M maximum`` that Claude Code compacts on.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.errors import GatewayError, InvalidRequest, UpstreamKind, prompt_too_long
from app.oci.param_compat import rejected_param, unwrap_message


class UpstreamError(GatewayError):
    upstream_kind: UpstreamKind

    def __init__(
        self,
        message: str,
        *,
        kind: UpstreamKind,
        retryable: bool,
        error_type: str,
        status: int | None = None,
        retry_after: float | None = None,
        opc_request_id: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(
            message,
            error_type=error_type,
            status=status,
            retry_after=retry_after,
            upstream_kind=kind,
            opc_request_id=opc_request_id,
        )
        self.retryable = retryable
        self.upstream_status = upstream_status
        #: the request parameter a 400 says the model does not support (param_compat.PARAMS)
        self.param: str | None = None


_CONTEXT_RX = re.compile(
    r"(context length|context window|maximum context|too many tokens|prompt is too long|"
    r"input is too long|exceeds the maximum|maximum input|token limit)",
    re.IGNORECASE,
)
_NUMBERS_RX = re.compile(r"\d[\d,]*")


def classify(status: int, body: bytes, headers: Any, opc_id: str | None) -> UpstreamError:
    """An OCI error response -> the Anthropic error (oci-genai-wire.md §9, issue table)."""
    message = ""
    param: str | None = None
    code: str | None = None
    try:
        parsed = orjson.loads(body) if body else {}
        if isinstance(parsed, dict):
            raw = parsed.get("message") or parsed.get("error") or parsed.get("code") or ""
            if not isinstance(raw, str):  # {"error": {...}} straight from the model
                raw = orjson.dumps({"error": raw}).decode()
            message, param, code = unwrap_message(raw)
    except orjson.JSONDecodeError:
        message = body[:300].decode("utf-8", "replace")
    message = message[:1000]
    retry_after = _retry_after(headers)

    def error(text: str, kind: UpstreamKind, error_type: str, **extra: Any) -> UpstreamError:
        extra.setdefault("retryable", False)
        return UpstreamError(
            text,
            kind=kind,
            error_type=error_type,
            opc_request_id=opc_id,
            upstream_status=status,
            **extra,
        )

    if status == 400:
        if _CONTEXT_RX.search(message):
            return error(message, UpstreamKind.CONTEXT_OVERFLOW, "invalid_request_error")
        bad = error(
            message or "OCI rejected the request", UpstreamKind.BAD_REQUEST, "invalid_request_error"
        )
        bad.param = rejected_param(message, param, code)
        return bad
    if status == 404:
        # "Authorization failed or requested resource not found" (oci-genai-wire §9): the
        # gateway's model id, compartment, region or IAM policy, never the client's request
        # (its model name resolved): a 5xx, so the operator's error rate and alerts see it
        # (the 401/403 rule below; review B8)
        return error(
            "OCI Generative AI could not find the model, or the gateway's identity has no access "
            f"to it in this compartment/region (HTTP 404): {message}; check the gateway's "
            "models.<name>.model_id, oci.compartment_id and IAM policy",
            UpstreamKind.NOT_FOUND,
            "api_error",
            status=500,
        )
    if status in (401, 403):
        # the gateway's own credentials: never a 401 to the client (Claude Code retries 401s)
        return error(
            f"the upstream rejected the gateway's OCI credentials (HTTP {status}); "
            "check the gateway's OCI auth configuration",
            UpstreamKind.AUTH_ERROR,
            "api_error",
            status=500,
        )
    if status == 429:
        return error(
            f"OCI Generative AI is throttling requests: {message or 'too many requests'}",
            UpstreamKind.RATE_LIMITED,
            "rate_limit_error",
            retryable=True,
            retry_after=retry_after if retry_after is not None else 5.0,
        )
    if status >= 500:
        return error(
            f"OCI Generative AI failed (HTTP {status}): {message or 'server error'}",
            UpstreamKind.SERVER_ERROR,
            "overloaded_error" if status in (503, 504) else "api_error",
            retryable=status != 501,
            retry_after=retry_after,
        )
    return error(f"OCI answered HTTP {status}: {message}", UpstreamKind.OTHER, "api_error")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def timeout_error(what: str) -> UpstreamError:
    return UpstreamError(
        f"OCI Generative AI did not answer in time ({what})",
        kind=UpstreamKind.TIMEOUT,
        retryable=True,
        error_type="overloaded_error",
        retry_after=2.0,
    )


def connect_error(err: BaseException) -> UpstreamError:
    return UpstreamError(
        f"cannot reach OCI Generative AI ({type(err).__name__})",
        kind=UpstreamKind.CONNECT_ERROR,
        retryable=True,
        error_type="overloaded_error",
        retry_after=2.0,
    )


def broken_answer(message: str, *, retryable: bool) -> UpstreamError:
    """An answer cut off or unreadable. ``retryable`` only while nothing reached the client
    (a JSON body can be asked for again; a stream that already started cannot)."""
    return UpstreamError(
        message, kind=UpstreamKind.STREAM_BROKEN, retryable=retryable, error_type="api_error"
    )


def context_overflow_numbers(message: str) -> tuple[int, int] | None:
    """(tokens, maximum) when OCI's message names them, largest first as the maximum."""
    nums = [int(n.replace(",", "")) for n in _NUMBERS_RX.findall(message)]
    nums = [n for n in nums if n >= 100]
    if len(nums) >= 2:
        a, b = nums[0], nums[1]
        return (max(a, b), min(a, b))
    return None


def context_error(err: UpstreamError, estimate: int, window: int) -> InvalidRequest:
    """OCI's context overflow as Claude Code's compaction trigger. Without numbers in OCI's
    message, the gateway's estimate stands in (at least one over the window, so it reads true)."""
    nums = context_overflow_numbers(err.message)
    tokens, maximum = nums if nums else (max(estimate, window + 1), window)
    return prompt_too_long(tokens, maximum, upstream_kind=UpstreamKind.CONTEXT_OVERFLOW)
