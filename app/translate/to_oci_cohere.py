"""Anthropic Messages request -> OCI ChatDetails in COHERE (v1) format. Pure.

Contract: same as :func:`app.translate.to_oci.to_oci`, for models whose ``api_format`` is
COHERE (oci-genai-wire.md §6): the system prompt becomes ``preambleOverride``; the last user turn
becomes ``message`` (or, when it answers tool calls, top-level ``toolResults`` with an empty
``message``); earlier turns become ``chatHistory`` USER / CHATBOT / TOOL entries. Cohere tool
calls carry no id, so tool results are matched back to their call by the ``tool_use`` id the
client echoes, which this module looks up in the history. COHERE v1 has no tool choice:
``tool_choice: none`` leaves the tools out; ``auto``/``any``/``tool`` send them all.
"""

from __future__ import annotations

from typing import Any

from app.anthropic.models import (
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from app.catalog import Resolved
from app.errors import InvalidRequest
from app.translate import content as c
from app.translate.tool_schema import cohere_parameter_definitions


def to_oci_cohere(
    req: MessagesRequest | CountTokensRequest, resolved: Resolved, compartment_id: str
) -> Any:
    from app.translate.to_oci import (
        OciRequest,
        clamp_max_tokens,
        custom_tools,
        schema_instruction,
        serving_mode,
        structured_output,
    )

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

    chat: dict[str, Any] = {"apiFormat": "COHERE", "message": message}
    if history:
        chat["chatHistory"] = history
    if tool_results:
        chat["toolResults"] = tool_results
    if systems:
        chat["preambleOverride"] = "\n\n".join(systems)
    tools = custom_tools(req) if spec.has("tools") else []
    if req.tool_choice is not None and req.tool_choice.type == "none":
        tools = []  # COHERE v1 has no tool choice: not offering the tools is how to say "none"
    if tools:
        chat["tools"] = [
            {
                "name": t.name,
                "description": t.description or t.name,
                "parameterDefinitions": cohere_parameter_definitions(t.input_schema),
            }
            for t in tools
        ]
    if schema is not None and spec.has("structured_output"):
        chat["responseFormat"] = {"type": "JSON_OBJECT", "schema": schema}

    stream = False
    max_tokens = 1
    temperature = top_p = None
    stops: tuple[str, ...] = ()
    if isinstance(req, MessagesRequest):
        stream = req.stream
        max_tokens = clamp_max_tokens(req.max_tokens, spec)
        chat["maxTokens"] = max_tokens
        temperature = spec.temperature if spec.temperature is not None else req.temperature
        if temperature is not None:
            chat["temperature"] = temperature
        if req.top_p is not None:
            chat["topP"] = top_p = req.top_p
        if req.top_k is not None:
            chat["topK"] = req.top_k
        stops = tuple(s for s in (req.stop_sequences or []) if s)
        if stream:
            chat["isStream"] = True
            chat["streamOptions"] = {"isIncludeUsage": True}
    return OciRequest(
        body={
            "compartmentId": compartment_id,
            "servingMode": serving_mode(spec),
            "chatRequest": chat,
        },
        stream=stream,
        max_tokens=max_tokens,
        stop_sequences=stops,
        tool_names=tuple(t.name for t in tools),
        temperature=temperature,
        top_p=top_p,
    )


def _text_of(content: str | list[Any], model: str) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    texts = []
    for b in content:
        if isinstance(b, TextBlock) and b.text:
            texts.append(b.text)
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
                text = c.tool_result_text(b.content, b.is_error, note)
                results.append({"call": call, "outputs": [{"output": text}]})
        texts = _text_of([b for b in content if not isinstance(b, ToolResultBlock)], model)
    else:
        texts = _text_of(content, model)
    return texts, results


def _history_entries(
    msg: Any, calls_by_id: dict[str, dict[str, Any]], model: str
) -> list[dict[str, Any]]:
    if msg.role == "assistant":
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        if isinstance(msg.content, str):
            texts = [msg.content] if msg.content else []
        else:
            for b in msg.content:
                if isinstance(b, TextBlock) and b.text:
                    texts.append(b.text)
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
