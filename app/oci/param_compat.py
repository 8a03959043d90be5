"""Which request parameter an OCI 400 rejects, and how the request is healed without it.

Contract (pure, no I/O):
- :func:`unwrap_message` turns OCI's error ``message`` into the text a person should read.
  OpenAI-family and xAI models answer ``{"code":"400","message":"{\\"error\\":{...}}"}``: the
  message is itself JSON (oci-real-world.md #14, langchain-oracle ``param_compat.py``: "observed
  live on the async REST path"); the inner ``error.message`` (or ``error`` when it is a string)
  is returned, with the inner ``param`` and ``code``.
- :func:`rejected_param` names the parameter a 400 says the model does not support, as the
  gateway's wire name (a member of :data:`PARAMS`), or ``None`` when the error names none or a
  parameter the gateway does not heal. It reads the structured ``param`` when the code says
  the parameter or its value is unsupported, else the known message shapes.
- :func:`heal` returns a copy of a ``chatRequest`` without that parameter (or with it renamed:
  ``maxTokens`` <-> ``maxCompletionTokens``), or ``None`` when the request does not carry it,
  so retrying would change nothing.

Evidence for the shapes, kept in the tests: "Model grok-4 does not support parameter
reasoningEffort" (litellm PR #40732, live), xAI's ``{"code":"invalid-argument","error":"Model …
does not support parameter reasoningEffort."}``, "This model does not support
`reasoning_effort`" (acedergren), OpenAI's "Unsupported value: 'temperature' does not support
0.5 with this model" / "Unsupported parameter: 'max_tokens' is not supported with this model.
Use 'max_completion_tokens' instead." with ``param`` / ``code`` (langchain-oracle).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: The parameters the gateway may drop or rename (closed: also the metric's ``param`` label).
PARAMS = frozenset(
    {
        "reasoningEffort",
        "temperature",
        "topP",
        "topK",
        "maxTokens",
        "maxCompletionTokens",
        "frequencyPenalty",
        "presencePenalty",
        "seed",
    }
)

#: Renamed rather than dropped: the output limit must stay (OCI's default is ~20 tokens).
RENAMES = {"maxTokens": "maxCompletionTokens", "maxCompletionTokens": "maxTokens"}

# Every spelling a model reports -> the gateway's wire name (snake_case from OpenAI / xAI).
_ALIASES = {p.lower(): p for p in PARAMS} | {
    "reasoning_effort": "reasoningEffort",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxTokens",
    "max_completion_tokens": "maxCompletionTokens",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
}
# Codes of a structured error that mean "this parameter (or its value) is not supported".
_UNSUPPORTED_CODES = frozenset({"unsupported_value", "unsupported_parameter", "invalid-argument"})
_NAME = r"[`'\"]?([A-Za-z_][A-Za-z0-9_.]*)[`'\"]?"
_MESSAGE_RX = (
    # "Model grok-4 does not support parameter reasoningEffort", "does not support `x`"
    re.compile(r"does not support (?:the )?(?:parameter|param|field|argument)?\s*" + _NAME),
    # "Unsupported parameter: 'max_tokens' ...", "Unsupported value: 'temperature' does not ..."
    re.compile(r"unsupported (?:parameter|param|value|argument)s?:?\s*" + _NAME, re.IGNORECASE),
    # "'topK' is not supported with this model", "parameter topK is not supported"
    re.compile(_NAME + r" is not (?:a )?supported", re.IGNORECASE),
)


def unwrap_message(message: str) -> tuple[str, str | None, str | None]:
    """``(readable message, param, code)``; the message unchanged unless it is JSON."""
    text = message.strip()
    if not text.startswith("{"):
        return message, None, None
    try:
        inner = orjson.loads(text)
    except orjson.JSONDecodeError:
        return message, None, None
    if not isinstance(inner, dict):
        return message, None, None
    err: Any = inner.get("error", inner)
    if isinstance(err, str):  # xAI: {"code": "invalid-argument", "error": "Model ..."}
        code = inner.get("code")
        return err, None, code if isinstance(code, str) else None
    if not isinstance(err, dict):
        return message, None, None
    readable = err.get("message")
    param, code = err.get("param"), err.get("code")
    return (
        readable if isinstance(readable, str) and readable else message,
        param if isinstance(param, str) else None,
        code if isinstance(code, str) else None,
    )


def wire_name(name: str) -> str | None:
    """The gateway's wire name for a reported parameter name, if it is one the gateway heals."""
    return _ALIASES.get(name.strip(".").rsplit(".", 1)[-1].lower())


def rejected_param(message: str, param: str | None = None, code: str | None = None) -> str | None:
    """The parameter a 400 rejects (see the module docstring), or ``None``."""
    if param and (code is None or code in _UNSUPPORTED_CODES):
        return wire_name(param)
    for rx in _MESSAGE_RX:
        for match in rx.finditer(message):
            found = wire_name(match.group(1))
            if found is not None:
                return found
    return None


def heal(chat: dict[str, Any], param: str) -> tuple[dict[str, Any], str] | None:
    """``(new chatRequest, action)`` without ``param``, or ``None`` when it is not sent."""
    if chat.get(param) is None:
        return None
    healed = dict(chat)
    value = healed.pop(param)
    rename = RENAMES.get(param)
    if rename is not None:
        if healed.get(rename) is None:
            healed[rename] = value
        return healed, f"renamed to {rename}"
    return healed, "dropped"
