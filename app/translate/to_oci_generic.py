"""Anthropic Messages request -> OCI ChatDetails in GENERIC format. Pure: no I/O, no metrics.

Contract: :func:`to_oci_generic` returns an :class:`~app.translate.request.OciRequest` whose
``body`` is the exact JSON object to sign and send (oci-genai-wire.md §4, §5, §13), for every
model whose spec format is GENERIC; it raises :class:`~app.errors.InvalidRequest` (a 400) for
content the model can never take (an image without vision, a malformed tool schema, …). The
pieces shared with COHERE (limits, sampling, tools filter, structured output, envelope) come
from :mod:`app.translate.request`; :func:`app.translate.to_oci.to_oci` picks the format.

Decisions (the why):
- ``role: system`` messages are folded into the leading SYSTEM message: every OCI family accepts
  one system message first; not all accept one mid-conversation.
- ``stop_sequences`` are matched by the gateway, not sent as OCI ``stop``: OCI drops the stop
  string from the output and reports a plain ``stop`` finish, so a match could never be reported
  as ``stop_reason: stop_sequence``. The stream translator cuts the text and the service cancels
  the upstream call.
- Thinking blocks in history are not forwarded (OCI cannot verify them and has no field for
  them); server tools and unknown tool types are left out (peers.md #1).
- Images inside tool results are sent in a USER message right after the TOOL messages (with the
  user's own blocks of that turn), because OCI TOOL messages are text for most families; the TOOL
  text says so. A model without vision gets a placeholder in the TOOL text instead: an agent's
  Read of a PNG must not fail the whole turn.
- Per-model rules come from the spec's profile (:mod:`app.catalog.profiles`), read once per
  request: ``reasoningEffort`` only for ``reasoning_effort`` models (Grok mostly rejects it),
  ``pair_tool_calls`` (Gemini: N parallel calls become N ASSISTANT(1 call) -> TOOL pairs) and
  ``tool_only_text_part`` (Gemini: an ASSISTANT turn with tool calls and no text gets the TEXT
  part :data:`TOOL_ONLY_TEXT`), ``gemini_schema`` for the schema sanitiser.
"""

from __future__ import annotations

from typing import Any

from app.anthropic.conversation_cache import MEMO
from app.anthropic.models import (
    DocumentBlock,
    ImageBlock,
    JsonText,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    has_text,
)
from app.catalog import ModelSpec, Resolved
from app.errors import InvalidRequest
from app.translate import content as c
from app.translate import wire
from app.translate.request import (
    AnthropicRequest,
    OciRequest,
    custom_tools,
    oci_request,
    output_schema,
    schema_instruction,
    structured_output,
    tool_schema,
)
from app.translate.tokens import Counted
from app.translate.tool_schema import sanitize_schema

_EFFORT = {
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
    "minimal": "MINIMAL",
    "none": "NONE",
}


#: The TEXT part of an ASSISTANT turn that has tool calls but no text, for profiles with
#: ``tool_only_text_part`` (Gemini: OCI's backend throws a NullPointerException -> HTTP 500 on
#: such a turn, langchain-oracle #78/#79). "." is the text langchain-oci verified live; an
#: empty or whitespace-only part is what Google rejects as an empty text parameter. It is one
#: token of the model's own past turn, never shown to the client: the least that can leak.
TOOL_ONLY_TEXT = "."


def reasoning_effort(req: AnthropicRequest, spec: ModelSpec) -> str | None:
    """``thinking`` / ``output_config.effort`` -> OCI ``reasoningEffort`` for models that take it.

    Only a profile with ``reasoning_effort`` receives the field: most Grok models reason but
    answer 400 "does not support parameter reasoningEffort" (RW §1), and Claude Code sends
    ``thinking`` on every main turn.
    """
    if not spec.profile.reasoning_effort:
        return None
    thinking = req.thinking
    effort = req.output_config.effort if req.output_config else None
    if thinking is not None and thinking.type == "disabled":
        return None
    if effort:
        mapped = _EFFORT.get(effort.lower())
        if mapped:
            return mapped
    if thinking is None:
        return None
    if thinking.type == "enabled":
        budget = thinking.budget_tokens or 0
        if budget < 4096:
            return "LOW"
        if budget < 16384:
            return "MEDIUM"
        return "HIGH"
    if thinking.type == "adaptive":
        return "MEDIUM"
    return None


