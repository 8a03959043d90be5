"""OCI answer chunks -> Anthropic message events: THE answer state machine. Pure, no I/O.

Contract (DESIGN.md "Streaming is a state machine"): a :class:`StreamTranslator` is fed parsed
OCI chunk dicts one at a time (:meth:`feed`) and returns the Anthropic SSE bytes to send for
each. It is the only OCI-answer translator: a non-streaming answer is fed to it as one chunk
and its SSE output folded into the Message (:func:`app.translate.from_oci.message_from_oci`,
:mod:`app.translate.fold`), so streams and JSON answers share one set of guards, block rules,
stop-sequence handling, usage mapping and output estimate.

It owns the block lifecycle: every content block is started once, receives deltas only while
open, and is stopped once; blocks appear in the order the model produced them (thinking, text,
tool_use, interleaved as they came); ``message_start`` carries usage; :meth:`finish` closes the
open block and emits exactly one ``message_delta`` (stop_reason, cumulative usage) and one
``message_stop`` -- or raises the GatewayError of a failed finish (ERROR, cancelled:
:func:`~app.translate.common.finish_error`): the service sends it as the stream's ``event: error``
after what was sent, or as a JSON answer's HTTP error.

Stop sequences are matched by the gateway: text that could begin one is held back until the
next text decides. Held text belongs where it arrived: it closes an open thinking or tool block
at once, and it is sent before a later thinking or tool block opens, so stop sequences that
never match change no block (a held-back tail used to reappear after the next thinking block).
After a match nothing more is translated, later parts of the same chunk included.

OCI quirks handled here (oci-genai-wire.md §8): empty first deltas; TEXT parts without ``text``;
the finish event that still carries text or a repeated empty tool fragment; usage arriving in a
separate event after the finish; tool calls with no per-call index, keyed by a new ``id`` (or a
new ``name`` when the family sends no ids, like Gemini) with id-less fragments extending the open
call; whole tool calls in one event (Grok, Gemini, Cohere); Cohere's terminal event repeating the
full text and tool calls (never emitted twice).

Hot path: a text delta costs one dict walk, one ``orjson.dumps`` and a bytes concatenation. The
frames come straight from the module functions of :mod:`app.anthropic.sse`: a pluggable sink
object (``self._sink.delta``) was measured 20-30 ns (3-5 %) slower per delta on CPython 3.11,
which is why JSON answers fold the bytes instead of passing a second sink in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from app.anthropic import sse
from app.translate.common import (
    find_stop,
    finish_error,
    mint_id,
    stop_reason,
    thinking_signature,
    usage_from_oci,
)

_TEXT, _THINKING, _TOOL = 1, 2, 3


class StreamTranslator:
    __slots__ = (
        "_calls_emitted",
        "_cohere",
        "_cohere_text_seen",
        "_cohere_tools_done",
        "_estimated_input",
        "_hold",
        "_hold_len",
        "_index",
        "_message_id",
        "_model",
        "_open",
        "_out_chars",
        "_stops",
        "_think_hash",
        "_tool_args",
        "_tool_name",
        "_tool_oci_id",
        "finish_reason",
        "matched_stop",
        "produced_content",
        "transcript",
        "usage",
    )

    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        estimated_input: int,
        cohere: bool = False,
        stop_sequences: tuple[str, ...] = (),
        transcript: list[str] | None = None,
    ) -> None:
        self._message_id = message_id
        self._model = model
        self._estimated_input = estimated_input
        self._cohere = cohere
        self._stops = stop_sequences
        self._hold = ""
        self._hold_len = max((len(s) for s in stop_sequences), default=1) - 1
        self._index = -1
        self._open = 0
        self._out_chars = 0
        self._calls_emitted = 0
        self._think_hash: Any = None
        self._tool_oci_id: str | None = None
        self._tool_name = ""
        self._tool_args = ""
        self._cohere_text_seen = False
        self._cohere_tools_done = False
        #: OCI finish reason once seen (None: the stream has not finished)
        self.finish_reason: str | None = None
        #: the stop sequence the gateway matched; the caller should stop reading upstream
        self.matched_stop: str | None = None
        self.usage: dict[str, Any] | None = None
        #: True once any content delta has been produced (time to first token)
        self.produced_content = False
        #: when a list: every text/thinking/argument piece, for opt-in content recording
        self.transcript = transcript

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> bytes:
        return (
            sse.event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": self._message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": self._model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": self._estimated_input,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                            "output_tokens": 1,
                        },
                    },
                },
            )
            + sse.PING
        )

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None or self.matched_stop is not None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """SSE bytes for one OCI chunk (may be empty)."""
        if self._cohere:
            return self._feed_cohere(chunk)
        out = b""
        # isinstance guards: one mistyped field from upstream must cost that field, not the
        # whole answer (they are a few tens of ns each on the hot path)
        if self.matched_stop is None:
            msg = chunk.get("message")
            if msg and type(msg) is dict:
                reasoning = msg.get("reasoningContent")
                if reasoning and type(reasoning) is str:
                    out += self._thinking(reasoning)
                parts = msg.get("content")
                if parts and type(parts) is list:
                    for part in parts:
                        if type(part) is not dict:
                            continue
                        text = part.get("text")
                        if text and type(text) is str and part.get("type", "TEXT") == "TEXT":
                            out += self._text(text)
                calls = msg.get("toolCalls")
                # a stop sequence in this chunk's text ends the answer before its tool calls
                if calls and type(calls) is list and self.matched_stop is None:
                    for call in calls:
                        if type(call) is dict:
                            out += self._tool_fragment(call, "finishReason" in chunk)
        finish = chunk.get("finishReason")
        if finish and type(finish) is str:
            self.finish_reason = finish
        usage = chunk.get("usage")
        if usage and type(usage) is dict:
            self.usage = usage
        return out

    def feed_last(self, chunk: dict[str, Any]) -> bytes:
        """:meth:`feed` for a chunk known to be the answer's last, e.g. a whole non-streaming
        ``chatResponse``: a COHERE one is the terminal event even without a ``finishReason``
        (its text and tool calls are then taken, not read as a tool-call event's repeat)."""
        if self._cohere:
            return self._feed_cohere(chunk, last=True)
        return self.feed(chunk)

    @property
    def stop_reason(self) -> str:
        """The Anthropic ``stop_reason`` of what was translated so far (what finish() sends)."""
        if self.matched_stop is not None:
            return "stop_sequence"
        return stop_reason(
            self.finish_reason, had_tool_calls=self._calls_emitted > 0, cohere=self._cohere
        )

    def end_text(self) -> bytes:
        """Held-back text, sent before :meth:`finish`, which may raise instead of sending it."""
        return self._flush_hold() if self._hold and self.matched_stop is None else b""

    def finish(self) -> bytes:
        """Close the open block; ``message_delta`` + ``message_stop`` (or raise, see above)."""
        if self.matched_stop is None:  # a matched stop sequence ended the answer first
            error = finish_error(self.finish_reason, cohere=self._cohere)
            if error is not None:
                raise error
        out = self.end_text()  # the answer's last text (anything after it would have flushed it)
        out += self._close()
        reason = self.stop_reason
        usage = usage_from_oci(self.usage, self._estimated_input, max(1, self._out_chars // 4))
        out += sse.event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": self.matched_stop},
                "usage": usage,
            },
        )
        return out + sse.MESSAGE_STOP

    def final_usage(self) -> dict[str, int]:
        return usage_from_oci(self.usage, self._estimated_input, max(1, self._out_chars // 4))

    # ---- blocks ----------------------------------------------------------------------------

    def _close(self) -> bytes:
        kind = self._open
        if not kind:
            return b""
        self._open = 0
        if kind == _THINKING:
            sig = thinking_signature(self._think_hash.digest())
            self._think_hash = None
            return sse.delta(self._index, "signature_delta", "signature", sig) + sse.block_stop(
                self._index
            )
        return sse.block_stop(self._index)

    def _begin(self, kind: int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        return out + sse.event(
            "content_block_start",
            {"type": "content_block_start", "index": self._index, "content_block": block},
        )

    def _thinking(self, text: str) -> bytes:
        # held-back text came first: it goes out before this thinking (B7)
        out = self._flush_hold() if self._hold else b""
        if self._open != _THINKING:
            out += self._begin(_THINKING, {"type": "thinking", "thinking": "", "signature": ""})
            self._think_hash = hashlib.sha256()
        self._think_hash.update(text.encode())
        self._out_chars += len(text)
        self.produced_content = True
        return out + sse.delta(self._index, "thinking_delta", "thinking", text)

    def _text(self, text: str) -> bytes:
        if not self._stops:
            return self._emit_text(text)
        if self.matched_stop is not None:
            return b""  # a later part of the chunk that matched
        # text ends an open thinking/tool block now, even while held back: the blocks must not
        # depend on whether a stop sequence is set (an id-less tool fragment after this text is
        # an orphan either way)
        out = self._close() if self._open and self._open != _TEXT else b""
        buf = self._hold + text
        hit = find_stop(buf, self._stops)
        if hit is not None:
            self.matched_stop = hit[1]
            self._hold = ""
            return out + self._emit_text(buf[: hit[0]]) if hit[0] else out
        # hold back what could be the start of a stop sequence split across chunks
        cut = len(buf) - self._hold_len
        if cut <= 0:
            self._hold = buf
            return out
        self._hold = buf[cut:]
        return out + self._emit_text(buf[:cut])

    def _flush_hold(self) -> bytes:
        """Send the held-back text: what follows is not text, so it cannot begin a stop."""
        held, self._hold = self._hold, ""
        return self._emit_text(held)

    def _emit_text(self, text: str) -> bytes:
        out = b""
        if self._open != _TEXT:
            out = self._begin(_TEXT, {"type": "text", "text": ""})
        self._out_chars += len(text)
        self.produced_content = True
        if self.transcript is not None:
            self.transcript.append(text)
        return out + sse.delta(self._index, "text_delta", "text", text)

    def _open_tool(self, oci_id: str | None, name: str) -> bytes:
        out = self._flush_hold() if self._hold else b""
        self._tool_oci_id = oci_id
        self._tool_name = name
        self._tool_args = ""
        self._calls_emitted += 1
        self.produced_content = True
        return out + self._begin(
            _TOOL,
            {"type": "tool_use", "id": oci_id or mint_id("toolu_"), "name": name, "input": {}},
        )

    def _args(self, fragment: str) -> bytes:
        self._tool_args += fragment
        self._out_chars += len(fragment)
        if self.transcript is not None:
            self.transcript.append(fragment)
        return sse.delta(self._index, "input_json_delta", "partial_json", fragment)

    def _tool_fragment(self, call: dict[str, Any], in_finish_event: bool) -> bytes:
        oci_id = call.get("id")
        if type(oci_id) is not str:
            oci_id = None
        name = call.get("name")
        if type(name) is not str:
            name = None
        args = call.get("arguments") or ""
        if type(args) is not str:
            args = orjson.dumps(args).decode()
        if self._open == _TOOL and (
            (oci_id and oci_id == self._tool_oci_id)
            # a family that sends ids may repeat the name (not the id) on later fragments;
            # families without ids (Gemini) start every call with its name, so only a
            # name-only fragment after an id'd call continues it
            or (not oci_id and name and self._tool_oci_id and name == self._tool_name)
        ):
            # same call again: a repeat of the whole call (skip) or a continuation
            if args == self._tool_args or (in_finish_event and self._tool_args.endswith(args)):
                return b""
            return self._args(args) if args else b""
        if oci_id or name:
            # a call that arrives without its name still needs one on the wire
            out = self._open_tool(oci_id, name or "unknown_tool")
            return out + self._args(args) if args else out
        if self._open == _TOOL and args:
            return self._args(args)
        return b""  # an empty or orphan fragment (Llama's finish event repeats one)

    # ---- COHERE ----------------------------------------------------------------------------

    def _feed_cohere(self, chunk: dict[str, Any], last: bool = False) -> bytes:
        out = b""
        finish = chunk.get("finishReason")
        text = chunk.get("text")
        if type(text) is not str:
            text = None
        calls = chunk.get("toolCalls")
        if type(calls) is not list:
            calls = None
        usage = chunk.get("usage")
        if usage and type(usage) is dict:
            self.usage = usage
        if last or (finish and type(finish) is str):
            # terminal event: it repeats the full text and tool calls; take only what was
            # not streamed before
            if not self._cohere_text_seen and self.matched_stop is None and text:
                out += self._text(text)
            if not self._cohere_tools_done and self.matched_stop is None:
                out += self._cohere_tools(calls)
            if finish and type(finish) is str:
                self.finish_reason = finish
            return out
        if self.matched_stop is not None:
            return out
        if text and not calls:
            self._cohere_text_seen = True
            out += self._text(text)
        if calls and not self._cohere_tools_done:
            out += self._cohere_tools(calls)
        return out

    def _cohere_tools(self, calls: Any) -> bytes:
        if not calls:
            return b""
        self._cohere_tools_done = True
        out = b""
        for call in calls:
            if not isinstance(call, dict):
                continue
            name = call.get("name")
            # as for GENERIC: a call without a usable name still needs one on the wire
            out += self._open_tool(None, name if name and type(name) is str else "unknown_tool")
            params = call.get("parameters")
            if type(params) is not dict:
                params = {}
            out += self._args(orjson.dumps(params).decode())
        return out
