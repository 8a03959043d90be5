"""Tool search over ``defer_loading`` tools, as Anthropic's tool search does it. Pure: no I/O.

Contract (evidence: Anthropic's "Tool search tool" page,
https://platform.claude.com/docs/en/agents-and-tools/tool-use/tool-search-tool, beta header
``advanced-tool-use-2025-11-20``; block shapes as the ``anthropic`` SDK 2.15 types them:
``BetaToolSearchToolResultBlock``, ``BetaToolSearchToolSearchResultBlock``,
``BetaToolReferenceBlock``, ``BetaToolSearchToolResultErrorObject``):

- A tool with ``defer_loading: true`` is not sent to the model until a ``tool_reference`` to it
  appears in the conversation -- in a ``tool_result``'s content (the client-side variant, e.g.
  Claude Code's own ``ToolSearch`` tool) or in a ``tool_search_tool_result`` block (the server
  variant) -- or the gateway's search picks it during this request; from then on it is sent
  inline, as Anthropic expands references. :func:`visible_tools` is that rule; a
  ``tool_reference`` inside a ``tool_result`` becomes the text ``Tool loaded: <name>``
  (:func:`app.translate.content.tool_result_text`), never a 400.
- :func:`search_kind` says whether this request needs the gateway's search loop: Anthropic's
  ``tool_search_tool_regex_20251119`` / ``tool_search_tool_bm25_20251119`` server tool, or
  deferred tools and no search of the client's own (then the gateway's own function, named by
  ``tool_search.name``, BM25). :func:`function` is what the model is offered: the tool's name
  and one ``query`` string.
- :class:`Searcher` answers a query from the deferred tools (names, descriptions, argument
  names and descriptions, which is what Anthropic searches): regex with ``re``'s syntax (the
  ``regex`` module, for its timeout), the pattern at most 200 characters as Anthropic's, and at
  most :data:`REGEX_BUDGET_S` of matching per search (longer: an ``invalid_tool_input`` error
  result, not a stalled worker); BM25 otherwise. At most ``max_results``
  names (Anthropic: "Returns 3-5 most relevant tools per search"). A bad pattern is an error
  result with ``error_code: invalid_tool_input`` (the SDK's code; older docs said
  ``invalid_pattern`` / ``pattern_too_long``), never an HTTP error.
- :func:`use_block` / :func:`result_block` / :func:`error_block` are the client's blocks;
  :func:`result_text` is what the model reads as the tool result.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

import regex

from app.anthropic.models import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    OtherBlock,
    Tool,
    ToolResultBlock,
)

Kind = Literal["regex", "bm25"]
_Req = TypeVar("_Req", MessagesRequest, CountTokensRequest)
_TYPES: dict[str, Kind] = {
    "tool_search_tool_regex_": "regex",
    "tool_search_tool_bm25_": "bm25",
}
MAX_PATTERN = 200  # Anthropic: "Maximum query length: 200 characters"
#: CPU one regex search may take over all the tools: a short pattern can still backtrack
#: exponentially (``(a+)+$``), and a match holds the worker's event loop (and the GIL)
REGEX_BUDGET_S = 0.05
#: client tools that already are a tool search (the gateway then offers none of its own):
#: Claude Code's ToolSearch answers with tool_reference blocks in its tool_result
#: (code.claude.com/docs/en/env-vars, ANTHROPIC_BASE_URL / ENABLE_TOOL_SEARCH)
CLIENT_SEARCH_TOOLS = frozenset({"ToolSearch"})
_DOC_CHARS = 4000  # bound on the text one tool contributes (regex time, BM25 size)


def is_deferred(tool: Tool) -> bool:
    return tool.defer_loading is True and server_search(tool) is None


def server_search(tool: Tool) -> Kind | None:
    for prefix, kind in _TYPES.items():
        if tool.type is not None and tool.type.startswith(prefix):
            return kind
    return None


def search_tool(tools: Iterable[Tool] | None) -> Tool | None:
    return next((t for t in tools or () if server_search(t) is not None), None)


def search_kind(tools: list[Tool] | None, offer: bool) -> Kind | None:
    """The search the gateway runs for this request, if any (module docstring)."""
    tool = search_tool(tools)
    if tool is not None:
        return server_search(tool)
    if not offer or not any(is_deferred(t) for t in tools or ()):
        return None
    if any(t.name in CLIENT_SEARCH_TOOLS for t in tools or ()):
        return None
    return "bm25"


def function_name(tools: list[Tool] | None, own_name: str) -> str:
    tool = search_tool(tools)
    return tool.name if tool is not None else own_name


def function(name: str, kind: Kind) -> Tool:
    if kind == "regex":
        description = (
            "Search the deferred tools (not yet loaded) by a Python regular expression over "
            "their names, descriptions and argument names (re.search; (?i) for case-insensitive"
            f", at most {MAX_PATTERN} characters). The matching tools become callable."
        )
        what = "A Python regex, e.g. 'github.*issue|issue.*github'"
    else:
        description = (
            "Search the deferred tools (not yet loaded) in natural language over their names, "
            "descriptions and arguments. The best matching tools become callable."
        )
        what = "What the tool should do, e.g. 'create a GitHub issue'"
    return Tool(
        name=name,
        description=description,
        input_schema={
            "type": "object",
            "properties": {"query": {"type": "string", "description": what}},
            "required": ["query"],
        },
    )


def referenced(messages: list[Message]) -> set[str]:
    """Names of the tools the conversation already loaded (``tool_reference`` anywhere)."""
    names: set[str] = set()
    for msg in messages:
        if isinstance(msg.content, str):
            continue
        for block in msg.content:
            if isinstance(block, ToolResultBlock) and isinstance(block.content, list):
                for inner in block.content:
                    _collect(inner, names)
            elif isinstance(block, OtherBlock) and block.type == "tool_search_tool_result":
                content = block.extra.get("content")
                if isinstance(content, dict):
                    for ref in content.get("tool_references") or ():
                        _collect(ref, names)
            elif isinstance(block, OtherBlock) and block.type == "tool_result":  # older docs
                for inner in block.extra.get("content") or ():
                    _collect(inner, names)
    return names


def _collect(block: Any, names: set[str]) -> None:
    if isinstance(block, OtherBlock):
        block = {"type": block.type, **block.extra}
    if isinstance(block, dict) and block.get("type") == "tool_reference":
        name = block.get("tool_name")
        if isinstance(name, str):
            names.add(name)


def visible_tools(tools: list[Tool] | None, loaded: set[str]) -> list[Tool] | None:
    """The tools sent to the model: every tool but the deferred ones not loaded yet."""
    if tools is None:
        return None
    return [t for t in tools if not is_deferred(t) or t.name in loaded]


def without_deferred(req: _Req) -> _Req:
    """The request without its deferred tools not loaded yet (no search loop: the client's own
    search, e.g. Claude Code's ToolSearch, loads them through ``tool_reference``)."""
    if not any(is_deferred(t) for t in req.tools or ()):
        return req
    return req.replace(tools=visible_tools(req.tools, referenced(req.messages)))


def _words(text: str) -> list[str]:
    # snake_case, camelCase and mcp__server__tool names split into their words
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def _document(tool: Tool) -> str:
    parts = [tool.name, tool.description or ""]
    props = (tool.input_schema or {}).get("properties")
    if isinstance(props, dict):
        for arg, schema in props.items():
            parts.append(str(arg))
            if isinstance(schema, dict) and isinstance(schema.get("description"), str):
                parts.append(schema["description"])
    return "\n".join(parts)[:_DOC_CHARS]


class SearchError(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class Searcher:
    """Regex or BM25 over the deferred tools of one request."""

    def __init__(self, tools: list[Tool] | None, kind: Kind, max_results: int) -> None:
        self.kind, self.max_results = kind, max_results
        self.tools = [t for t in tools or () if is_deferred(t)]
        self.docs = [_document(t) for t in self.tools]
        # BM25 by hand (Okapi, k1=1.2, b=0.75): ~20 lines for at most a few thousand short
        # documents, where rank-bm25 / bm25s would bring numpy (and scipy) into the image
        self._terms = [Counter(_words(d)) for d in self.docs] if kind == "bm25" else []

    def search(self, query: str) -> list[str]:
        """The names of the best tools, best first; :class:`SearchError` for a bad query."""
        if not query.strip():
            raise SearchError("invalid_tool_input", "the query is empty")
        if self.kind == "regex":
            return self._regex(query)
        return self._bm25(query)

    def _regex(self, pattern: str) -> list[str]:
        if len(pattern) > MAX_PATTERN:
            raise SearchError(
                "invalid_tool_input", f"the pattern is longer than {MAX_PATTERN} characters"
            )
        try:  # the regex module: re's syntax (VERSION0), plus a timeout per match
            compiled = regex.compile(pattern, flags=regex.VERSION0)
        except (regex.error, RecursionError, OverflowError, ValueError) as err:
            raise SearchError("invalid_tool_input", f"invalid regular expression: {err}") from None
        deadline = time.monotonic() + REGEX_BUDGET_S
        hits = []
        for tool, doc in zip(self.tools, self.docs, strict=True):
            try:
                found = compiled.search(doc, timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise SearchError(
                    "invalid_tool_input",
                    f"the pattern took over {REGEX_BUDGET_S * 1000:g} ms to match "
                    "(nested repetition backtracks): use a simpler pattern",
                ) from None
            if found:
                hits.append(tool.name)
        return hits[: self.max_results]

    def _bm25(self, query: str) -> list[str]:
        words = set(_words(query))
        n = len(self._terms)
        if not words or not n:
            return []
        lengths = [sum(c.values()) for c in self._terms]
        avg = sum(lengths) / n or 1.0
        scores = []
        for i, terms in enumerate(self._terms):
            score = 0.0
            for w in words:
                f = terms.get(w, 0)
                if not f:
                    continue
                df = sum(1 for t in self._terms if w in t)
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * lengths[i] / avg))
            if score > 0:
                scores.append((-score, i))
        scores.sort()
        return [self.tools[i].name for _, i in scores[: self.max_results]]


def use_block(block_id: str, name: str, query: str) -> dict[str, Any]:
    return {"type": "server_tool_use", "id": block_id, "name": name, "input": {"query": query}}


def result_block(tool_use_id: str, names: list[str]) -> dict[str, Any]:
    refs = [{"type": "tool_reference", "tool_name": n} for n in names]
    content = {"type": "tool_search_tool_search_result", "tool_references": refs}
    return {"type": "tool_search_tool_result", "tool_use_id": tool_use_id, "content": content}


def error_block(tool_use_id: str, error_code: str, message: str) -> dict[str, Any]:
    content = {
        "type": "tool_search_tool_result_error",
        "error_code": error_code,
        "error_message": message,
    }
    return {"type": "tool_search_tool_result", "tool_use_id": tool_use_id, "content": content}


def result_text(names: list[str]) -> str:
    if not names:
        return "No deferred tool matched the query. Try other words; do not invent tools."
    return "Tools loaded (now callable): " + ", ".join(names)
