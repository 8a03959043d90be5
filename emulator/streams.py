"""Server-sent events in each model family's real style (reference §8).

Contract: ``render_stream(answer, ctx, single_newline)`` returns the ordered list of SSE
frames (bytes) for one answer; ``send_frames`` writes them to an aiohttp ``StreamResponse``
with the scenario's timing, optional odd-sized write slices and an optional abort.

Every frame is ``data: <compact JSON>\\n\\n`` (or a single ``\\n``) and every JSON event has
a ``pad`` field of random ``a``s. Per style:

* llama — empty first text delta; ``index:0`` text deltas; tool calls as an id+name event
  followed by id-less ``arguments`` fragments (one of them empty); finish event repeats an
  empty-arguments toolCalls entry (tool turn) or an empty TEXT part; ``data: [DONE]`` last.
* openai — reasoning deltas first; first tool fragment carries ``call_<hex>`` + name + the
  first arguments piece, then id-less fragments, all at array position 0; finish
  ``{"finishReason": ...}``; usage with completionTokensDetails; no [DONE].
* grok — whole tool calls one per event (``call_<digits>``); finish
  ``{"message":{"role":"ASSISTANT"},"finishReason":...}``; no [DONE].
* gemini — whole tool calls without id; some TEXT parts lack ``text``; without tool calls
  the finish event carries the last real text piece; no [DONE].
* cohere — ``{"apiFormat":"COHERE","text":...}`` deltas, one toolCalls event, terminal event
  with finishReason, chatHistory, the full text, toolCalls and usage; no [DONE].
* coherev2 — ``{"apiFormat":"COHEREV2","message":{"role":"ASSISTANT",...}}`` deltas:
  ``content:[{"type":"THINKING","thinking"}]`` first, then ``toolPlan`` pieces, then
  ``content:[{"type":"TEXT","text"}]``; each tool call as a start event ``toolCalls:[{id,
  type:"FUNCTION", function:{name, arguments:""}}]`` followed by id-less ``function.arguments``
  fragments (Cohere's own v2 tool-call-start/-delta pattern; unverified on OCI); terminal
  ``{"apiFormat":"COHEREV2","message":{"role":"ASSISTANT"},"finishReason":...}`` with usage
  (langchain-oracle b1dda22 tests); no [DONE].

GENERIC streams get a ``{"usage": ...}`` event after the finish event only when the request
set ``streamOptions.isIncludeUsage`` (and the scenario did not turn it off).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .answer import Answer, ToolCallOut, split_fragments, split_pieces
from .cohere_history import answer_history
from .context import ChatContext
from .jsonutil import dumps

Event = dict[str, Any]
DONE_LINE = b"data: [DONE]"
SLICE_SIZES = (7, 13, 3, 29, 11, 17, 5, 23)
_rng = random.Random()


def _message(**fields: Any) -> dict[str, Any]:
    return {"role": "ASSISTANT", **fields}


def text_event(text: str | None) -> Event:
    part: dict[str, Any] = {"type": "TEXT"} if text is None else {"type": "TEXT", "text": text}
    return {"index": 0, "message": _message(content=[part])}


def reasoning_event(piece: str) -> Event:
    return {"index": 0, "message": _message(reasoningContent=piece)}


def tool_event(call: dict[str, Any]) -> Event:
    return {"index": 0, "message": _message(toolCalls=[{"type": "FUNCTION", **call}])}


def _whole_call(call: ToolCallOut) -> dict[str, Any]:
    head = {} if call.id is None else {"id": call.id}
    return {**head, "name": call.name, "arguments": call.arguments}


def _head(answer: Answer) -> list[Event]:
    return [reasoning_event(p) for p in answer.reasoning_pieces] + [
        text_event(p) for p in answer.text_pieces]


# --- per-style event lists ----------------------------------------------------------------


def llama_events(answer: Answer) -> list[Event]:
    events = [text_event(""), *_head(answer)]
    for call in answer.tool_calls:
        events.append(tool_event({"id": call.id, "name": call.name}))
        first, *rest = split_fragments(call.arguments)
        events.append(tool_event({"arguments": first}))
        events.append(tool_event({"arguments": ""}))  # vLLM sometimes sends empty fragments
        events.extend(tool_event({"arguments": piece}) for piece in rest)
    if answer.tool_calls:
        final = _message(toolCalls=[{"type": "FUNCTION", "arguments": ""}])
    else:
        final = _message(content=[{"type": "TEXT", "text": ""}])
    events.append({"message": final, "finishReason": answer.finish_reason})
    return events


def openai_events(answer: Answer) -> list[Event]:
    events = _head(answer)
    for call in answer.tool_calls:
        first, *rest = split_fragments(call.arguments)
        head = {} if call.id is None else {"id": call.id}
        events.append(tool_event({**head, "name": call.name, "arguments": first}))
        events.extend(tool_event({"arguments": piece}) for piece in rest)
    events.append({"finishReason": answer.finish_reason})
    return events


def grok_events(answer: Answer) -> list[Event]:
    events = _head(answer)
    events.extend(tool_event(_whole_call(call)) for call in answer.tool_calls)
    events.append({"message": _message(), "finishReason": answer.finish_reason})
    return events


def _gemini_text(pieces: list[str]) -> list[Event]:
    events = [text_event(None)]  # Gemini sends TEXT parts without a text key
    for i, piece in enumerate(pieces):
        events.append(text_event(piece))
        if i == 2 and len(pieces) > 3:
            events.append(text_event(None))
    return events


def gemini_events(answer: Answer) -> list[Event]:
    events = [reasoning_event(p) for p in answer.reasoning_pieces]
    pieces = list(answer.text_pieces)
    last = pieces.pop() if pieces and not answer.tool_calls else None
    events.extend(_gemini_text(pieces))
    events.extend(tool_event(_whole_call(call)) for call in answer.tool_calls)
    if last is not None:  # the finish event carries real text: clients must read it
        final = _message(content=[{"type": "TEXT", "text": last}])
    else:
        final = _message()
    events.append({"message": final, "finishReason": answer.finish_reason})
    return events


def cohere_events(answer: Answer, ctx: ChatContext) -> list[Event]:
    events: list[Event] = [{"apiFormat": "COHERE", "text": p} for p in answer.text_pieces]
    calls = [{"name": c.name, "parameters": c.cohere_parameters()} for c in answer.tool_calls]
    if calls:
        events.append({"apiFormat": "COHERE", "toolCalls": calls})
    terminal: Event = {
        "apiFormat": "COHERE",
        "text": answer.text,
        "chatHistory": answer_history(ctx.chat_request, answer.text, calls),
        "finishReason": answer.cohere_finish_reason,
    }
    if calls:
        terminal["toolCalls"] = calls
    if answer.include_usage_event:
        terminal["usage"] = answer.usage(detailed=False)
    events.append(terminal)
    return events


def _v2_event(**message: Any) -> Event:
    return {"apiFormat": "COHEREV2", "message": _message(**message)}


def cohere_v2_events(answer: Answer) -> list[Event]:
    events = [_v2_event(content=[{"type": "THINKING", "thinking": p}])
              for p in answer.reasoning_pieces]
    events.extend(_v2_event(toolPlan=p) for p in split_pieces(answer.tool_plan))
    events.extend(_v2_event(content=[{"type": "TEXT", "text": p}]) for p in answer.text_pieces)
    for call in answer.tool_calls:
        events.append(_v2_event(toolCalls=[{"id": call.id, "type": "FUNCTION", "function": {
            "name": call.name, "arguments": ""}}]))
        events.extend(_v2_event(toolCalls=[{"type": "FUNCTION", "function": {"arguments": p}}])
                      for p in split_fragments(call.arguments))
    terminal: Event = {"apiFormat": "COHEREV2", "message": _message(),
                       "finishReason": answer.cohere_v2_finish_reason}
    if answer.include_usage_event:
        terminal["usage"] = answer.usage(detailed=False)
    events.append(terminal)
    return events


_GENERIC_BUILDERS: dict[str, Callable[[Answer], list[Event]]] = {
    "llama": llama_events, "openai": openai_events, "grok": grok_events,
    "gemini": gemini_events,
}


def stream_events(answer: Answer, ctx: ChatContext) -> tuple[list[Event], bool]:
    """JSON events of the stream and whether it ends with ``data: [DONE]``."""
    if answer.style == "cohere":
        return cohere_events(answer, ctx), False
    if answer.style == "coherev2":
        return cohere_v2_events(answer), False
    events = _GENERIC_BUILDERS[answer.style](answer)
    if ctx.include_usage and answer.include_usage_event:
        events.append({"usage": answer.usage(detailed=answer.style != "llama")})
    return events, answer.style == "llama"


def encode_event(event: Event, terminator: bytes = b"\n\n") -> bytes:
    padded = {**event, "pad": "a" * _rng.randint(1, 24)}
    return b"data: " + dumps(padded) + terminator


def render_stream(answer: Answer, ctx: ChatContext, single_newline: bool = False) -> list[bytes]:
    terminator = b"\n" if single_newline else b"\n\n"
    events, done = stream_events(answer, ctx)
    frames = [encode_event(e, terminator) for e in events]
    if done:
        frames.append(DONE_LINE + terminator)
    return frames


# --- writing ------------------------------------------------------------------------------


class _Slicer:
    """Re-cuts the byte stream into odd-sized writes so events straddle TCP segments."""

    def __init__(self) -> None:
        self._sizes = itertools.cycle(SLICE_SIZES)
        self._carry = b""

    def feed(self, frame: bytes) -> list[bytes]:
        data, out = self._carry + frame, []
        size = next(self._sizes)
        while len(data) >= size:
            out.append(data[:size])
            data = data[size:]
            size = next(self._sizes)
        self._carry = data
        return out

    def flush(self) -> list[bytes]:
        rest, self._carry = self._carry, b""
        return [rest] if rest else []


async def _write_all(resp: web.StreamResponse, pieces: list[bytes]) -> None:
    for piece in pieces:
        await resp.write(piece)


async def send_frames(
    resp: web.StreamResponse,
    frames: list[bytes],
    *,
    delay_first: float,
    delay_between: float,
    split_reads: bool,
    drop_after: int | None,
    on_sent: Callable[[int], None],
) -> bool:
    """Write frames; return False when ``drop_after`` says to abort instead of finishing."""
    slicer = _Slicer() if split_reads else None
    if delay_first > 0:
        await asyncio.sleep(delay_first)
    for index, frame in enumerate(frames):
        if drop_after is not None and index >= drop_after:
            break
        if index and delay_between > 0:
            await asyncio.sleep(delay_between)
        await _write_all(resp, slicer.feed(frame) if slicer else [frame])
        on_sent(index + 1)
    if slicer:
        await _write_all(resp, slicer.flush())
    return drop_after is None or drop_after >= len(frames)
