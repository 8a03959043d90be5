"""Turn a Scenario plus the request context into a concrete answer.

Contract: ``resolve_answer(scenario, ctx)`` returns an ``Answer`` holding everything the
stream and JSON renderers need: the streaming style (a GENERIC family style, ``cohere`` for
COHERE v1 requests, ``coherev2`` for COHEREV2 requests), final text (after a stop-sequence
cut), its stream pieces, reasoning and its pieces, the COHEREV2 tool plan, tool calls with
style-specific ids (llama ``chatcmpl-tool-<hex>``, openai ``call_<hex>``, grok
``call_<digits>``, coherev2 ``<name>_<12 chars>`` as Cohere's own v2 API mints them, gemini
and cohere v1 none), the finish reason in GENERIC, COHERE and COHEREV2 spelling, and the token
usage.

On-demand output cap (catalog ``on_demand_output_cap``, RW §8): for an ON_DEMAND request whose
answer would exceed the model's cap, the answer is cut to exactly ``cap`` completion tokens
(reasoning first, then text; tool plan and tool calls dropped) and finishes ``length``
(COHERE/COHEREV2 ``MAX_TOKENS``); ``Answer.capped_at`` records it. Whether OCI rejects or
silently caps is unverified; the emulator caps (emulator/README.md).
"""

from __future__ import annotations

import math
import random
import re
import secrets
from dataclasses import dataclass
from typing import Any

from . import tokens
from .context import ChatContext
from .errors import OCIError
from .jsonutil import compact, loads
from .scenario import Scenario

_WORD_RE = re.compile(r"\S+\s*|\s+")
_COHERE_FINISH = {"stop": "COMPLETE", "tool_calls": "COMPLETE", "length": "MAX_TOKENS"}
_COHERE_V2_FINISH = {"stop": "COMPLETE", "tool_calls": "TOOL_CALL", "length": "MAX_TOKENS"}
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_rng = random.Random()


@dataclass
class ToolCallOut:
    id: str | None
    name: str
    arguments: str

    def cohere_parameters(self) -> dict[str, Any]:
        try:
            parsed = loads(self.arguments or "{}")
        except ValueError:
            raise OCIError(500, "InternalServerError",
                           f"scenario tool call {self.name} has non-JSON arguments") from None
        if not isinstance(parsed, dict):
            raise OCIError(500, "InternalServerError",
                           f"scenario tool call {self.name} arguments must be a JSON object")
        return parsed


@dataclass
class Answer:
    style: str
    model_id: str
    model_version: str
    text: str
    text_pieces: list[str]
    reasoning: str
    reasoning_pieces: list[str]
    tool_calls: list[ToolCallOut]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    usage_override: dict[str, Any] | None = None
    include_usage_event: bool = True
    tool_plan: str = ""
    stop_sequence: bool = False  # the text was cut at a stop sequence
    capped_at: int | None = None  # the on-demand output cap cut this answer

    @property
    def cohere_finish_reason(self) -> str:
        return _COHERE_FINISH.get(self.finish_reason, self.finish_reason.upper())

    @property
    def cohere_v2_finish_reason(self) -> str:
        if self.stop_sequence and self.finish_reason == "stop":
            return "STOP_SEQUENCE"
        return _COHERE_V2_FINISH.get(self.finish_reason, self.finish_reason.upper())

    def usage(self, detailed: bool) -> dict[str, Any]:
        if self.usage_override is not None:
            return self.usage_override
        return tokens.usage_dict(self.prompt_tokens, self.completion_tokens,
                                 self.reasoning_tokens, detailed)


def split_pieces(text: str, count: int | None = None) -> list[str]:
    """Split text into ``count`` near-equal slices, or into word-sized pieces."""
    if not text:
        return []
    if count is None:
        return _WORD_RE.findall(text)
    count = min(count, len(text))
    size = len(text) / count
    bounds = [round(i * size) for i in range(count + 1)]
    return [text[bounds[i]: bounds[i + 1]] for i in range(count)]