def to_oci_generic(req: AnthropicRequest, resolved: Resolved, compartment_id: str) -> OciRequest:
    spec = resolved.spec
    profile = spec.profile
    gemini = profile.gemini_schema
    vision = profile.vision
    documents = profile.documents
    name = resolved.name

    systems = c.system_texts(req)
    schema = structured_output(req)
    native_schema = schema is not None and profile.structured_output
    if schema is not None and not native_schema:
        systems.append(schema_instruction(schema))

    messages: list[dict[str, Any]] = []
    if systems:
        messages.append(
            {"role": "SYSTEM", "content": [{"type": "TEXT", "text": "\n\n".join(systems)}]}
        )
    for msg in req.messages:
        if msg.role == "system":
            continue
        content = msg.content
        if isinstance(content, str):
            role = "USER" if msg.role == "user" else "ASSISTANT"
            messages.append({"role": role, "content": [{"type": "TEXT", "text": content}]})
            continue
        memo: dict[Any, list[dict[str, Any]]] | None = msg.__dict__.get(MEMO)
        if memo is not None:  # a kept conversation's message: translated once per context
            key = _context(msg.role, content, messages, name, vision, documents)
            done = memo.get(key)
            if done is not None:
                messages.extend(done)
                continue
            start = len(messages)
        if msg.role == "assistant":
            _assistant(content, messages)
        else:
            user_messages(
                _results_in_call_order(content, messages), messages, name, vision, documents
            )
        if memo is not None:  # each dict keeps its share of the estimate once counted
            messages[start:] = memo[key] = [Counted(m) for m in messages[start:]]
    if profile.pair_tool_calls:
        messages = pair_tool_calls(messages)
    if profile.tool_only_text_part:
        messages = [
            {**m, "content": [{"type": "TEXT", "text": TOOL_ONLY_TEXT}]}
            if m["role"] == "ASSISTANT" and "content" not in m
            else m
            for m in messages
        ]

    chat: dict[str, Any] = {"apiFormat": "GENERIC", "messages": messages}
    tools = custom_tools(req, spec)
    if tools:
        chat["tools"] = [
            {
                "type": "FUNCTION",
                "name": t.name,
                "description": t.description or t.name,
                "parameters": tool_schema(i, t, lambda s: sanitized_parameters(s, gemini)),
            }
            for i, t in tools
        ]
        choice = _tool_choice(req, {t.name for _, t in tools})
        if choice is not None:
            chat["toolChoice"] = choice
        if req.tool_choice is not None and req.tool_choice.disable_parallel_tool_use:
            chat["isParallelToolCalls"] = False
    effort = reasoning_effort(req, spec)
    if effort:
        chat["reasoningEffort"] = effort
    if native_schema and schema is not None:
        chat["responseFormat"] = {
            "type": "JSON_SCHEMA",
            "jsonSchema": {
                "name": "response",
                "schema": output_schema(schema, lambda s: sanitize_schema(s, gemini=gemini)),
            },
        }
    return oci_request(req, spec, compartment_id, chat, max_tokens_field=spec.max_tokens_field)


def _context(
    role: str,
    blocks: list[Any],
    out: list[dict[str, Any]],
    model: str,
    vision: bool,
    documents: bool,
) -> tuple[Any, ...]:
    """What a message's translation depends on besides the message: nothing for an assistant
    turn; for a user turn the model's name and capabilities (image notes, documents) and, with
    two blocks or more, the order of the calls its results answer (_results_in_call_order)."""
    if role == "assistant":
        return ()
    order = None
    if len(blocks) >= 2 and out and out[-1].get("role") == "ASSISTANT":
        calls = out[-1].get("toolCalls")
        if calls:
            order = tuple(call["id"] for call in calls)
    return (model, vision, documents, order)


_SCHEMA_CACHE: dict[tuple[bytes, bool], dict[str, Any]] = {}


def sanitized_parameters(schema: dict[str, Any] | None, gemini: bool) -> dict[str, Any]:
    """``sanitize_schema`` memoised on the schema's JSON text.

    Claude Code sends the same ~27 tool schemas on every turn; sanitising them was ~90% of
    the translation time (390 us per turn). The cached dicts are shared: nothing downstream
    mutates them (they are only serialised).
    """
    key = (wire.encode(schema), gemini)
    hit = _SCHEMA_CACHE.get(key)
    if hit is None:
        if len(_SCHEMA_CACHE) >= 2048:  # bounded: schemas come from clients
            _SCHEMA_CACHE.clear()
        hit = _SCHEMA_CACHE[key] = sanitize_schema(schema, gemini=gemini)
    return hit


def _tool_choice(req: AnthropicRequest, available: set[str]) -> dict[str, str] | None:
    tc = req.tool_choice
    if tc is None:
        return None
    if tc.type == "auto":
        return {"type": "AUTO"}
    if tc.type == "any":
        return {"type": "REQUIRED"}
    if tc.type == "none":
        return {"type": "NONE"}
    if tc.name in available:
        return {"type": "FUNCTION", "name": tc.name}
    # the forced tool was a server tool we left out: let the model answer freely
    return {"type": "AUTO"}


