"""Anthropic Messages request -> OCI ChatDetails in COHERE (v1) format. Pure.

Contract: :func:`to_oci_cohere` returns an :class:`~app.translate.request.OciRequest` like
:func:`app.translate.to_oci_generic.to_oci_generic`, for models whose spec format is COHERE
(oci-genai-wire.md §6), and raises :class:`~app.errors.InvalidRequest` the same way. Shared
pieces come from :mod:`app.translate.request`. The mapping: the system prompt becomes
``preambleOverride``; the last user turn becomes ``message`` (or, when it answers tool calls,
top-level ``toolResults`` with an empty ``message``); earlier turns become ``chatHistory`` USER /
CHATBOT / TOOL entries. Cohere tool calls carry no id, so tool results are matched back to their
call by the ``tool_use`` id the client echoes, which this module looks up in the history.
COHERE v1 has no tool choice: ``tool_choice: none`` leaves the tools out; ``auto``/``any``/
``tool`` send them all.

History repair (profile ``cohere_history_repair``, RW §5): Cohere v1 rejects a TOOL entry that a
USER entry follows, and Claude Code produces exactly that whenever text (a system reminder, the
user's next words) comes with tool results. A CHATBOT entry :data:`REPAIR_TEXT` goes between
them. langchain-oci's fix repeats the tool output in that entry; the gateway does not: it would
send every tool result twice and show the model words it never said. ``isForceSingleStep`` is
not sent (only acedergren sets it; langchain-oci, Oracle's own client, does not by default).
"""

from __future__ import annotations

from typing import Any

from app.anthropic.models import (
    DocumentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    has_text,
    text,
)
from app.catalog import Resolved
from app.catalog.profiles import ModelProfile
from app.errors import InvalidRequest
from app.translate import content as c
from app.translate.cohere_params import cohere_parameter_definitions
from app.translate.request import (
    AnthropicRequest,
    OciRequest,
    custom_tools,
    oci_request,
    schema_instruction,
    structured_output,
    tool_schema,
)


def to_oci_cohere(req: AnthropicRequest, resolved: Resolved, compartment_id: str) -> OciRequest:
    spec = resolved.spec
    systems = c.system_texts(req)
    schema = structured_output(req)
    if schema is not None and not spec.has("structured_output"):
        systems.append(schema_instruction(schema))

    calls_by_id: dict[str, dict[str, Any]] = {}
    turns = [m for m in req.messages if m.role != "system"]
    history: list[dict[str, Any]] = []
    for msg in turns[:-1]:
        history.extend(_history_entries(msg, calls_by_id, resolved.name))

    message = ""
    tool_results: list[dict[str, Any]] = []
    if turns:
        last = turns[-1]
        if last.role == "assistant":
            history.extend(_history_entries(last, calls_by_id, resolved.name))
        else:
            texts, tool_results = _user_parts(last.content, calls_by_id, resolved.name)
            message = "\n\n".join(texts)
    history = repair_history(history, bool(message), spec.profile)

    chat: dict[str, Any] = {"apiFormat": "COHERE", "message": message}
    if history:
        chat["chatHistory"] = history
    if tool_results:
        chat["toolResults"] = tool_results
    if systems:
        chat["preambleOverride"] = "\n\n".join(systems)
    tools = custom_tools(req, spec)
    if req.tool_choice is not None and req.tool_choice.type == "none":
        tools = []  # COHERE v1 has no tool choice: not offering the tools is how to say "none"
    if tools:
        chat["tools"] = [
            {
                "name": t.name,
                "description": t.description or t.name,
                "parameterDefinitions": tool_schema(i, t, cohere_parameter_definitions),
            }
            for i, t in tools
        ]
    if schema is not None and spec.has("structured_output"):
        chat["responseFormat"] = {"type": "JSON_OBJECT", "schema": schema}
    return oci_request(req, spec, compartment_id, chat, max_tokens_field="maxTokens")


#: The CHATBOT entry's message between a TOOL entry and a USER entry. A single space: what
#: langchain-oci sends for a CHATBOT turn without text (providers/cohere.py), the least the model
#: can read as something it said.
REPAIR_TEXT = " "


def repair_history(
    history: list[dict[str, Any]], user_message: bool, profile: ModelProfile
) -> list[dict[str, Any]]:
    """``history`` with a CHATBOT entry after every TOOL entry that a USER entry follows (the
    current ``message`` counts as the USER entry after the last), for profiles that need it."""
    if not profile.cohere_history_repair or not history:
        return history
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(history):
        out.append(entry)
        if entry["role"] != "TOOL":
            continue
        following = history[i + 1]["role"] if i + 1 < len(history) else None
        if following == "USER" or (following is None and user_message):
            out.append({"role": "CHATBOT", "message": REPAIR_TEXT})
    return out


def _text_of(content: str | list[Any], model: str) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    texts = []
    for b in content:
        if isinstance(b, TextBlock) and has_text(b.text):
            texts.append(text(b.text))
        elif isinstance(b, ImageBlock):
            c.image_url(b, model, vision=False)  # raises: COHERE v1 takes no images
        elif isinstance(b, DocumentBlock):
            part = c.document_part(b, model, documents=False)
            texts.append(str(part.get("text", "")))
    return texts


def _user_parts(
    content: str | list[Any], calls_by_id: dict[str, dict[str, Any]], model: str
) -> tuple[list[str], list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    if isinstance(content, list):
        for b in content:
            if isinstance(b, ToolResultBlock):
                call = calls_by_id.get(b.tool_use_id)
                if call is None:
                    raise InvalidRequest(
                        f"tool_result {b.tool_use_id!r} does not answer any tool_use in the "
                        "conversation"
                    )
                note = c.image_note(len(c.tool_result_images(b.content)), model, vision=False)
                output = c.tool_result_text(b.content, b.is_error, note)
                results.append({"call": call, "outputs": [{"output": output}]})
        texts = _text_of([b for b in content if not isinstance(b, ToolResultBlock)], model)
    else:
        texts = _text_of(content, model)
    return texts, results


def _history_entries(
    msg: Message, calls_by_id: dict[str, dict[str, Any]], model: str
) -> list[dict[str, Any]]:
    if msg.role == "assistant":
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        if isinstance(msg.content, str):
            texts = [msg.content] if msg.content else []
        else:
            for b in msg.content:
                if isinstance(b, TextBlock) and has_text(b.text):
                    texts.append(text(b.text))
                elif isinstance(b, ToolUseBlock):
                    call = {"name": b.name, "parameters": b.input}
                    calls_by_id[b.id] = call
                    calls.append(call)
        entry: dict[str, Any] = {"role": "CHATBOT", "message": "\n\n".join(texts)}
        if calls:
            entry["toolCalls"] = calls
        return [entry]
    texts, results = _user_parts(msg.content, calls_by_id, model)
    entries: list[dict[str, Any]] = []
    if results:
        entries.append({"role": "TOOL", "toolResults": results})
    if texts:
        entries.append({"role": "USER", "message": "\n\n".join(texts)})
    return entries