def split_fragments(text: str, size: int = 8) -> list[str]:
    """Argument fragments for incremental tool-call deltas; always at least two."""
    count = max(2, math.ceil(len(text) / size))
    pieces = split_pieces(text, count) if len(text) >= 2 else [text]
    return pieces + [""] * (2 - len(pieces))


def _several(text: str) -> list[str]:
    pieces = split_pieces(text)
    return pieces if len(pieces) >= 2 or len(text) < 2 else split_pieces(text, 2)


def _tool_call_id(style: str, name: str) -> str | None:
    if style == "coherev2":
        return f"{name}_" + "".join(_rng.choice(_ID_CHARS) for _ in range(12))
    if style == "llama":
        return "chatcmpl-tool-" + secrets.token_hex(5)[:9]
    if style == "openai":
        return "call_" + secrets.token_hex(12)
    if style == "grok":
        return "call_" + str(_rng.randrange(10_000_000, 99_999_999))
    return None  # gemini and cohere calls carry no id


def _style_for(scenario: Scenario, ctx: ChatContext) -> str:
    if ctx.api_format == "COHERE":
        return "cohere"
    if ctx.api_format == "COHEREV2":
        return "coherev2"
    style = scenario.style or ctx.model.style
    if style == "cohere":
        raise OCIError(500, "InternalServerError",
                       "scenario style cohere needs a COHERE request")
    return style


def _base_text(scenario: Scenario, ctx: ChatContext) -> str:
    if scenario.text is not None:
        return scenario.text
    if scenario.tool_calls:
        return ""
    return f"Hello from {ctx.model_id}: {ctx.last_user_text[:40]}"


def _apply_stop(text: str, stop: str | None) -> str:
    if stop and stop in text:
        return text[: text.index(stop)]
    return text


def _tool_calls(scenario: Scenario, style: str) -> list[ToolCallOut]:
    return [ToolCallOut(id=c.id or _tool_call_id(style, c.name), name=c.name,
                        arguments=c.arguments) for c in scenario.tool_calls]


def _emitted_arguments(calls: list[ToolCallOut], style: str) -> list[str]:
    if style == "cohere":
        return [compact(c.cohere_parameters()) for c in calls]
    return [c.arguments for c in calls]


def _cap(text: str, reasoning: str, cap: int) -> tuple[str, str]:
    """Reasoning, then text, cut to ``cap`` tokens of the emulator's characters/4 rule."""
    budget = cap * 4
    reasoning = reasoning[:budget]
    return text[: budget - len(reasoning)], reasoning


def resolve_answer(scenario: Scenario, ctx: ChatContext) -> Answer:
    style = _style_for(scenario, ctx)
    text = _apply_stop(_base_text(scenario, ctx), scenario.stop_sequence_hit)
    reasoning = "" if style == "cohere" else (scenario.reasoning or "")
    tool_plan = (scenario.tool_plan or "") if style == "coherev2" else ""
    calls = _tool_calls(scenario, style)
    finish = scenario.finish_reason or ("tool_calls" if calls else "stop")
    if scenario.stop_sequence_hit:
        finish = "stop"
    emitted = [tool_plan, *_emitted_arguments(calls, style)]
    completion = tokens.completion_tokens(text, reasoning, emitted)
    cap = ctx.model.output_cap(ctx.serving_type)
    capped_at = None
    if cap is not None and completion > cap:
        text, reasoning = _cap(text, reasoning, cap)
        tool_plan, calls, finish, capped_at = "", [], "length", cap
        completion = tokens.completion_tokens(text, reasoning, [])
    return Answer(
        style=style,
        model_id=ctx.model_id,
        model_version=ctx.model.version,
        text=text,
        text_pieces=split_pieces(text, scenario.chunks),
        reasoning=reasoning,
        reasoning_pieces=_several(reasoning),
        tool_calls=calls,
        finish_reason=finish,
        prompt_tokens=tokens.prompt_tokens(ctx.chat_request),
        completion_tokens=completion,
        reasoning_tokens=tokens.ceil4(reasoning),
        usage_override=scenario.usage,
        include_usage_event=scenario.include_usage_event,
        tool_plan=tool_plan,
        stop_sequence=bool(scenario.stop_sequence_hit) and capped_at is None,
        capped_at=capped_at,
    )
