"""Prompt token estimation, calibrated per model from what OCI reports. No I/O.

Contract: :func:`raw_estimate` counts an OCI chat request body with a tokenizer-free rule
(characters of text / 4, a small per-message overhead, a fixed cost per image). A
:class:`Calibrator` keeps, per gateway model, a moving ratio between the ``promptTokens`` OCI
actually reported and that raw estimate (learned while serving), and :meth:`Calibrator.estimate`
applies it. Used for ``count_tokens``, the ``message_start`` usage, and the context-window check.

Why no real tokenizer: the served models use different tokenizers (Llama, Grok, Gemini,
Cohere, OpenAI), none of which ships offline for all of them; a calibrated linear estimate
tracks each model's reported counts closely for the text-heavy prompts Claude Code sends
(accuracy is measured in tests and stated in the README).
"""

from __future__ import annotations

from typing import Any

IMAGE_TOKENS = 1000
MESSAGE_OVERHEAD = 4
_TEXT_KEYS = ("text", "arguments", "message", "preambleOverride")


def raw_estimate(body: dict[str, Any]) -> int:
    chat = body.get("chatRequest") or {}
    chars = 0
    messages = 0
    images = 0
    stack: list[Any] = [chat.get("messages"), chat.get("chatHistory"), chat.get("toolResults")]
    for key in ("message", "preambleOverride"):
        value = chat.get(key)
        if isinstance(value, str):
            chars += len(value)
            messages += 1
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if "role" in node:
                messages += 1
            if node.get("type") == "IMAGE":
                images += 1
                continue
            for k, v in node.items():
                if isinstance(v, str):
                    if k in _TEXT_KEYS:
                        chars += len(v)
                elif isinstance(v, (dict, list)):
                    if k == "parameters":
                        chars += _json_len(v)
                    else:
                        stack.append(v)
    tools = chat.get("tools")
    if tools:
        chars += _json_len(tools)
    return (chars + 3) // 4 + messages * MESSAGE_OVERHEAD + images * IMAGE_TOKENS


def _json_len(value: Any) -> int:
    import orjson

    return len(orjson.dumps(value))


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
        self._ratio[model] = sample if current is None else (
            current + self._alpha * (sample - current)
        )
