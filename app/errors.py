"""One exception hierarchy for the gateway and ONE table mapping it to the Anthropic wire.

Contract: every failure a client can see is a :class:`GatewayError`. Its ``error_type`` is an
Anthropic ``error.type`` and its ``status`` the HTTP status of the Anthropic API reference (§5).
Before the first byte of a response it becomes an HTTP error with the Anthropic envelope; after
it, an ``event: error``. Messages never carry internal paths, stack traces or credentials.

:class:`UpstreamKind` is the closed set of failure kinds: the only values the ``error_type``
metric label and the span ``error.type`` attribute may take (``metrics.error_label`` maps
anything else to ``other``). How OCI's answers map onto this hierarchy is the table in
:mod:`app.oci.errors`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson


class UpstreamKind(StrEnum):
    """Why an upstream attempt or an answer failed: a bounded label (README, Metrics)."""

    RATE_LIMITED = "rate_limited"  # OCI 429
    SERVER_ERROR = "server_error"  # OCI 5xx
    TIMEOUT = "timeout"  # connect / first byte / idle timeout
    CONNECT_ERROR = "connect_error"  # connection refused, reset before the answer
    AUTH_ERROR = "auth_error"  # OCI 401/403: the gateway's own credentials
    BAD_REQUEST = "bad_request"  # OCI 400
    NOT_FOUND = "not_found"  # OCI 404
    CONTEXT_OVERFLOW = "context_overflow"  # OCI said the prompt is too long
    STREAM_BROKEN = "stream_broken"  # answer cut off, malformed, or ended without a finish
    CANCELLED = "cancelled"  # the client went away
    SHUTDOWN = "shutdown"  # the gateway ended an open stream at the end of its drain period
    OTHER = "other"  # anything else, including the gateway's own bugs


# error.type -> HTTP status (Anthropic API reference §5.2).
STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class GatewayError(Exception):
    """A failure with a place on the Anthropic wire."""

    error_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        upstream_kind: UpstreamKind | None = None,
        opc_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type
        self.status = status if status is not None else STATUS_BY_TYPE[self.error_type]
        self.retry_after = retry_after
        #: the closed kind of an upstream (or in-stream) failure; None for client mistakes
        self.upstream_kind = upstream_kind
        self.opc_request_id = opc_request_id

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
        }
        if request_id:
            body["request_id"] = request_id
        return body

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, round(self.retry_after)))}


class InvalidRequest(GatewayError):
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    error_type = "permission_error"


class NotFound(GatewayError):
    error_type = "not_found_error"


class RequestTooLarge(GatewayError):
    error_type = "request_too_large"


class RateLimited(GatewayError):
    error_type = "rate_limit_error"


class Overloaded(GatewayError):
    error_type = "overloaded_error"


class ClientGone(GatewayError):
    """The client closed its connection before the answer: nobody is left to tell.

    Recorded as 499 (nginx's "client closed request") in the access log and metrics only."""

    def __init__(self) -> None:
        super().__init__(
            "the client closed the connection",
            status=499,
            upstream_kind=UpstreamKind.CANCELLED,
        )


def internal_error() -> GatewayError:
    """What a client sees of a bug: a 500 ``api_error`` that reveals nothing of it."""
    return GatewayError("internal error in the gateway", upstream_kind=UpstreamKind.OTHER)


def prompt_too_long(
    tokens: int, maximum: int, upstream_kind: UpstreamKind | None = None
) -> InvalidRequest:
    # Claude Code parses exactly this form to trigger compaction (reference §8.6).
    return InvalidRequest(
        f"prompt is too long: {tokens} tokens > {maximum} maximum", upstream_kind=upstream_kind
    )


def error_json(error: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(error.body(request_id))


def error_event(error: GatewayError) -> bytes:
    """The SSE form of an error, for failures after the stream started (reference §4.4)."""
    return b"event: error\ndata: " + orjson.dumps(error.body()) + b"\n\n"
