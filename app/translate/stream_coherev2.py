"""COHEREV2 answer chunks -> Anthropic message events, on the one answer state machine. Pure.

Contract: :class:`CohereV2StreamTranslator` is a :class:`~app.translate.stream.StreamTranslator`
whose :meth:`feed` / :meth:`feed_last` read COHEREV2 chunks (``CohereChatResponseV2`` and its
stream events); every block rule, the stop-sequence hold-back, thinking signatures, usage and
the finish come from the base class unchanged, and finish reasons use the COHERE table
(COMPLETE, STOP_SEQUENCE, MAX_TOKENS, TOOL_CALL, ERROR share their spelling). :func:`translator_for`
builds the translator a spec's wire format needs (what the service and
:func:`app.translate.from_oci.message_from_oci` call).

Why a subclass in its own module: the GENERIC hot path in ``stream.py`` stays exactly as it
was (no extra branch per chunk), and ``stream.py`` stays under the 400-line limit.

The shapes (reference/oci-genai-wire.md Appendix A; oci-real-world.md §4; langchain-oracle
b1dda22 tests; the emulator's ``coherev2`` style): every event is
``{"apiFormat": "COHEREV2", "message": {"role": "ASSISTANT", ...}}`` with, in the message,
``content[]`` parts ``{"type": "THINKING", "thinking"}`` (-> thinking block) and ``{"type":
"TEXT", "text"}`` (-> text), ``toolPlan`` (the words Cohere writes before its tool calls: a
text block, sent back as ``toolPlan`` by :mod:`app.translate.to_oci_coherev2`) and
``toolCalls[{id, type: "FUNCTION", function: {name, arguments}}]`` -- a call's start carries
id and name, later id-less ``function.arguments`` fragments extend it (Cohere's own v2
tool-call-start/-delta pattern), a JSON answer carries whole calls. The terminal event has
``finishReason`` (and ``usage``); observed with an empty message. Should it ever repeat the
message (as COHERE v1's terminal event does), a repeat is not emitted twice: a terminal
event's content is taken only when nothing was streamed before it.
"""

from __future__ import annotations

from typing import Any

from app.translate.stream import StreamTranslator


class CohereV2StreamTranslator(StreamTranslator):
    __slots__ = ()

    def __init__(self, **kwargs: Any) -> None:
        # the COHERE finish-reason table; _cohere_text_seen: "a delta streamed content"
        kwargs["cohere"] = True
        super().__init__(**kwargs)

    def feed(self, chunk: dict[str, Any]) -> bytes:
        return self._feed_v2(chunk, last=False)

    def feed_last(self, chunk: dict[str, Any]) -> bytes:
        """A whole ``chatResponse``: the answer's last chunk, its message taken whole."""
        return self._feed_v2(chunk, last=True)

    def _feed_v2(self, chunk: dict[str, Any], last: bool) -> bytes:
        out = b""
        finish = chunk.get("finishReason")
        if type(finish) is not str or not finish:
            finish = None
        terminal = last or finish is not None
        msg = chunk.get("message")
        if (
            self.matched_stop is None
            and msg
            and type(msg) is dict
            and not (terminal and self._cohere_text_seen)
        ):
            out = self._message_v2(msg, terminal)
        if finish is not None:
            self.finish_reason = finish
        usage = chunk.get("usage")
        if usage and type(usage) is dict:
            self.usage = usage
        return out

    def _message_v2(self, msg: dict[str, Any], terminal: bool) -> bytes:
        parts = msg.get("content")
        if not parts or type(parts) is not list:
            parts = ()
        plan = msg.get("toolPlan")
        if not plan or type(plan) is not str:
            plan = None
        calls = msg.get("toolCalls")
        if not calls or type(calls) is not list:
            calls = ()
        if not terminal and (parts or plan or calls):
            self._cohere_text_seen = True
        out = b""
        if plan is None:
            # the hot path (one TEXT or THINKING part per delta): inlined
            for part in parts:
                if type(part) is not dict or self.matched_stop is not None:
                    continue
                kind = part.get("type", "TEXT")
                if kind == "TEXT":
                    text = part.get("text")
                    if text and type(text) is str:
                        out += self._text(text)
                elif kind == "THINKING":
                    thinking = part.get("thinking")
                    if thinking and type(thinking) is str:
                        out += self._thinking(thinking)
        else:
            # a whole message: thinking, then the plan, then any text (Cohere's order)
            for part in parts:
                out += self._part_v2(part, "THINKING")
            if self.matched_stop is None:
                out += self._text(plan)
            for part in parts:
                out += self._part_v2(part, "TEXT")
        for call in calls:
            # a stop sequence in the text ends the answer before its tool calls
            if self.matched_stop is not None:
                break
            if type(call) is not dict:
                continue
            fn = call.get("function")
            if type(fn) is not dict:
                fn = {}
            out += self._tool_fragment(
                {"id": call.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")},
                terminal,
            )
        return out

    def _part_v2(self, part: Any, only: str) -> bytes:
        if type(part) is not dict or self.matched_stop is not None:
            return b""
        kind = part.get("type", "TEXT")
        if kind != only:
            return b""
        if kind == "THINKING":
            thinking = part.get("thinking")
            if thinking and type(thinking) is str:
                return self._thinking(thinking)
        elif kind == "TEXT":
            text = part.get("text")
            if text and type(text) is str:
                return self._text(text)
        return b""


def translator_for(api_format: str | None, **kwargs: Any) -> StreamTranslator:
    """The answer translator for a wire format (``ModelSpec.format`` or a response's
    ``apiFormat``): GENERIC, COHERE or COHEREV2; keyword arguments as for StreamTranslator."""
    if api_format == "COHEREV2":
        return CohereV2StreamTranslator(**kwargs)
    return StreamTranslator(cohere=api_format == "COHERE", **kwargs)
