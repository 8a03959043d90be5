"""Anthropic's ``web_search`` server tool <-> a function the model calls. Pure: no I/O.

Contract:
- :func:`web_search_tool` finds the server tool (``web_search_20250305`` and later versions) in
  a request; :func:`options` reads its ``max_uses`` and allowed / blocked domains.
- :func:`model_request` is the request one turn of the gateway's server-tool loop sends (web
  search, tool search): the server tool replaced by a client function
  ``web_search(query: string)`` (translated to every OCI format by the normal tool
  translation), history ``server_tool_use`` / ``web_search_tool_result`` blocks (and tool
  search's ``tool_search_tool_result``) turned into a ``tool_use`` and a ``tool_result`` whose
  text lists the results or the loaded tools (the assistant turn is split around the result,
  as a tool loop is), ``stream`` off (the loop streams turns itself), and the forced
  ``tool_choice`` of Claude Code's WebSearch sub-request kept for the first turn only (kept
  later it would force a search on every turn); ``count_tokens`` counts that request too.
  :func:`history` does only the history part.
- :func:`server_tool_use`, :func:`search_result` and :func:`search_error` build the blocks the
  client receives; ``encrypted_content`` is opaque to clients (a versioned base64url of the
  snippet) and round-trips: :func:`history` decodes it back into the model's result text.
- :func:`block_events` / :func:`message_start` / :func:`message_end` are the SSE frames of
  complete blocks, in Anthropic's shapes: ``server_tool_use`` and ``tool_use`` stream their input
  as one ``input_json_delta``, ``web_search_tool_result`` arrives whole in its
  ``content_block_start``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from app.anthropic import sse
from app.anthropic.models import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    raw_text,
)

_Req = TypeVar("_Req", MessagesRequest, CountTokensRequest)
NAME = "web_search"
_ENC_PREFIX = "gws1."  # the gateway's opaque encrypted_content, version 1
_MAX_QUERY = 500

FUNCTION = Tool(
    name=NAME,
    description=(
        "Search the web. Returns result titles, URLs, publication dates and snippets. Use it "
        "for current events and facts beyond your knowledge; cite the URLs you use."
    ),
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "The search query"}},
        "required": ["query"],
    },
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    url: str
    title: str
    snippet: str
    page_age: str | None = None


@dataclass(frozen=True, slots=True)
class Options:
    max_uses: int
    allowed: tuple[str, ...]
    blocked: tuple[str, ...]


def web_search_tool(req: MessagesRequest | CountTokensRequest) -> Tool | None:
    for tool in req.tools or ():
        if tool.type is not None and tool.type.startswith("web_search_"):
            return tool
    return None


def options(tool: Tool, default_max_uses: int) -> Options:
    extra = tool.extra
    max_uses = extra.get("max_uses")
    return Options(
        max_uses=max_uses if type(max_uses) is int and max_uses > 0 else default_max_uses,
        allowed=_domains(extra.get("allowed_domains")),
        blocked=_domains(extra.get("blocked_domains")),
    )


def user_location(tool: Tool) -> dict[str, str] | None:
    """The tool's ``user_location`` (``{type: approximate, city, region, country, timezone}``),
    its string fields only; the backends use what their APIs take (search_backends)."""
    loc = tool.extra.get("user_location")
    if not isinstance(loc, dict):
        return None
    kept = {k: v.strip() for k, v in loc.items() if isinstance(v, str) and v.strip()}
    return kept or None


def _domains(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for d in value:
        if isinstance(d, str) and d.strip():
            host = urlsplit(d if "//" in d else "//" + d).hostname or ""
            if host:
                out.append(host.removeprefix("www."))
    return tuple(out)


def domain_allowed(url: str, allowed: tuple[str, ...], blocked: tuple[str, ...]) -> bool:
    """``url``'s host is (a subdomain of) an allowed domain, when any, and of no blocked one."""
    host = (urlsplit(url).hostname or "").lower()

    def under(domain: str) -> bool:
        return host == domain or host.endswith("." + domain)

    if allowed and not any(under(d) for d in allowed):
        return False
    return not any(under(d) for d in blocked)


def query_of(block: dict[str, Any]) -> str:
    q = block.get("input", {}).get("query")
    return q.strip()[:_MAX_QUERY] if isinstance(q, str) else ""


def model_request(
    req: _Req,
    messages: list[Message],
    *,
    first: bool,
    exhausted: bool,
    tools: list[Tool] | None = None,
) -> _Req:
    """One turn's request; ``tools``: the tool list to offer instead of the request's own
    (tool search: the deferred tools left out, the search function in), web search replaced."""
    search = web_search_tool(req)
    tools = [FUNCTION if t is search else t for t in (req.tools if tools is None else tools) or ()]
    choice = req.tool_choice
    if exhausted:
        choice = ToolChoice(type="none")
    elif not first and choice is not None and choice.type in ("tool", "any"):
        choice = ToolChoice(type="auto")
    update: dict[str, Any] = {"tools": tools, "messages": messages, "tool_choice": choice}
    if isinstance(req, MessagesRequest):
        update["stream"] = False
    return req.replace(**update)


