"""Answer-side mappings shared by every answer translator: ids, signatures, stop reasons, usage.

Contract: pure functions, no I/O. :func:`stop_reason` is THE map from an OCI finish reason to an
Anthropic ``stop_reason`` and :func:`usage_from_oci` THE map from OCI token counts to Anthropic
usage (both tolerate mistyped values: a wrong type counts as missing); :func:`find_stop` is the
gateway's own stop-sequence match; :func:`mint_id` and :func:`thinking_signature` make the ids
and signatures the gateway has to invent. :mod:`app.translate.stream` uses them for streams and
so, through it, for JSON answers; the service uses :func:`mint_id` and :func:`reasoning_tokens`.
"""

from __future__ import annotations

import base64
import os
import string
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


def mint_id(prefix: str) -> str:
    """``toolu_…`` / ``msg_…`` ids in Anthropic's style (base62, 24 characters).

    One ``os.urandom`` call encoded in base62: 24 ``secrets.choice`` calls cost ~30 us.
    """
    n = int.from_bytes(os.urandom(18), "big")
    chars = []
    for _ in range(24):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return prefix + "".join(chars)


def thinking_signature(digest: bytes) -> str:
    # Anthropic signatures are opaque to clients; ours lets the client echo the block back
    # (it is dropped on the way to OCI, which cannot verify it anyway).
    return "ocigw1" + base64.b64encode(digest[:24]).decode()


_GENERIC_STOP = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_COHERE_STOP = {
    "COMPLETE": "end_turn",
    "STOP_SEQUENCE": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "ERROR_TOXIC": "refusal",
    "USER_CANCEL": "end_turn",
    "TOOL_CALL": "tool_use",
}


def stop_reason(finish: str | None, *, had_tool_calls: bool, cohere: bool = False) -> str:
    """OCI finish reason -> Anthropic ``stop_reason``.

    Tool calls make it ``tool_use`` (COHERE finishes them ``COMPLETE``; Claude Code and SDK
    agent loops key on ``tool_use``) -- except when the output limit ended the answer: as on
    Anthropic's API that is ``max_tokens`` (a call cut short has incomplete arguments; Claude
    Code then continues instead of running a call with broken input).
    """
    if finish:
        reason = (
            _COHERE_STOP.get(finish.upper(), "end_turn")
            if cohere
            else _GENERIC_STOP.get(finish.lower(), "end_turn")
        )
    else:
        reason = "end_turn"
    if had_tool_calls and reason != "max_tokens":
        return "tool_use"
    return reason


def usage_from_oci(
    usage: dict[str, Any] | None, estimated_input: int, estimated_output: int
) -> dict[str, int]:
    """Anthropic usage: ``input_tokens`` excludes cache reads (total = input + cache_read)."""
    if not usage:
        return {
            "input_tokens": estimated_input,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": estimated_output,
        }
    prompt = _count(usage.get("promptTokens"))
    details = usage.get("promptTokensDetails")
    cached = _count(details.get("cachedTokens")) if isinstance(details, dict) else 0
    output = _count(usage.get("completionTokens"), -1)
    return {
        "input_tokens": max(0, (prompt if prompt >= 0 else estimated_input) - cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": output if output >= 0 else estimated_output,
    }


def _count(value: Any, missing: int = 0) -> int:
    """A token count from OCI, tolerating a mistyped field (it then counts as missing)."""
    if type(value) is int:
        return max(0, value)
    if type(value) is float and value == value and abs(value) < 1e15:
        return max(0, int(value))
    return missing


def reasoning_tokens(usage: dict[str, Any] | None) -> int:
    if not usage:
        return 0
    details = usage.get("completionTokensDetails")
    return _count(details.get("reasoningTokens")) if isinstance(details, dict) else 0


def find_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    """Earliest match of any stop sequence in ``text``: (position, sequence)."""
    best: tuple[int, str] | None = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, s)
    return best
