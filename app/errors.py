"""One exception hierarchy for the gateway and ONE table mapping it to the Anthropic wire.

Contract: every failure a client can see is a :class:`GatewayError`. Its ``error_type`` is an
Anthropic ``error.type`` and its ``status`` the HTTP status of the Anthropic API reference (§5).
Before the first byte of a response it becomes an HTTP error with the Anthropic envelope; after
it, an ``event: error``. Messages never carry internal paths, stack traces or credentials.
"""

from __future__ import annotations

from typing import Any

import orjson

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
        upstream_kind: str | None = None,
        opc_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type
        self.status = status if status is not None else STATUS_BY_TYPE[self.error_type]
        self.retry_after = retry_after
        #: closed-enum kind of an upstream failure (metrics.UPSTREAM_ERROR_TYPES), if any
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


class UpstreamTimeout(GatewayError):
    error_type = "timeout_error"


def prompt_too_long(tokens: int, maximum: int) -> InvalidRequest:
    # Claude Code parses exactly this form to trigger compaction (reference §8.6).
    return InvalidRequest(
        f"prompt is too long: {tokens} tokens > {maximum} maximum",
        upstream_kind=None,
    )


def error_json(error: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(error.body(request_id))


def error_event(error: GatewayError) -> bytes:
    """The SSE form of an error, for failures after the stream started (reference §4.4)."""
    return b"event: error\ndata: " + orjson.dumps(error.body()) + b"\n\n"
