"""Routing rules: which gateway model serves a request, by kind of request. Pure.

Contract: :func:`route` walks ``config.routing`` in order and returns the first rule whose
matchers all hold *and* whose target the caller may use (:meth:`Principal.allows`; a rule to a
model the caller may not use is skipped, so a rule can never widen a key's models), as
``(index, Resolved)``; ``None`` when no rule applies and the resolved model stays. It runs after
the requested name was resolved (404/403 come first, for the name the client sent).

Matchers (``app.config.RouteMatch``):

- ``request_class``: :func:`classify`. The hint header ``x-claude-code-request-class`` wins
  when it carries a known class (Claude Code's gateway hint headers; 2.1.197, the version the
  e2e tests install, does not send it, and ``ANTHROPIC_CUSTOM_HEADERS`` can). Otherwise the
  class is inferred only from shapes that are unambiguous in Claude Code's own requests:

  * ``compaction``: the last user turn ends with a text block containing "Your task is to
    create a detailed summary of" — the opening of all three of Claude Code 2.1.197's compact
    prompts (full, partial "RECENT portion", "up_to"); fixture cc-18 appends it after the
    tool_result;
  * ``title``: no tools and ``output_config.format`` a JSON schema whose only property is
    ``title`` (fixtures cc-16, cc-22);
  * for the other requests carrying Claude Code's ``x-anthropic-billing-header`` system block:
    ``subagent`` when it says ``cc_is_subagent=true`` (2.1.197 marks sub-agent requests so),
    ``main`` when the request has tools, else ``auxiliary``.

  Any other request has no class, and rules with ``request_class`` do not match it.
- ``min_input_tokens``: the calibrated estimate (``Calibrator``) for the resolved model.
- ``thinking``: whether ``thinking.type`` is ``enabled`` or ``adaptive``.
- ``model``: a glob over the client's model name (``[1m]`` stripped) or the resolved model.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from app.anthropic.models import MessagesRequest, TextBlock, text
from app.catalog import Catalog, Resolved
from app.config_sections import RequestClass, RoutingRule
from app.security.policy import Principal

HINT_HEADER = "x-claude-code-request-class"
CLASSES: frozenset[str] = frozenset(RequestClass.__args__)  # type: ignore[attr-defined]
_COMPACT = "Your task is to create a detailed summary of"
_BILLING = "x-anthropic-billing-header:"


def classify(req: MessagesRequest, hint: str | None) -> str | None:
    """The request's class (see the module docstring), or None when it cannot be told."""
    if hint:
        value = hint.strip().lower()
        if value in CLASSES:
            return value
    if _is_compaction(req):
        return "compaction"
    if not req.tools and _is_title(req.output_config.format if req.output_config else None):
        return "title"
    billing = _billing(req)
    if billing is None:
        return None
    if "cc_is_subagent=true" in billing:
        return "subagent"
    return "main" if req.tools else "auxiliary"


def _is_compaction(req: MessagesRequest) -> bool:
    if not req.messages or req.messages[-1].role != "user":
        return False
    content = req.messages[-1].content
    if isinstance(content, str):
        return _COMPACT in content
    texts = [b for b in content if isinstance(b, TextBlock)]
    return bool(texts) and _COMPACT in text(texts[-1].text)


def _is_title(fmt: dict[str, Any] | None) -> bool:
    if not fmt or fmt.get("type") != "json_schema":
        return False
    schema = fmt.get("schema")
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and set(props) == {"title"}


def _billing(req: MessagesRequest) -> str | None:
    if isinstance(req.system, list) and req.system:
        first = req.system[0]
        if isinstance(first, TextBlock):
            value = text(first.text)
            if value.startswith(_BILLING):
                return value
    return None


def thinking_on(req: MessagesRequest) -> bool:
    return req.thinking is not None and req.thinking.type in ("enabled", "adaptive")


def route(
    rules: tuple[RoutingRule, ...],
    req: MessagesRequest,
    hint: str | None,
    resolved: Resolved,
    estimate: int,
    key: Principal | None,
    catalog: Catalog,
) -> tuple[int, str | None, Resolved] | None:
    """``(rule index, request class, new resolution)`` of the first rule that applies."""
    cls = classify(req, hint) if any(r.match.request_class for r in rules) else None
    asked = req.model.strip().removesuffix("[1m]")
    for i, rule in enumerate(rules):
        m = rule.match
        if m.request_class is not None:
            wanted = (m.request_class,) if isinstance(m.request_class, str) else m.request_class
            if cls not in wanted:
                continue
        if m.min_input_tokens is not None and estimate < m.min_input_tokens:
            continue
        if m.thinking is not None and thinking_on(req) != m.thinking:
            continue
        if m.model is not None and not (
            fnmatch.fnmatchcase(asked, m.model) or fnmatch.fnmatchcase(resolved.name, m.model)
        ):
            continue
        if key is not None and not key.allows(rule.model):
            continue  # a rule never widens what the caller may use
        target = catalog.resolve(rule.model)
        return i, cls, Resolved(target.name, target.spec, resolved.requested)
    return None
