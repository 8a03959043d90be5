"""What the emulator extracts from a validated chat request.

Contract: ``build_context(body, model)`` turns a validated ChatDetails body and its resolved
``ModelInfo`` into a ``ChatContext``: api format, stream flags, and the *last user text*
used for default answers, ``Scenario.match`` routing and inline ``[[scenario:...]]`` markers.

Last user text: GENERIC and COHEREV2 — the TEXT parts of the last USER message joined by a
space; COHERE — the request's ``message``. ``fresh_user_turn`` is true when the request ends
with that user turn (GENERIC/COHEREV2: last message is USER; COHERE: no ``toolResults``), so an
inline marker does not fire again on the follow-up request that carries tool results.
``serving_type`` is ``ON_DEMAND`` or ``DEDICATED`` (the on-demand output cap depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import ModelInfo


@dataclass
class ChatContext:
    model: ModelInfo
    api_format: str
    chat_request: dict[str, Any]
    is_stream: bool
    include_usage: bool
    last_user_text: str
    fresh_user_turn: bool
    serving_type: str = "ON_DEMAND"

    @property
    def model_id(self) -> str:
        return self.model.model_id


def _text_of(message: dict[str, Any]) -> str:
    parts = message.get("content") or []
    return " ".join(p.get("text") or "" for p in parts if p.get("type") == "TEXT")


def _generic_user_text(chat_request: dict[str, Any]) -> tuple[str, bool]:
    messages = chat_request.get("messages") or []
    for message in reversed(messages):
        if message.get("role") == "USER":
            return _text_of(message), messages[-1] is message
    return "", False


def build_context(body: dict[str, Any], model: ModelInfo) -> ChatContext:
    chat_request = body["chatRequest"]
    api_format = chat_request["apiFormat"]
    if api_format == "COHERE":
        text = chat_request.get("message") or ""
        fresh = not chat_request.get("toolResults")
    else:
        text, fresh = _generic_user_text(chat_request)
    stream_options = chat_request.get("streamOptions") or {}
    return ChatContext(
        model=model,
        api_format=api_format,
        chat_request=chat_request,
        is_stream=bool(chat_request.get("isStream")),
        include_usage=bool(stream_options.get("isIncludeUsage")),
        last_user_text=text,
        fresh_user_turn=fresh,
        serving_type=(body.get("servingMode") or {}).get("servingType", "ON_DEMAND"),
    )
