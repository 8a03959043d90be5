"""Non-streaming chat results (reference §7).

Contract: ``json_body(answer, ctx)`` returns the ChatResult dict OCI sends with
``content-type: application/json``: GENERIC ``chatResponse`` with one choice (message
content / toolCalls / reasoningContent, finishReason) and a detailed ``usage``; COHERE
``chatResponse`` with text, chatHistory, finishReason, toolCalls and usage; COHEREV2
``chatResponse`` (CohereChatResponseV2) with ``id``, ``message`` (role ASSISTANT; ``content``
THINKING then TEXT parts, ``toolPlan``, ``toolCalls`` ``[{id, type: FUNCTION, function: {name,
arguments}}]``), ``finishReason`` (COMPLETE|STOP_SEQUENCE|MAX_TOKENS|TOOL_CALL|...) and usage.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from .answer import Answer
from .cohere_history import answer_history
from .context import ChatContext


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _generic_tool_call(call: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "FUNCTION", "name": call.name, "arguments": call.arguments}
    if call.id is not None:  # Gemini calls come without id
        out = {"id": call.id, **out}
    return out


def _generic_message(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "ASSISTANT"}
    if answer.text or not answer.tool_calls:
        message["content"] = [{"type": "TEXT", "text": answer.text}]
    if answer.tool_calls:
        message["toolCalls"] = [_generic_tool_call(c) for c in answer.tool_calls]
    if answer.reasoning:
        message["reasoningContent"] = answer.reasoning
    return message


def generic_response(answer: Answer) -> dict[str, Any]:
    choice = {"index": 0, "message": _generic_message(answer),
              "finishReason": answer.finish_reason}
    return {"apiFormat": "GENERIC", "timeCreated": _timestamp(), "choices": [choice],
            "usage": answer.usage(detailed=True)}


def cohere_response(answer: Answer, ctx: ChatContext) -> dict[str, Any]:
    calls = [{"name": c.name, "parameters": c.cohere_parameters()} for c in answer.tool_calls]
    body: dict[str, Any] = {
        "apiFormat": "COHERE",
        "text": answer.text,
        "chatHistory": answer_history(ctx.chat_request, answer.text, calls),
        "finishReason": answer.cohere_finish_reason,
    }
    if calls:
        body["toolCalls"] = calls
    body["usage"] = answer.usage(detailed=False)
    return body


def v2_tool_call(call: Any) -> dict[str, Any]:
    return {"id": call.id, "type": "FUNCTION",
            "function": {"name": call.name, "arguments": call.arguments}}


def cohere_v2_response(answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.reasoning:
        content.append({"type": "THINKING", "thinking": answer.reasoning})
    if answer.text or not (answer.tool_calls or answer.reasoning):
        content.append({"type": "TEXT", "text": answer.text})
    message: dict[str, Any] = {"role": "ASSISTANT", "content": content}
    if answer.tool_plan:
        message["toolPlan"] = answer.tool_plan
    if answer.tool_calls:
        message["toolCalls"] = [v2_tool_call(c) for c in answer.tool_calls]
    return {"apiFormat": "COHEREV2", "id": str(uuid.uuid4()), "message": message,
            "finishReason": answer.cohere_v2_finish_reason, "usage": answer.usage(detailed=False)}


def json_body(answer: Answer, ctx: ChatContext) -> dict[str, Any]:
    if answer.style == "cohere":
        chat_response = cohere_response(answer, ctx)
    elif answer.style == "coherev2":
        chat_response = cohere_v2_response(answer)
    else:
        chat_response = generic_response(answer)
    return {"modelId": answer.model_id, "modelVersion": answer.model_version,
            "chatResponse": chat_response}
