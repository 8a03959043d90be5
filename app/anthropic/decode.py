"""Request bodies -> request models in one msgspec pass, and msgspec's errors as 400 text.

Contract: :func:`decode_request` turns body bytes into a
:class:`~app.anthropic.models.MessagesRequest` or
:class:`~app.anthropic.models.CountTokensRequest`, or raises :class:`RequestError` naming the
field (``messages.1.content.0: Expected `str`, got `int```). A block or image source of a type
the models do not know is kept (``UnknownBlock`` / ``OtherSource``) at the price of a second
pass, because msgspec's tagged unions have no catch-all member.

With a :class:`~app.anthropic.conversation_cache.ConversationCache`, a body that starts with a
kept conversation prefix is decoded without it (only the new messages and the other fields) and
the prefix's messages are put in front; any error there sends the whole body down the one-pass
path, so a bad request gets exactly the error it always did.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from app.anthropic.conversation_cache import ConversationCache
from app.anthropic.models import (
    ASCII_BODY,
    OTHER_BLOCKS,
    CountTokensRequest,
    MessagesRequest,
    RequestBase,
    error_path,
)

_R = TypeVar("_R", bound=RequestBase)


class RequestError(ValueError):
    """The body is not a valid request; the message names the field (an HTTP 400)."""


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    MessagesRequest: msgspec.json.Decoder(MessagesRequest),
    CountTokensRequest: msgspec.json.Decoder(CountTokensRequest),
}
_KNOWN_BLOCKS = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    *(c.type for c in OTHER_BLOCKS),
}
_KNOWN_SOURCES = {"base64", "url", "file"}


def decode_request(body: bytes, model_cls: type[_R], cache: ConversationCache | None = None) -> _R:
    """``body`` as ``model_cls``, or :class:`RequestError`. One msgspec pass; a body with a
    block or image source of an unknown type takes a second, slower one (see
    :func:`_with_unknown_types`). With ``cache`` (on when ``max_bytes > 0``), a conversation's
    messages seen before are not decoded again, and the body's prefix is kept for its next
    turn."""
    decoder = _DECODERS[model_cls]
    token = ASCII_BODY.set(body.isascii())
    try:
        if cache is None or not cache.max_bytes:
            return _decode(decoder, body)
        split = cache.split(body)
        if split is not None:
            prefix, rest = split
            ASCII_BODY.set(rest.isascii())
            try:
                tail = decoder.decode(rest)
            except (msgspec.ValidationError, msgspec.DecodeError):
                tail = None  # the one-pass decode below says what is wrong, with its path
            if tail is not None:
                cache.extend(prefix, body, rest, tail.messages)
                return msgspec.structs.replace(tail, messages=[*prefix.messages, *tail.messages])
            ASCII_BODY.set(body.isascii())
        req = _decode(decoder, body)
        cache.keep(body, req.messages)
        return req
    finally:
        ASCII_BODY.reset(token)


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        message = str(err)
        if message.startswith("Expected `object`, got"):  # no path: the body itself
            raise RequestError("the request body must be a JSON object") from None
        if "Invalid value" not in message:
            raise RequestError(describe(message)) from None
    except msgspec.DecodeError as err:
        raise RequestError(f"the request body is not valid JSON: {err}") from None
    # a tag msgspec does not know: wrap unknown types, then decode again
    try:
        return decoder.decode(msgspec.json.encode(_with_unknown_types(body)))
    except msgspec.ValidationError as err:
        raise RequestError(describe(str(err))) from None
    except msgspec.DecodeError as err:  # invalid UTF-8 the first pass skipped inside a text
        raise RequestError(f"the request body is not valid JSON: {err}") from None


def _with_unknown_types(body: bytes) -> Any:
    """The body with every block / image source of an unknown ``type`` wrapped as
    ``{"type": "__unknown__" | "__other__", "original_type": t, ...}``: msgspec's tagged unions
    have no catch-all member. Only requests with a future block type pay this."""
    data = msgspec.json.decode(body)

    def block(b: Any) -> Any:
        if not isinstance(b, dict):
            return b
        t = b.get("type")
        if t == "tool_result" and isinstance(b.get("content"), list):
            b["content"] = [block(i) for i in b["content"]]
        if t == "image" and isinstance(b.get("source"), dict):
            src = b["source"]
            if src.get("type") not in _KNOWN_SOURCES:
                b["source"] = {"type": "__other__", "original_type": str(src.get("type"))}
        if isinstance(t, str) and t not in _KNOWN_BLOCKS:
            rest = {k: v for k, v in b.items() if k != "type"}
            return {"type": "__unknown__", "original_type": t, "fields": rest}
        return b

    if isinstance(data, dict):
        for msg in data.get("messages") or ():
            if isinstance(msg, dict) and isinstance(msg.get("content"), list):
                msg["content"] = [block(b) for b in msg["content"]]
        if isinstance(data.get("system"), list):
            data["system"] = [block(b) for b in data["system"]]
    return data


def describe(message: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.messages[1].content``` as
    ``messages.1.content: Expected `str`, got `int```."""
    what, sep, _ = message.rpartition(" - at `")
    if not sep:
        return message
    loc = error_path(message).lstrip(".")
    inner = _INNER.search(what)
    if inner:  # an error inside a tool result's list, from its own decoder
        what, loc = what[: inner.start()], f"{loc}.{inner.group(1)}"
    return f"{loc}: {what}" if loc else what


_INNER = re.compile(r" \(at (content[\w.]*)\)$")
