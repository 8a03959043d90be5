"""Anthropic Messages request -> OCI ChatDetails in COHEREV2 format. Pure: no I/O, no metrics.

Contract: :func:`to_oci_coherev2` returns an :class:`~app.translate.request.OciRequest` like
:func:`app.translate.to_oci_generic.to_oci_generic`, for models whose spec format is COHEREV2
(``cohere.command-a-vision*``, ``cohere.command-a-reasoning*``, or ``api_format: COHEREV2``),
and raises :class:`~app.errors.InvalidRequest` the same way. The body is the SDK's
``CohereChatRequestV2`` (reference/oci-genai-wire.md Appendix A): ``messages[]`` of SYSTEM /
USER / ASSISTANT / TOOL with content parts TEXT / IMAGE_URL / THINKING, ``tools[{type:
FUNCTION, function{name, description, parameters}}]``, ``toolsChoice``, ``thinking``,
``responseFormat``. Limits, sampling, stream flags and the envelope come from
:func:`app.translate.request.oci_request`; stop sequences stay gateway-side as for every format.

Decisions (the why):
- V2 tool calls have ids and TOOL messages a ``toolCallId`` (unlike COHERE v1), so tool_use /
  tool_result map one to one, by the client's own ids.
- An assistant turn with tool calls sends its text as ``toolPlan``: that is where Cohere puts
  the words before a call (the answer side turns ``toolPlan`` into the text block before the
  tool_use blocks, so the round trip is symmetric). ``content`` stays a list (the SDK marks it
  required), holding only the turn's thinking then.
- Thinking blocks in the history go back as THINKING parts only to a model with the
  ``reasoning`` capability (Cohere wants a reasoning model's thinking back with its tool calls;
  a model that never thinks gets none it did not write). Signatures are ours and not sent.
- ``thinking`` maps to ``thinking{type: ENABLED|DISABLED, tokenBudget}`` for reasoning models
  only; the budget is kept below ``maxTokens`` (a budget the output limit cannot hold would
  leave no room for the answer). Without ``thinking`` the model's default applies.
- ``tool_choice``: ``any`` -> ``REQUIRED``, ``none`` -> ``NONE``; V2 cannot name a function, so
  ``tool: X`` offers only X with ``REQUIRED``. V2 has no parallel-calls switch.
- Images (base64 data URLs, or the client's https URL: ``CohereImageUrlV2.url`` is "a base64
  data URI or a web URL") need the ``vision`` capability; images inside tool results go in a
  USER message right after the TOOL messages, as for GENERIC (TOOL content is text). V2
  ``DOCUMENT`` parts are Cohere's RAG snippets, not files: text documents go inline as TEXT,
  PDFs are a 400.
"""

from __future__ import annotations

from typing import Any

from app.anthropic.models import (
    MessagesRequest,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    has_text,
    text,
)
from app.catalog import ModelSpec, Resolved
from app.translate import content as c
from app.translate import wire
from app.translate.request import (
    AnthropicRequest,
    OciRequest,
    clamp_max_tokens,
    custom_tools,
    oci_request,
    output_schema,
    schema_instruction,
    structured_output,
    tool_schema,
)
from app.translate.to_oci_generic import sanitized_parameters, user_messages
from app.translate.tool_schema import sanitize_schema


def to_oci_coherev2(req: AnthropicRequest, resolved: Resolved, compartment_id: str) -> OciRequest:
    spec = resolved.spec
    vision = spec.has("vision")
    reasoning = spec.has("reasoning")
    name = resolved.name

    systems = c.system_texts(req)
    schema = structured_output(req)
    native_schema = schema is not None and spec.has("structured_output")
    if schema is not None and not native_schema:
        systems.append(schema_instruction(schema))

    messages: list[dict[str, Any]] = []
    if systems:
        messages.append({"role": "SYSTEM", "content": [_text("\n\n".join(systems))]})
    for msg in req.messages:
        if msg.role == "system":
            continue
        if isinstance(msg.content, str):
            role = "USER" if msg.role == "user" else "ASSISTANT"
            messages.append({"role": role, "content": [_text(msg.content)]})
        elif msg.role == "assistant":
            _assistant(msg.content, messages, reasoning)
        else:
            # a PDF is a 400: a V2 DOCUMENT is a retrieval snippet, not a file part
            user_messages(msg.content, messages, name, vision, False, image_type="IMAGE_URL")

    chat: dict[str, Any] = {"apiFormat": "COHEREV2", "messages": messages}
    tools = custom_tools(req, spec)
    choice = req.tool_choice
    if tools and choice is not None and choice.type == "tool":
        forced = [(i, t) for i, t in tools if t.name == choice.name]
        # a forced server tool was left out: the model answers freely (as for GENERIC)
        tools, choice_value = (forced, "REQUIRED") if forced else (tools, None)
    else:
        choice_value = {"any": "REQUIRED", "none": "NONE"}.get(choice.type) if choice else None
    if tools:
        chat["tools"] = [
            {
                "type": "FUNCTION",
                "function": {
                    "name": t.name,
                    "description": t.description or t.name,
                    "parameters": tool_schema(i, t, lambda s: sanitized_parameters(s, False)),
                },
            }
            for i, t in tools
        ]
        if choice_value:
            chat["toolsChoice"] = choice_value
    thinking = thinking_v2(req, spec) if reasoning else None
    if thinking is not None:
        chat["thinking"] = thinking
    if native_schema and schema is not None:
        chat["responseFormat"] = {
            "type": "JSON_OBJECT",
            "schema": output_schema(schema, sanitize_schema),
        }
    return oci_request(req, spec, compartment_id, chat, max_tokens_field="maxTokens")


def thinking_v2(req: AnthropicRequest, spec: ModelSpec) -> dict[str, Any] | None:
    """Anthropic ``thinking`` -> ``CohereThinkingV2`` (None: leave the model's default)."""
    thinking = req.thinking
    if thinking is None:
        return None
    if thinking.type == "disabled":
        return {"type": "DISABLED"}
    if thinking.type not in ("enabled", "adaptive"):
        return None  # a kind this gateway does not know: the model's default
    out: dict[str, Any] = {"type": "ENABLED"}
    budget = thinking.budget_tokens
    if thinking.type == "enabled" and budget and budget > 0:
        if isinstance(req, MessagesRequest):
            budget = min(budget, clamp_max_tokens(req.max_tokens, spec) - 1)
        if budget >= 1:
            out["tokenBudget"] = budget
    return out


def _text(text: str) -> dict[str, Any]:
    return {"type": "TEXT", "text": text}


def _assistant(blocks: list[Any], out: list[dict[str, Any]], reasoning: bool) -> None:
    thinking: list[dict[str, Any]] = []
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            if has_text(b.text):
                texts.append(text(b.text))
        elif isinstance(b, ToolUseBlock):
            calls.append(
                {
                    "id": b.id,
                    "type": "FUNCTION",
                    "function": {"name": b.name, "arguments": wire.encode(b.input).decode()},
                }
            )
        elif isinstance(b, ThinkingBlock) and reasoning and b.thinking:
            thinking.append({"type": "THINKING", "thinking": b.thinking})
        # redacted_thinking / server-tool echoes: not forwarded
    if not texts and not calls and not thinking:
        return
    msg: dict[str, Any] = {"role": "ASSISTANT"}
    if calls:
        msg["content"] = thinking
        if texts:
            msg["toolPlan"] = "\n\n".join(texts)
        msg["toolCalls"] = calls
    else:
        msg["content"] = [*thinking, *(_text(t) for t in texts)]
    out.append(msg)
