"""Request bodies -> request models, within the server's size, count and depth limits. Pure.

Contract: :func:`parse` turns body bytes into a :class:`~app.anthropic.models.MessagesRequest`
or :class:`~app.anthropic.models.CountTokensRequest`, or raises
:class:`~app.errors.InvalidRequest` (400) naming what is wrong: not JSON, not an object, a field
(msgspec's errors, with the field's path), too many messages / tools / content blocks, no user
turn (for messages), or a tool input nested deeper than ``server.max_depth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from app.anthropic.conversation_cache import MEMO, ConversationCache
from app.anthropic.decode import RequestError, decode_request
from app.anthropic.models import CountTokensRequest, Message, MessagesRequest, ToolUseBlock
from app.config import ServerLimits
from app.errors import InvalidRequest

R = TypeVar("R", MessagesRequest, CountTokensRequest)


def parse(
    body: bytes, model_cls: type[R], limits: ServerLimits, cache: ConversationCache | None = None
) -> R:
    try:
        req = decode_request(body, model_cls, cache)
    except RequestError as err:
        raise InvalidRequest(str(err)) from None
    if len(req.messages) > limits.max_messages:
        raise InvalidRequest(
            f"messages: {len(req.messages)} messages exceed the limit of {limits.max_messages}"
        )
    if req.tools and len(req.tools) > limits.max_tools:
        raise InvalidRequest(
            f"tools: {len(req.tools)} tools exceed the limit of {limits.max_tools}"
        )
    # One pass over the messages: block count, a non-system turn, and the depth of tool
    # inputs. Only free-form JSON that the gateway re-serialises needs a depth check: the
    # message structure is bounded by the models, orjson refuses input nested over 1024
    # levels, and tool schemas are cut at a fixed depth by the sanitiser (walking the whole
    # body cost ~200 us per Claude Code turn).
    blocks = 0
    conversation = False
    deepest = 0  # of the kept messages' tool inputs (their facts are memoised)
    tool_inputs: list[dict[str, Any]] = []
    for msg in req.messages:
        if msg.role != "system":
            conversation = True
        memo = msg.__dict__.get(MEMO)
        if memo is not None:  # a kept conversation's message: counted once (conversation_cache)
            facts = memo.get(PARSED)
            if facts is None:
                facts = memo[PARSED] = _facts(msg)
            blocks += facts[0]
            deepest = max(deepest, facts[1])
            continue
        content = msg.content
        if isinstance(content, list):
            blocks += len(content)
            for b in content:
                if isinstance(b, ToolUseBlock) and b.input:
                    tool_inputs.append(b.input)
    if blocks > limits.max_blocks:
        raise InvalidRequest(
            f"messages: {blocks} content blocks exceed the limit of {limits.max_blocks}"
        )
    if not conversation and model_cls is MessagesRequest:
        raise InvalidRequest("messages: at least one user message is required")
    if deepest > limits.max_depth:
        raise InvalidRequest(f"the request body nests deeper than {limits.max_depth} levels")
    if tool_inputs:
        check_depth(tool_inputs, limits.max_depth, roots=True)
    return req


#: a kept message's memo entry (conversation_cache.MEMO) for what parse() counts in it
PARSED = "parse"


def _facts(msg: Message) -> tuple[int, int]:
    """A message's content blocks and the nesting depth of its tool inputs (0: none)."""
    content = msg.content
    if not isinstance(content, list):
        return 0, 0
    inputs = [b.input for b in content if isinstance(b, ToolUseBlock) and b.input]
    return len(content), nesting(inputs, roots=True) if inputs else 0


def check_depth(data: Any, limit: int, *, roots: bool = False) -> None:
    """Reject absurdly nested JSON before it is walked again (recursion is not free).
    ``data`` is at depth 1, or with ``roots`` each item of the list ``data`` is."""
    for depth, _level in enumerate(_levels(data, roots), 1):
        if depth > limit:
            raise InvalidRequest(f"the request body nests deeper than {limit} levels")


def nesting(data: Any, *, roots: bool = False) -> int:
    """How deep ``data`` nests, counted as :func:`check_depth` counts."""
    return sum(1 for _level in _levels(data, roots))


def _levels(data: Any, roots: bool) -> Iterator[list[Any]]:
    """The containers of ``data`` level by level (``data`` the first, or with ``roots`` the
    items of the list ``data``). Level by level: one walk for every tool input of a turn (an
    agent's turn has hundreds, most of them flat), not a stack of (node, depth) pairs per
    input, and no recursion."""
    level = list(data) if roots else [data]
    while level:
        yield level
        below: list[Any] = []
        for node in level:
            if isinstance(node, (dict, list)):
                for v in node.values() if isinstance(node, dict) else node:
                    if isinstance(v, (dict, list)):
                        below.append(v)
        level = below
