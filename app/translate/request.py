"""The request pieces both OCI formats share (GENERIC and COHERE). Pure: no I/O, no metrics.

Contract: :class:`OciRequest` is what a request translator returns: ``body`` is the exact JSON
object to sign and send to ``POST /20231130/actions/chat`` (oci-genai-wire.md §4), the other
fields are what the answer translators and the spans need (stream or not, the clamped output
limit, the stop sequences the gateway enforces itself, sampling options). The helpers here are
the rules that must not differ between formats: the output limit clamp (with the on-demand cap),
which tools are sent, structured output, the sampling/stop/stream block (without the client's
sampling for a fixed-sampling profile) and the ChatDetails envelope
(:func:`oci_request`), and how an invalid tool or output schema becomes a 400
(:func:`tool_schema`, :func:`output_schema`).

This module imports no format module: ``to_oci_generic`` and ``to_oci_cohere`` import it, and
``to_oci`` dispatches between them (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.anthropic.models import CountTokensRequest, MessagesRequest, Tool
from app.catalog.spec import ModelSpec
from app.errors import InvalidRequest
from app.translate import wire
from app.translate.tool_schema import SchemaError

AnthropicRequest = MessagesRequest | CountTokensRequest
_T = TypeVar("_T")


@dataclass(slots=True)
class OciRequest:
    body: dict[str, Any]
    stream: bool
    max_tokens: int
    #: matched by the gateway, never sent to OCI (see to_oci_generic's docstring)
    stop_sequences: tuple[str, ...] = ()
    #: options for spans/logs (semconv request attributes)
    temperature: float | None = None
    top_p: float | None = None

    def release_body(self) -> dict[str, Any]:
        """``body``, handed over once (the sender serialises it): this object then holds an
        empty dict, so a long turn in flight keeps only its serialised bytes, not the dict too
        (docs/design.md, "Long conversations")."""
        body, self.body = self.body, {}
        return body


def clamp_max_tokens(requested: int, spec: ModelSpec) -> int:
    """The client's ``max_tokens`` within the model's limit (``ModelSpec.output_limit``: the
    configured maximum, and the profile's on-demand cap when served ON_DEMAND, RW §8)."""
    # 0 means "warm the cache only" on Anthropic; OCI needs at least one token.
    return max(1, min(requested, spec.output_limit))


def custom_tools(req: AnthropicRequest, spec: ModelSpec) -> list[tuple[int, Tool]]:
    """Client-executed tools with their index in ``tools`` (for error messages), for a model
    with the ``tools`` capability. Server tools (web_search_…) and typed tools are left out."""
    if not req.tools or not spec.has("tools"):
        return []
    return [(i, t) for i, t in enumerate(req.tools) if t.is_custom]


def tool_schema(index: int, tool: Tool, convert: Callable[[dict[str, Any] | None], _T]) -> _T:
    """``convert(tool.input_schema)``, with a malformed schema turned into a 400 that names the
    tool and the field (``tools[3] (Bash): input_schema.required must be an array of strings``).
    """
    try:
        return convert(tool.input_schema)
    except SchemaError as err:
        raise InvalidRequest(
            f"tools[{index}] ({_short(tool.name)}): {err.describe('input_schema')}"
        ) from None


def structured_output(req: AnthropicRequest) -> dict[str, Any] | None:
    fmt = req.output_config.format if req.output_config else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if isinstance(schema, dict):
            return schema
    return None


def output_schema(schema: dict[str, Any], convert: Callable[[dict[str, Any]], _T]) -> _T:
    """``convert(schema)`` for ``output_config.format.schema``; malformed is a 400."""
    try:
        return convert(schema)
    except SchemaError as err:
        raise InvalidRequest(err.describe("output_config.format.schema")) from None


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Answer with a single JSON object and nothing else. It must match this JSON schema: "
        + wire.encode(schema).decode()
    )


def oci_request(
    req: AnthropicRequest,
    spec: ModelSpec,
    compartment_id: str,
    chat: dict[str, Any],
    *,
    max_tokens_field: str,
) -> OciRequest:
    """Add the output limit, sampling options and stream flags to ``chat``, wrap it in the
    ChatDetails envelope (oci-genai-wire.md §4) and return the :class:`OciRequest`.

    A count_tokens request gets none of the options: it is never sent, only counted.
    """
    body = {
        "compartmentId": compartment_id,
        "servingMode": spec.serving_mode(),
        "chatRequest": chat,
    }
    if not isinstance(req, MessagesRequest):
        return OciRequest(body=body, stream=False, max_tokens=1)
    max_tokens = clamp_max_tokens(req.max_tokens, spec)
    chat[max_tokens_field] = max_tokens
    # a catalog temperature pins the model's; else the client's. A fixed-sampling profile
    # (gpt-5*: 400 unsupported_value for non-default values, RW §10) gets none of the client's.
    client = not spec.profile.fixed_sampling
    temperature = spec.temperature
    if temperature is None and client:
        temperature = req.temperature
    top_p = req.top_p if client else None
    if temperature is not None:
        chat["temperature"] = temperature
    if top_p is not None:
        chat["topP"] = top_p
    if req.top_k is not None and client:
        chat["topK"] = req.top_k
    if req.stream:
        chat["isStream"] = True
        chat["streamOptions"] = {"isIncludeUsage": True}
    return OciRequest(
        body=body,
        stream=req.stream,
        max_tokens=max_tokens,
        stop_sequences=tuple(s for s in (req.stop_sequences or []) if s),
        temperature=temperature,
        top_p=top_p,
    )


def _short(name: str) -> str:
    # client text in an error message: bounded
    return name if len(name) <= 64 else name[:61] + "..."
