"""Deterministic token counts of the emulator (what gateway tests compare usage against).

Every count is built from ``ceil4(s) = ceil(len(s) / 4)`` where ``len`` counts Python
characters (code points) and each string is rounded up on its own.

promptTokens
    GENERIC: for every message ``4``, plus ``ceil4(text)`` for each TEXT part, ``85`` for each
    IMAGE part (DOCUMENT/VIDEO/AUDIO parts count 0), ``ceil4(arguments)`` for each assistant
    tool call, ``ceil4(reasoningContent)`` of assistant messages; plus, for every tool
    definition, ``ceil4(compact_json(tool))``.
    COHERE: ``4 + ceil4(preambleOverride)`` when a preamble is given; for every chatHistory
    entry ``4 + ceil4(message)`` plus ``ceil4(compact_json(x))`` for each of its toolCalls /
    toolResults; ``4 + ceil4(message)`` for the current message; ``ceil4(compact_json(x))``
    for each top-level toolResult, tool and document.
    COHEREV2: for every message ``4``, plus ``ceil4(text)`` for each TEXT part,
    ``ceil4(thinking)`` for each THINKING part, ``85`` for each IMAGE_URL part,
    ``ceil4(compact_json(document))`` for each DOCUMENT part, ``ceil4(toolPlan)`` and
    ``ceil4(function.arguments)`` for each tool call of assistant messages; plus
    ``ceil4(compact_json(x))`` for each tool and top-level document.
    ``compact_json(x) = json.dumps(x, separators=(",", ":"), ensure_ascii=False)`` of the
    object exactly as received (key order preserved).

completionTokens
    ``max(1, ceil4(text + reasoning + tool plan + all tool arguments))`` — the generated text
    after any stop-sequence cut, the reasoning text, the COHEREV2 tool plan, and the tool-call
    argument strings as emitted (GENERIC and COHEREV2 ``arguments``; COHERE
    ``compact_json(parameters)``), concatenated.

reasoningTokens
    ``ceil4(reasoning)`` (reported in ``completionTokensDetails.reasoningTokens``).

totalTokens = promptTokens + completionTokens. cachedTokens is always 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .jsonutil import compact

MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 85


def ceil4(text: str | None) -> int:
    return (len(text or "") + 3) // 4


def _generic_message_tokens(message: dict[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + ceil4(message.get("reasoningContent"))
    for part in message.get("content") or []:
        if part.get("type") == "TEXT":
            total += ceil4(part.get("text"))
        elif part.get("type") == "IMAGE":
            total += IMAGE_TOKENS
    for call in message.get("toolCalls") or []:
        total += ceil4(call.get("arguments"))
    return total


def _json_tokens(items: Iterable[Any] | None) -> int:
    return sum(ceil4(compact(item)) for item in items or [])


def _cohere_history_tokens(entry: dict[str, Any]) -> int:
    return (MESSAGE_OVERHEAD + ceil4(entry.get("message"))
            + _json_tokens(entry.get("toolCalls")) + _json_tokens(entry.get("toolResults")))


def generic_prompt_tokens(chat_request: dict[str, Any]) -> int:
    messages = chat_request.get("messages") or []
    return (sum(_generic_message_tokens(m) for m in messages)
            + _json_tokens(chat_request.get("tools")))


def cohere_prompt_tokens(chat_request: dict[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + ceil4(chat_request.get("message"))
    if chat_request.get("preambleOverride"):
        total += MESSAGE_OVERHEAD + ceil4(chat_request["preambleOverride"])
    total += sum(_cohere_history_tokens(e) for e in chat_request.get("chatHistory") or [])
    for key in ("toolResults", "tools", "documents"):
        total += _json_tokens(chat_request.get(key))
    return total


def _v2_message_tokens(message: dict[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + ceil4(message.get("toolPlan"))
    for part in message.get("content") or []:
        kind = part.get("type")
        if kind == "TEXT":
            total += ceil4(part.get("text"))
        elif kind == "THINKING":
            total += ceil4(part.get("thinking"))
        elif kind == "IMAGE_URL":
            total += IMAGE_TOKENS
        elif kind == "DOCUMENT":
            total += ceil4(compact(part.get("document")))
    for call in message.get("toolCalls") or []:
        total += ceil4((call.get("function") or {}).get("arguments"))
    return total


def cohere_v2_prompt_tokens(chat_request: dict[str, Any]) -> int:
    return (sum(_v2_message_tokens(m) for m in chat_request.get("messages") or [])
            + _json_tokens(chat_request.get("tools")) + _json_tokens(chat_request.get("documents")))


def prompt_tokens(chat_request: dict[str, Any]) -> int:
    if chat_request.get("apiFormat") == "COHERE":
        return cohere_prompt_tokens(chat_request)
    if chat_request.get("apiFormat") == "COHEREV2":
        return cohere_v2_prompt_tokens(chat_request)
    return generic_prompt_tokens(chat_request)


def completion_tokens(text: str, reasoning: str, tool_arguments: Iterable[str]) -> int:
    return max(1, ceil4(text + reasoning + "".join(tool_arguments)))


def usage_dict(prompt: int, completion: int, reasoning: int, detailed: bool) -> dict[str, Any]:
    """OCI Usage object; ``detailed`` adds completion/prompt token details."""
    usage: dict[str, Any] = {
        "completionTokens": completion,
        "promptTokens": prompt,
        "totalTokens": prompt + completion,
    }
    if detailed:
        usage["completionTokensDetails"] = {
            "reasoningTokens": reasoning,
            "acceptedPredictionTokens": 0,
            "rejectedPredictionTokens": 0,
        }
        usage["promptTokensDetails"] = {"cachedTokens": 0}
    return usage
