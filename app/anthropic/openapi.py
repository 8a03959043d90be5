"""OpenAPI description of the Anthropic endpoints the gateway serves.

Contract: :func:`messages_openapi` / :func:`count_tokens_openapi` return the ``openapi_extra`` of
the routes: the request body schema generated from the lenient wire models, and the response
schemas (message JSON, SSE stream, token count, error envelope). The routes parse bodies
themselves (no FastAPI body validation on the hot path), so this is documentation for clients
and the contract the schema-driven fuzz test checks responses against.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.anthropic.models import CountTokensRequest, MessagesRequest

_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "model": {"type": "string"},
        "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "stop_reason": {"type": "string"},
        "stop_sequence": {"type": ["string", "null"]},
        "usage": {
            "type": "object",
            "required": ["input_tokens", "output_tokens"],
            "properties": {
                "input_tokens": {"type": "integer"},
                "output_tokens": {"type": "integer"},
            },
        },
    },
}


#: one server-sent event (OpenAPI 3.1 describes each event of a text/event-stream body)
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "enum": [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
                "ping",
                "error",
            ]
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "object", "required": ["type"]},
        },
    },
}


def _errors() -> dict[str, Any]:
    content = {"application/json": {"schema": _ERROR}}
    return {
        str(code): {"description": desc, "content": content}
        for code, desc in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
        ]
    }


#: shared definitions of the request models, merged into ``components.schemas``
COMPONENTS: dict[str, Any] = {}


def _body(model: type[MessagesRequest] | type[CountTokensRequest]) -> dict[str, Any]:
    (schema,), defs = msgspec.json.schema_components(
        [model], ref_template="#/components/schemas/{name}"
    )
    COMPONENTS.update(defs)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def add_components(spec: dict[str, Any]) -> dict[str, Any]:
    spec.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    return spec


def messages_openapi() -> dict[str, Any]:
    return {
        "requestBody": _body(MessagesRequest),
        "responses": {
            "200": {
                "description": "The message (JSON), or an SSE stream when stream is true",
                "content": {
                    "application/json": {"schema": _MESSAGE},
                    "text/event-stream": {"schema": _SSE_EVENT},
                },
            },
            **_errors(),
        },
    }


def count_tokens_openapi() -> dict[str, Any]:
    return {
        "requestBody": _body(CountTokensRequest),
        "responses": {
            "200": {
                "description": "Estimated prompt tokens",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["input_tokens"],
                            "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
                        }
                    }
                },
            },
            **_errors(),
        },
    }
