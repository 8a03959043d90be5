"""Texts kept as the client's JSON: :class:`JsonText` and the functions that read and make them.

Contract: a request's text fields (a text block's ``text``, a tool result's string ``content``)
are validated by :func:`check_text` into a :class:`JsonText` -- the JSON string as sent, a view
of the body, plus its length -- and never decoded on the hot path; :func:`text` decodes one
where its content is read, :func:`raw_text` makes one from a ``str``, :func:`join_texts` joins
them still encoded, :func:`has_text` tells an empty one. docs/design.md, "Long conversations".
"""

from __future__ import annotations

from codecs import utf_8_decode
from contextvars import ContextVar

import msgspec
from msgspec import Raw

_QUOTE = ord('"')


class JsonText:
    """A text kept encoded: ``data`` is its JSON string (quotes and escapes as sent; a Raw view
    of the request body, or bytes), ``chars`` its length as written (what the token estimate
    counts: :func:`check_text`). :func:`app.translate.wire.encode` writes ``data`` as it is."""

    __slots__ = ("chars", "data")

    def __init__(self, data: bytes | Raw, chars: int) -> None:
        self.data = data
        self.chars = chars

    def __repr__(self) -> str:
        return f"JsonText({bytes(self.data)[:40]!r}, chars={self.chars})"


def text(value: JsonText | str) -> str:
    """The text of a :class:`JsonText` (a ``str`` is returned as it is)."""
    if isinstance(value, str):
        return value
    return msgspec.json.decode(value.data, type=str)


def raw_text(value: str) -> JsonText:
    """A ``str`` as a :class:`JsonText` (for blocks the gateway makes itself)."""
    data = msgspec.json.encode(value)
    return JsonText(data, len(data.decode()) - 2)


def has_text(value: JsonText | str) -> bool:
    """Whether a text is non-empty."""
    return value.chars > 0 if isinstance(value, JsonText) else bool(value)


def join_texts(pieces: list[JsonText]) -> JsonText:
    """Texts joined with a newline, still encoded: their escaped bodies around ``\\n``."""
    if len(pieces) == 1:
        return pieces[0]
    data = b'"' + b"\\n".join(bytes(p.data)[1:-1] for p in pieces) + b'"'
    return JsonText(data, sum(p.chars for p in pieces) + 2 * (len(pieces) - 1))


#: whether the body being decoded is all ASCII (set by app.anthropic.decode around a decode):
#: then no text needs its UTF-8 checked -- Claude Code's recorded bodies are ASCII
ASCII_BODY: ContextVar[bool] = ContextVar("ascii_body", default=False)


def check_text(value: Raw | JsonText, name: str) -> JsonText:
    """A text field as kept: the JSON string as sent (a view of the body: no copy) and its
    length, without building the ``str``.

    msgspec has checked the JSON's syntax but not the value's type (a Raw is any value) nor
    the UTF-8 inside it, which ``utf_8_decode`` checks unless the whole body is ASCII.
    ``chars`` is the length as written, an escape (``\\n``, ``\\u00e9``) counting as its
    characters: counting escapes exactly took three scans of the bytes (~2.5 ms per MB, more
    than decoding them), and the token estimate is calibrated per model on OCI's counts anyway
    (app/translate/tokens.py). Claude Code's file reads have ~5% escapes."""
    if isinstance(value, JsonText):  # a block the gateway made (raw_text)
        return value
    if len(value) == 0 or memoryview(value)[0] != _QUOTE:
        raise ValueError(f"Expected `str` for `{name}`")
    if ASCII_BODY.get():
        return JsonText(value, len(value) - 2)
    try:
        return JsonText(value, len(utf_8_decode(value)[0]) - 2)
    except UnicodeDecodeError:
        raise ValueError(f"Invalid UTF-8 encoded string in `{name}`") from None
