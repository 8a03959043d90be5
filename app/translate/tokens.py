"""Prompt token estimation, calibrated per model from what OCI reports. No I/O.

Contract: :func:`raw_estimate` counts an OCI chat request body with a tokenizer-free rule
(characters of text / 4, a small per-message overhead, images by their pixel size when the data
URL's header tells it -- Anthropic's ``width * height / 750``, between 85 and 1600 -- else a fixed
1000). A :class:`Calibrator` keeps, per gateway model, a moving ratio between the
``promptTokens`` OCI actually reported and that raw estimate (learned while serving), and
:meth:`Calibrator.estimate` applies it. Used for ``count_tokens``, the ``message_start`` usage,
and the context-window check.

Why no real tokenizer: the served models use different tokenizers (Llama, Grok, Gemini,
Cohere, OpenAI), none of which ships offline for all of them; a calibrated linear estimate
tracks each model's reported counts closely for the text-heavy prompts Claude Code sends
(accuracy is measured in tests and stated in the README).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from app.anthropic.models import JsonText

IMAGE_TOKENS = 1000  #: an image whose size cannot be read (URL, unknown format)
IMAGE_MIN_TOKENS = 85
IMAGE_MAX_TOKENS = 1600  # Anthropic scales larger images down to ~1.15 megapixels
MESSAGE_OVERHEAD = 4
# "output": COHERE toolResults outputs ({"output": text}, as app.translate.to_oci_cohere builds);
# "thinking"/"toolPlan": COHEREV2 THINKING parts and assistant tool plans (to_oci_coherev2)
_TEXT_KEYS = frozenset(
    ("text", "arguments", "message", "preambleOverride", "output", "thinking", "toolPlan")
)
# GENERIC IMAGE parts and COHEREV2 IMAGE_URL parts both carry ``imageUrl``
_IMAGE_TYPES = ("IMAGE", "IMAGE_URL")


class Counted(dict[str, Any]):
    """An OCI message dict that keeps its own share of the estimate once counted: the
    translation memo of a kept conversation's message (app/translate/to_oci_generic.py) makes
    these, and the same dict goes into every later turn's body, so it is walked once."""

    __slots__ = ("counts",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts: tuple[int, int, int] | None = None


def raw_estimate(body: dict[str, Any]) -> int:
    chat = body.get("chatRequest") or {}
    chars = 0
    messages = 0
    stack: list[Any] = [chat.get("chatHistory"), chat.get("toolResults")]
    for key in ("message", "preambleOverride"):
        value = chat.get(key)
        if isinstance(value, str):
            chars += len(value)
            messages += 1
    listed = chat.get("messages")
    if type(listed) is not list:
        stack.append(listed)
        listed = ()
    c, m, image_tokens = _tally(listed, stack)
    chars += c
    messages += m
    tools = chat.get("tools")
    if tools:
        chars += _json_len(tools)
    return (chars + 3) // 4 + messages * MESSAGE_OVERHEAD + image_tokens


def _tally(listed: Any, stack: list[Any], kept: bool = True) -> tuple[int, int, int]:
    """(text characters, messages, image tokens) of the message dicts ``listed`` and of the
    nodes on ``stack``. A :class:`Counted` message adds the counts it keeps (``kept``)."""
    chars = 0
    messages = 0
    image_tokens = 0
    # The commonest shapes first, inline: a message dict whose ``content`` holds plain TEXT
    # parts ({"type": "TEXT", "text": s}, nothing else) and whose ``toolCalls`` are GENERIC's
    # {id, type: FUNCTION, name, arguments}, all strings. Exactly what the walk below would
    # count for them; every other node goes to the walk. A 1 MB turn: 0.55 -> 0.3 ms with the
    # TEXT parts inline (an earlier machine); 0.26 -> 0.18 ms with the calls inline too and the
    # keys a frozenset (today's, scripts/long_cpu.py).
    for msg in listed:
        kind = type(msg)
        if kind is Counted and kept:
            counts = msg.counts
            if counts is None:
                counts = msg.counts = _tally((msg,), [], kept=False)
            chars += counts[0]
            messages += counts[1]
            image_tokens += counts[2]
            continue
        if (kind is not dict and kind is not Counted) or msg.get("type") in _IMAGE_TYPES:
            stack.append(msg)  # not the common shape: the walk counts it
            continue
        if "role" in msg:
            messages += 1
        for k, v in msg.items():
            kind = type(v)
            if kind is list and k == "content":
                for part in v:
                    if type(part) is dict and len(part) == 2 and part.get("type") == "TEXT":
                        text = part.get("text")
                        if type(text) is JsonText:
                            chars += text.chars
                            continue
                        if type(text) is str:
                            chars += len(text)
                            continue
                    stack.append(part)
            elif kind is list and k == "toolCalls":
                for call in v:
                    if (
                        type(call) is dict
                        and len(call) == 4
                        and type(args := call.get("arguments")) is str
                        and call.get("type") == "FUNCTION"
                        and type(call.get("id")) is str
                        and type(call.get("name")) is str
                    ):
                        chars += len(args)
                        continue
                    stack.append(call)
            elif kind is str or kind is JsonText:
                if k in _TEXT_KEYS:
                    chars += len(v) if kind is str else v.chars
            elif isinstance(v, str):  # a str subclass, as the walk counts it
                if k in _TEXT_KEYS:
                    chars += len(v)
            elif isinstance(v, (dict, list)):
                if k == "parameters":
                    chars += _json_len(v)
                else:
                    stack.append(v)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if "role" in node:
                messages += 1
            if node.get("type") in _IMAGE_TYPES:
                image_tokens += image_estimate(node.get("imageUrl"))
                continue
            for k, v in node.items():
                if isinstance(v, str):
                    if k in _TEXT_KEYS:
                        chars += len(v)
                elif type(v) is JsonText:
                    if k in _TEXT_KEYS:
                        chars += v.chars
                elif isinstance(v, (dict, list)):
                    if k == "parameters":
                        chars += _json_len(v)
                    else:
                        stack.append(v)
    return chars, messages, image_tokens


def image_estimate(image_url: Any) -> int:
    """Tokens of one OCI IMAGE part, from the pixel size in its ``data:`` URL when readable."""
    url = image_url.get("url") if isinstance(image_url, dict) else None
    size = image_size(url) if isinstance(url, str) else None
    if size is None:
        return IMAGE_TOKENS
    width, height = size
    return max(IMAGE_MIN_TOKENS, min(IMAGE_MAX_TOKENS, -(-width * height // 750)))


def image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of a base64 PNG/GIF/JPEG/WebP data URL, reading only its header."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",", 0, 100)
    if comma < 0 or not url[:comma].endswith(";base64"):
        return None
    # JPEG dimensions can sit behind EXIF data: read up to 64 KiB of the file, no more
    b64 = url[comma + 1 : comma + 1 + 87384]
    try:
        head = base64.b64decode(b64[: len(b64) // 4 * 4])
    except (binascii.Error, ValueError):
        return None
    return _png(head) or _gif(head) or _webp(head) or _jpeg(head)


def _png(b: bytes) -> tuple[int, int] | None:
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 24:
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    return None


def _gif(b: bytes) -> tuple[int, int] | None:
    if b[:4] == b"GIF8" and len(b) >= 10:
        return int.from_bytes(b[6:8], "little"), int.from_bytes(b[8:10], "little")
    return None


def _webp(b: bytes) -> tuple[int, int] | None:
    if b[:4] != b"RIFF" or b[8:12] != b"WEBP" or len(b) < 30:
        return None
    kind = b[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if kind == b"VP8 ":
        return (
            int.from_bytes(b[26:28], "little") & 0x3FFF,
            int.from_bytes(b[28:30], "little") & 0x3FFF,
        )
    if kind == b"VP8L":
        bits = int.from_bytes(b[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _jpeg(b: bytes) -> tuple[int, int] | None:
    if b[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(b[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(b[i + 7 : i + 9], "big"), int.from_bytes(b[i + 5 : i + 7], "big")
        i += 2 + length
    return None


def _json_len(value: Any) -> int:
    return len(msgspec.json.encode(value))


class Calibrator:
    """Per-model ratio reported/raw, as an exponential moving average (alpha 0.2)."""

    def __init__(self, alpha: float = 0.2) -> None:
        self._alpha = alpha
        self._ratio: dict[str, float] = {}

    def ratio(self, model: str) -> float:
        return self._ratio.get(model, 1.0)

    def estimate(self, model: str, raw: int) -> int:
        return max(1, round(raw * self.ratio(model)))

    def observe(self, model: str, raw: int, reported: int) -> None:
        if raw <= 0 or reported <= 0:
            return
        sample = min(4.0, max(0.25, reported / raw))
        current = self._ratio.get(model)
        self._ratio[model] = (
            sample if current is None else (current + self._alpha * (sample - current))
        )
