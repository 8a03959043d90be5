"""Who and what a request is for, from the headers Claude Code (and the operator) send.

Contract: :func:`attribution` reads, never requires, these request headers and returns only
cleaned values (printable ASCII, bounded length; anything else is dropped):

- ``x-claude-code-session-id``, ``x-claude-code-agent-id``, ``x-claude-code-parent-agent-id``
  (Claude Code sends the session id on every request: tests/fixtures/anthropic/*.json; the
  agent ids for subagents — Claude Code gateway protocol, "attribution headers");
- the request-class hints Claude Code sends with ``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1``:
  ``x-claude-code-request-class`` (main | subagent | compaction | auxiliary; any other value
  becomes ``other``), ``x-claude-code-agent-type``, ``x-claude-code-compaction``,
  ``x-claude-code-prompt-id``;
- ``x-gateway-tags``: the operator's own tags, comma-separated (Claude Code:
  ``ANTHROPIC_CUSTOM_HEADERS="x-gateway-tags: team-x,ci"``), at most :data:`MAX_TAGS`, each of
  ``[A-Za-z0-9_.:/-]``, up to 40 characters, lower-cased.

The access log, the audit record and the span carry all of it; the usage data only the bounded
ones (request class, tags); metric labels none of it (a session id per series would grow the
metrics without bound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_TAGS = 8
_CLASSES = frozenset({"main", "subagent", "compaction", "auxiliary"})
_TEXT = re.compile(r"^[\x21-\x7e]{1,128}$")
_TAG = re.compile(r"^[a-z0-9_.:/-]{1,40}$")


@dataclass(frozen=True, slots=True)
class Attribution:
    session_id: str | None = None
    agent_id: str | None = None
    parent_agent_id: str | None = None
    request_class: str | None = None
    agent_type: str | None = None
    compaction: str | None = None
    prompt_id: str | None = None
    tags: tuple[str, ...] = ()

    def fields(self) -> dict[str, Any]:
        """For the access log and the audit record (names as in README "Observability")."""
        return {
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "parent_agent_id": self.parent_agent_id,
            "request_class": self.request_class,
            "agent_type": self.agent_type,
            "compaction": self.compaction,
            "prompt_id": self.prompt_id,
            "tags": list(self.tags) or None,
        }

    def span_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            f"gateway.claude_code.{k}": v
            for k, v in self.fields().items()
            if v is not None and k != "tags"
        }
        if self.tags:
            attrs["gateway.tags"] = list(self.tags)
        return attrs


NONE = Attribution()


def _text(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value if _TEXT.match(value) else None


def attribution(headers: Any) -> Attribution:
    """The request's attribution (``headers``: any case-insensitive mapping)."""
    session = _text(headers, "x-claude-code-session-id")
    cls = _text(headers, "x-claude-code-request-class")
    raw_tags = headers.get("x-gateway-tags")
    tags: tuple[str, ...] = ()
    if raw_tags:
        seen: dict[str, None] = {}
        for part in str(raw_tags).split(","):
            tag = part.strip().lower()
            if _TAG.match(tag):
                seen.setdefault(tag)
        tags = tuple(seen)[:MAX_TAGS]
    if session is None and cls is None and not tags and "x-claude-code-agent-id" not in headers:
        return NONE  # the common non-Claude-Code case: nothing else to look for
    return Attribution(
        session_id=session,
        agent_id=_text(headers, "x-claude-code-agent-id"),
        parent_agent_id=_text(headers, "x-claude-code-parent-agent-id"),
        request_class=(cls if cls in _CLASSES else "other") if cls else None,
        agent_type=_text(headers, "x-claude-code-agent-type"),
        compaction=_text(headers, "x-claude-code-compaction"),
        prompt_id=_text(headers, "x-claude-code-prompt-id"),
        tags=tags,
    )
