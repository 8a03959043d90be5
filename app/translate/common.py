"""Answer-side mappings shared by every answer translator: ids, signatures, stop reasons, usage.

Contract: pure functions, no I/O. :func:`stop_reason` is THE map from an OCI finish reason to an
Anthropic ``stop_reason``, :func:`finish_error` says which finish reasons are upstream failures
instead (the answer then ends with an error, never a silent ``end_turn``), and
:func:`usage_from_oci` THE map from OCI token counts to Anthropic usage (both tolerate
mistyped values: a wrong type counts as missing); :func:`find_stop` is the
gateway's own stop-sequence match; :func:`mint_id` and :func:`thinking_signature` make the ids
and signatures the gateway has to invent. :mod:`app.translate.stream` uses them for streams and
so, through it, for JSON answers; the service uses :func:`mint_id` and :func:`reasoning_tokens`.
"""

from __future__ import annotations

import base64
import os
import string
from typing import Any

from app.errors import GatewayError, UpstreamKind

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


# Finish reasons (RW §11): SDK CohereChatResponse.finishReason COMPLETE, ERROR_TOXIC, ERROR_LIMIT,
# ERROR, USER_CANCEL, MAX_TOKENS (COHEREV2 adds STOP_SEQUENCE, TOOL_CALL); GENERIC is the
# vendor's OpenAI-style value, and litellm generic.py::_normalize_oci_finish_reason lists the
# observed tail (ERROR, ERROR_TOXIC, CONTENT_FILTERED, CANCELLED, max_tokens).
# A filter's stop is Anthropic's `refusal` (Claude Code shows a policy message and stops).
# ERROR_LIMIT is Cohere's "the model's context limit was reached" during generation: the
# answer was cut by a limit, which Anthropic clients know as `max_tokens` (Claude Code then
# continues; once the prompt itself is too long the gateway's pre-check answers the 400
# "prompt is too long" that makes it compact). `model_context_window_exceeded` would be more
# exact but is newer than what Claude Code was observed to handle (anthropic-messages.md §3).
_GENERIC_STOP = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "complete": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
    "content_filtered": "refusal",
}
_COHERE_STOP = {
    "COMPLETE": "end_turn",
    "STOP_SEQUENCE": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "ERROR_LIMIT": "max_tokens",
    "ERROR_TOXIC": "refusal",
    "TOOL_CALL": "tool_use",
}
# Not an answer at all: the model failed (ERROR / error) or the generation was cancelled
# upstream (USER_CANCEL / cancelled: the gateway never cancels a generation it still reads).
_GENERIC_ERROR = {"error": "failed", "cancelled": "was cancelled", "canceled": "was cancelled"}
_COHERE_ERROR = {"ERROR": "failed", "USER_CANCEL": "was cancelled"}


def finish_error(finish: str | None, *, cohere: bool = False) -> GatewayError | None:
    """The error an answer that finished with ``finish`` must end with, or None.

    A 500 ``api_error`` (before the answer's first byte: the HTTP error, which Claude Code and
    the SDK retry; in a stream that already started: ``event: error`` after what was sent,
    on which Claude Code retries once without streaming). Kind ``server_error``: it is OCI's
    failure, counted with the other upstream errors.
    """
    if not finish:
        return None
    what = _COHERE_ERROR.get(finish.upper()) if cohere else _GENERIC_ERROR.get(finish.lower())
    if what is None:
        return None
    return GatewayError(
        f"the model's generation {what} on OCI (finish reason {finish[:32]}); please retry",
        upstream_kind=UpstreamKind.SERVER_ERROR,
    )


def stop_reason(finish: str | None, *, had_tool_calls: bool, cohere: bool = False) -> str:
    """OCI finish reason -> Anthropic ``stop_reason``.

    Tool calls make it ``tool_use`` (COHERE finishes them ``COMPLETE``; Claude Code and SDK
    agent loops key on ``tool_use``) -- except when the output limit ended the answer: as on
    Anthropic's API that is ``max_tokens`` (a call cut short has incomplete arguments; Claude
    Code then continues instead of running a call with broken input), and a ``refusal``.
    Finish reasons no source documents stay ``end_turn`` (the raw value is on the span's
    ``gen_ai.response.finish_reasons``); the failures are :func:`finish_error`'s.
    """
    if finish:
        reason = (
            _COHERE_STOP.get(finish.upper(), "end_turn")
            if cohere
            else _GENERIC_STOP.get(finish.lower(), "end_turn")
        )
    else:
        reason = "end_turn"
    if had_tool_calls and reason not in ("max_tokens", "refusal"):
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