def _assistant(blocks: list[Any], out: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            if has_text(b.text):
                parts.append({"type": "TEXT", "text": b.text})
        elif isinstance(b, ToolUseBlock):
            calls.append(
                {
                    "id": b.id,
                    "type": "FUNCTION",
                    "name": b.name,
                    "arguments": wire.encode(b.input).decode(),
                }
            )
        # thinking / redacted_thinking / server-tool echoes: not forwarded
    if not parts and not calls:
        return
    msg: dict[str, Any] = {"role": "ASSISTANT"}
    if parts:
        msg["content"] = parts
    if calls:
        msg["toolCalls"] = calls
    out.append(msg)


def pair_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """N parallel calls answered by N TOOL messages -> N ASSISTANT(1 call) -> TOOL pairs.

    Gemini on OCI rejects a turn of N function calls followed by N function responses (it
    wants 1:1 call/response turns; langchain-oracle PR #111 ``flatten_parallel_tool_calls``).
    The assistant's text stays on the first call's message; results that answer none of the
    calls keep their place after the pairs, and so do the USER parts of that turn.
    """
    out: list[dict[str, Any]] = []
    i, n = 0, len(messages)
    while i < n:
        msg = messages[i]
        calls = msg.get("toolCalls") if msg["role"] == "ASSISTANT" else None
        if not calls or len(calls) < 2:
            out.append(msg)
            i += 1
            continue
        j = i + 1
        results: dict[str, dict[str, Any]] = {}
        orphans: list[dict[str, Any]] = []
        while j < n and messages[j]["role"] == "TOOL":
            tool = messages[j]
            if tool.get("toolCallId") in results:
                orphans.append(tool)
            else:
                results[tool.get("toolCallId", "")] = tool
            j += 1
        for k, call in enumerate(calls):
            single: dict[str, Any] = {"role": "ASSISTANT"}
            if k == 0 and "content" in msg:
                single["content"] = msg["content"]
            single["toolCalls"] = [call]
            out.append(single)
            result = results.pop(call["id"], None)
            if result is not None:
                out.append(result)
        out.extend(results.values())
        out.extend(orphans)
        i = j
    return out


def _results_in_call_order(blocks: list[Any], out: list[dict[str, Any]]) -> list[Any]:
    """Tool results in the order of the calls they answer.

    Claude Code returns parallel results in the order the tools *finished*; OpenAI-style
    backends match by id, but a backend that pairs calls and results by position would mix
    them up, so the TOOL messages follow the assistant's ``toolCalls`` order. Other blocks keep
    their place after the results.
    """
    if len(blocks) < 2 or not out or out[-1].get("role") != "ASSISTANT":
        return blocks  # one block has no order to fix (an agent's turn: one result)
    if not out[-1].get("toolCalls"):
        return blocks
    order = {call["id"]: i for i, call in enumerate(out[-1]["toolCalls"])}
    results = [b for b in blocks if isinstance(b, ToolResultBlock)]
    if len(results) < 2:
        return blocks
    results.sort(key=lambda b: order.get(b.tool_use_id, len(order)))
    return [*results, *(b for b in blocks if not isinstance(b, ToolResultBlock))]


def user_messages(
    blocks: list[Any],
    out: list[dict[str, Any]],
    model: str,
    vision: bool,
    documents: bool,
    image_type: str = "IMAGE",
) -> None:
    """A user turn -> one TOOL message per tool result, then one USER message (the results'
    images first, then the user's own blocks). Shared with COHEREV2, whose messages have the
    same shape except the image part's type (``IMAGE_URL``) and no file documents."""
    parts: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, ToolResultBlock):
            result = b.content
            if type(result) is JsonText and result.chars and not b.is_error:
                # the commonest result (a file read, a command's output): its text as it is,
                # what tool_result_text returns for it, without the calls (a 1 MB turn has ~500),
                # and its JSON bytes as the client sent them (models.py: text passed through)
                out.append(
                    {
                        "role": "TOOL",
                        "toolCallId": b.tool_use_id,
                        "content": [{"type": "TEXT", "text": result}],
                    }
                )
                continue
            images = c.tool_result_images(result)
            note = c.image_note(len(images), model, vision)
            out.append(
                {
                    "role": "TOOL",
                    "toolCallId": b.tool_use_id,
                    "content": [
                        {"type": "TEXT", "text": c.tool_result_text(result, b.is_error, note)}
                    ],
                }
            )
            if vision:
                tool_images.extend(
                    {"type": image_type, "imageUrl": {"url": c.image_url(img, model, vision)}}
                    for img in images
                )
        elif isinstance(b, TextBlock):
            if has_text(b.text):
                parts.append({"type": "TEXT", "text": b.text})
        elif isinstance(b, ImageBlock):
            parts.append({"type": image_type, "imageUrl": {"url": c.image_url(b, model, vision)}})
        elif isinstance(b, DocumentBlock):
            parts.append(c.document_part(b, model, documents))
        elif getattr(b, "type", None) == "tool_use":
            raise InvalidRequest("tool_use blocks are only allowed in assistant messages")
    if tool_images:
        # one USER message: the tool results' images first, then the user's own blocks
        parts = [{"type": "TEXT", "text": "Images from the tool results:"}, *tool_images, *parts]
    if parts:
        out.append({"role": "USER", "content": parts})
