"""The ``chatHistory`` a COHERE (v1) answer echoes back (reference §7, §8.3).

Contract: ``answer_history(chat_request, text, tool_calls)`` = the request's chatHistory,
then the current USER message (when non-empty), a TOOL entry for top-level toolResults
(when present), and the CHATBOT reply with its toolCalls.
"""

from __future__ import annotations

from typing import Any


def answer_history(chat_request: dict[str, Any], text: str,
                   tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    history = list(chat_request.get("chatHistory") or [])
    if chat_request.get("message"):
        history.append({"role": "USER", "message": chat_request["message"]})
    if chat_request.get("toolResults"):
        history.append({"role": "TOOL", "toolResults": chat_request["toolResults"]})
    reply: dict[str, Any] = {"role": "CHATBOT", "message": text}
    if tool_calls:
        reply["toolCalls"] = tool_calls
    history.append(reply)
    return history
