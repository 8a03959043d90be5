"""OCI chat answers (non-streaming) -> Anthropic Message JSON, through the stream state machine.

Contract: :func:`message_from_oci` turns an OCI ``ChatResult`` (GENERIC, COHERE or COHEREV2,
oci-genai-wire.md §7 and Appendix A) into the Anthropic message object of
anthropic-messages.md §3: content blocks in the order the model produced them (thinking, text,
tool_use), ``stop_reason`` never null, usage from OCI's counts (else estimated). It never
raises: a result with missing or mistyped fields (``choices`` a dict, ``message`` a string,
``chatResponse`` a list, COHERE ``text`` a number, …) gives what can be salvaged, or an empty
message with the stop reason.

How: a non-streaming answer has the shape of the last stream chunk (a GENERIC ``choices[0]``
carries ``message``, ``finishReason`` and ``usage`` like a chunk; a COHERE ``chatResponse`` *is*
the terminal stream event; a COHEREV2 one is its whole message with ``finishReason`` and
``usage``), so it is fed to the translator of its ``apiFormat``
(:func:`app.translate.stream_coherev2.translator_for`) as one chunk and the SSE it writes is
folded into the Message (:func:`~app.translate.fold.fold_message`). Streams and JSON answers
therefore share every guard, the stop-sequence rules, the usage mapping and the output-token
estimate.
"""

from __future__ import annotations

from typing import Any

from app.translate.fold import fold_message
from app.translate.stream_coherev2 import translator_for


def message_from_oci(
    result: dict[str, Any],
    *,
    model: str,
    message_id: str,
    estimated_input: int,
    stop_sequences: tuple[str, ...] = (),
) -> dict[str, Any]:
    resp = result.get("chatResponse") if type(result) is dict else None
    if type(resp) is not dict:
        resp = {}
    api_format = resp.get("apiFormat")
    translator = translator_for(
        api_format if type(api_format) is str else None,
        message_id=message_id,
        model=model,
        estimated_input=estimated_input,
        stop_sequences=stop_sequences,
    )
    body = translator.start()
    if api_format in ("COHERE", "COHEREV2"):
        body += translator.feed_last(resp)
    else:
        choices = resp.get("choices")
        if type(choices) is list and choices and type(choices[0]) is dict:
            body += translator.feed_last(choices[0])
        # GENERIC usage sits beside the choices (the choice's own, if any, was read above)
        body += translator.feed({"usage": resp.get("usage")})
    return fold_message(body + translator.finish())
