"""OCI-style error responses and request ids.

Contract: every error the emulator returns is ``application/json`` with body
``{"code": ..., "message": ...}`` and an ``opc-request-id`` header of three ``/``-separated
segments, the first being the client's own ``opc-request-id`` when it sent one (reference §3,
§9). ``OCIError`` is raised anywhere in request handling and turned into such a response.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from .jsonutil import dumps

NOT_AUTHENTICATED_MESSAGE = (
    "The required information to complete authentication was not provided or was incorrect."
)
NOT_FOUND_MESSAGE = "Authorization failed or requested resource not found."


class OCIError(Exception):
    """An HTTP error the emulator answers with instead of a chat result."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_authenticated(reason: str) -> OCIError:
    """401 exactly as OCI words it; ``reason`` only goes to a debugging header."""
    return OCIError(401, "NotAuthenticated", NOT_AUTHENTICATED_MESSAGE,
                    {"x-fake-oci-auth-reason": reason[:200]})


def bad_request(message: str) -> OCIError:
    # GenAI uses the numeric status as its error code (reference §9).
    return OCIError(400, "400", message)


def model_not_found() -> OCIError:
    return OCIError(404, "404", NOT_FOUND_MESSAGE)


def _segment() -> str:
    return secrets.token_hex(16).upper()


def make_request_id(client_request_id: str | None) -> str:
    """Three-segment opc-request-id; first segment echoes the client's id when given."""
    first = client_request_id.strip() if client_request_id else _segment()
    return f"{first}/{_segment()}/{_segment()}"


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Build the JSON error response OCI would send."""
    all_headers = {"opc-request-id": request_id, **(headers or {})}
    body = dumps({"code": code, "message": message})
    return web.Response(status=status, body=body, content_type="application/json",
                        headers=all_headers)


def response_for(error: OCIError, request_id: str) -> web.Response:
    return error_response(error.status, error.code, error.message, request_id, error.headers)