def history(messages: list[Message]) -> list[Message]:
    """The messages with server tool blocks as a tool call and its result (module docstring)."""
    out: list[Message] = []
    for msg in messages:
        blocks = msg.content
        if isinstance(blocks, str) or not any(_is_server(b) for b in blocks):
            out.append(msg)
            continue
        segment: list[Any] = []
        for block in blocks:
            t = getattr(block, "type", None)
            if t == "server_tool_use" and isinstance(block, OtherBlock):
                extra = block.extra
                tool_input = extra.get("input")
                segment.append(
                    ToolUseBlock(
                        id=str(extra.get("id") or ""),
                        name=str(extra.get("name") or NAME),
                        input=tool_input if isinstance(tool_input, dict) else {},
                    )
                )
            elif t is not None and t.endswith("_tool_result") and isinstance(block, OtherBlock):
                if segment:
                    out.append(Message(role=msg.role, content=segment))
                    segment = []
                extra = block.extra
                result = ToolResultBlock.of(
                    str(extra.get("tool_use_id") or ""),
                    [TextBlock(text=raw_text(_result_text(t, extra.get("content"))))],
                )
                out.append(Message(role="user", content=[result]))
            else:
                segment.append(block)
        if segment:
            out.append(Message(role=msg.role, content=segment))
    return out


def _is_server(block: Any) -> bool:
    return isinstance(block, OtherBlock) and (
        block.type == "server_tool_use" or block.type.endswith("_tool_result")
    )


def _result_text(block_type: str, content: Any) -> str:
    if block_type == "tool_search_tool_result":  # app/service/tool_search.py's blocks
        if not isinstance(content, dict) or content.get("type") != "tool_search_tool_search_result":
            code = content.get("error_code") if isinstance(content, dict) else None
            return f"Tool search error: {code or 'unavailable'}"
        refs = content.get("tool_references") or ()
        names = [r["tool_name"] for r in refs if isinstance(r, dict) and "tool_name" in r]
        if not names:
            return "No deferred tool matched the query."
        return "Tools loaded (now callable): " + ", ".join(map(str, names))
    if isinstance(content, dict):
        return f"Web search error: {content.get('error_code') or 'unavailable'}"
    hits = []
    for item in content if isinstance(content, list) else ():
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            hits.append(
                SearchHit(
                    item["url"],
                    str(item.get("title") or ""),
                    _decode(item.get("encrypted_content")),
                    item.get("page_age") if isinstance(item.get("page_age"), str) else None,
                )
            )
    return results_text(hits)


def results_text(hits: list[SearchHit]) -> str:
    """The tool result the model reads."""
    if not hits:
        return "The web search returned no results."
    parts = []
    for i, h in enumerate(hits, 1):
        lines = [f"[{i}] {h.title}", f"URL: {h.url}"]
        if h.page_age:
            lines.append(f"Published: {h.page_age}")
        if h.snippet:
            lines.append(h.snippet)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _encode(snippet: str) -> str:
    return _ENC_PREFIX + base64.urlsafe_b64encode(orjson.dumps({"s": snippet})).decode()


def _decode(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(_ENC_PREFIX):
        return ""  # Anthropic's own (or anything else): opaque to us too
    try:
        data = orjson.loads(base64.urlsafe_b64decode(value[len(_ENC_PREFIX) :]))
    except (binascii.Error, ValueError):
        return ""
    s = data.get("s") if isinstance(data, dict) else None
    return s if isinstance(s, str) else ""


def server_tool_use(block_id: str, query: str) -> dict[str, Any]:
    return {"type": "server_tool_use", "id": block_id, "name": NAME, "input": {"query": query}}


def search_result(tool_use_id: str, hits: list[SearchHit]) -> dict[str, Any]:
    items = []
    for h in hits:
        item: dict[str, Any] = {
            "type": "web_search_result",
            "url": h.url,
            "title": h.title,
            "encrypted_content": _encode(h.snippet),
        }
        if h.page_age:
            item["page_age"] = h.page_age
        items.append(item)
    return {"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": items}


def search_error(tool_use_id: str, error_code: str) -> dict[str, Any]:
    return {
        "type": "web_search_tool_result",
        "tool_use_id": tool_use_id,
        "content": {"type": "web_search_tool_result_error", "error_code": error_code},
    }


def message_start(message_id: str, model: str, input_tokens: int) -> bytes:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return sse.event("message_start", {"type": "message_start", "message": message})


def message_end(stop_reason: str, stop_sequence: str | None, usage: dict[str, Any]) -> bytes:
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    payload = {"type": "message_delta", "delta": delta, "usage": usage}
    return sse.event("message_delta", payload) + sse.MESSAGE_STOP


def block_events(index: int, block: dict[str, Any]) -> bytes:
    """``content_block_start`` / deltas / ``content_block_stop`` of one complete block."""
    t = block.get("type")

    def start(cb: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_start", "index": index, "content_block": cb}
        return sse.event("content_block_start", payload)

    if t == "text":
        out = start({"type": "text", "text": ""})
        if block.get("text"):
            out += sse.delta(index, "text_delta", "text", block["text"])
    elif t == "thinking":
        out = start({"type": "thinking", "thinking": "", "signature": ""})
        if block.get("thinking"):
            out += sse.delta(index, "thinking_delta", "thinking", block["thinking"])
        if block.get("signature"):
            out += sse.delta(index, "signature_delta", "signature", block["signature"])
    elif t in ("tool_use", "server_tool_use"):
        out = start({**block, "input": {}})
        out += sse.delta(
            index, "input_json_delta", "partial_json", orjson.dumps(block["input"]).decode()
        )
    else:  # redacted_thinking, web_search_tool_result: whole in the start event
        out = start(block)
    return out + sse.block_stop(index)
