"""Conversations kept between requests, so that a turn's earlier messages are not decoded again.

Contract: a :class:`ConversationCache` keeps *prefixes*: the bytes of a request body from its
first byte to the end of the last message its next turn will send unchanged (:func:`_cut`: the
message before the last one carrying a ``cache_control`` marker, else the second-to-last), with
the messages decoded from them.

- :meth:`~ConversationCache.split` takes a new body. When the body starts with a kept prefix
  and a message ends there in it too (a ``,`` or the array's ``]`` follows), it returns the
  prefix and the *rest*: the prefix's head (every byte before its first message) followed by
  the body after the prefix's messages -- a request body of its own, with the new messages and
  every other field. The caller decodes the rest and puts the prefix's messages in front.
- :meth:`~ConversationCache.keep` (a body decoded whole, from the second one that begins with
  the same bytes) and :meth:`~ConversationCache.extend` (a body decoded from a split) record
  that body's prefix for its next turn.
- Bytes are compared, never trusted: a hash of a body's first :data:`KEY_BYTES` bytes picks the
  candidates, ``bytes.startswith`` decides, and a prefix is kept only once each of its messages'
  JSON was found at its place in the body.
- At most ``max_bytes`` are kept, each prefix counted :data:`COST_FACTOR` times its length (the
  prefix, the bodies its texts are views of, the decoded objects); least recently used out first.
- One cache per worker process, used from its event loop thread only (no lock).

Why (docs/design.md, "Long conversations: the conversation decoded once"): Claude Code sends the
whole conversation on every turn and moves its one ``cache_control`` marker to the new last user
message. A turn's body is therefore the previous turn's body, byte for byte, up to the message
that had the marker; then come that message (now without it) and the new ones. Decoding the
repeated messages again was most of a long turn's CPU: 1.5 ms of a 1 MB turn, against 0.1 ms to
find and compare its prefix and decode the rest.

What is shared is safe to share: decoded messages are never changed after decoding, except by
the url-source inliner (app/service/media.py), and a message with a url source is never kept. A
hit returns exactly the messages that decoding those same bytes gives, so a request only ever
gets back what its own body says.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec
from xxhash import xxh3_64_intdigest

from app.anthropic.models import (
    DocumentBlock,
    ImageBlock,
    Message,
    ToolResultBlock,
    UrlSource,
)

#: the attribute of a kept message holding its translations (app/translate/to_oci_generic.py):
#: context -> the OCI messages it became. Only kept messages have one: they are the ones a
#: later request sends again, and the only ones shared between requests.
MEMO = "_oci"

#: candidates are found by a hash of a body's first bytes; a prefix shorter than this is not kept
KEY_BYTES = 1024
#: prefixes shorter than this are not kept: their decode costs less than finding them (~0.03 ms)
MIN_PREFIX = 32 * 1024
#: a prefix's share of ``max_bytes``, times its length: it keeps two bodies of about its size
#: alive (the body this worker first decoded whole, whose views the messages' texts are, and the
#: latest, whose bytes the prefix is a view of) and the decoded objects (0.6x, measured on the
#: bench's sessions): 2.6x, rounded up
COST_FACTOR = 3
#: bodies remembered as seen once (a hash of each one's first half), for keep()
SEEN = 4096
#: how far from the end a message with a cache_control marker ends the prefix (:func:`_cut`)
MARKED_WITHIN = 4
#: prefixes kept per candidate hash: conversations whose first KEY_BYTES are the same (users of
#: one project start with the same context); a candidate that differs is refused at its first
#: differing byte
PER_KEY = 64

_WHITESPACE = frozenset(b" \t\r\n")
_COMMA, _CLOSE = ord(","), ord("]")


class _Messages(msgspec.Struct):
    """A body's messages as their JSON (any other field is skipped)."""

    messages: list[msgspec.Raw] = []


_MESSAGES = msgspec.json.Decoder(_Messages)


class Prefix:
    """A kept prefix: ``data`` (a view of a body's bytes up to the end of a message), ``head``
    (how many of them come before the first message) and the ``messages`` decoded from them."""

    __slots__ = ("data", "head", "key", "messages")

    def __init__(self, data: memoryview, head: int, messages: tuple[Message, ...]) -> None:
        # a view of the body it came from, not a copy (copying 1 MB per turn cost 0.1 ms)
        self.data = data
        self.head = head
        self.messages = messages
        self.key = xxh3_64_intdigest(memoryview(data)[:KEY_BYTES])


class ConversationCache:
    """Prefixes of recent conversations, at most ``max_bytes`` (0: off), LRU."""

    def __init__(
        self,
        max_bytes: int,
        on_result: Callable[[bool], None] | None = None,
        on_size: Callable[[int], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._lru: OrderedDict[Prefix, None] = OrderedDict()
        self._by_key: dict[int, list[Prefix]] = {}
        self._bytes = 0
        #: bodies decoded whole but not kept, seen once (_seen_key: a hash of the first half)
        self._seen: OrderedDict[int, None] = OrderedDict()
        #: bodies of MIN_PREFIX bytes or more that did / did not start with a kept prefix
        self.hits = 0
        self.misses = 0
        # the service's metrics (this module stays pure): each split's outcome, the new size
        self._on_result = on_result
        self._on_size = on_size

    @property
    def size_bytes(self) -> int:
        """What the kept prefixes count against ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._lru)

    def split(self, body: bytes) -> tuple[Prefix, bytes] | None:
        """The longest kept prefix ``body`` starts with, and ``body`` without its messages."""
        if len(body) < MIN_PREFIX:
            return None
        found = None
        for p in self._by_key.get(xxh3_64_intdigest(memoryview(body)[:KEY_BYTES]), ()):
            if (found is None or len(p.data) > len(found.data)) and body.startswith(p.data):
                found = p
        if found is None:
            self._result(False)
            return None
        at = _skip_space(body, len(found.data))
        if at >= len(body):
            return None
        mark = body[at]
        if mark == _COMMA:
            rest = body[: found.head] + body[at + 1 :]
        elif mark == _CLOSE:
            rest = body[: found.head] + body[at:]
        else:  # not the end of a message here: another body with the same first bytes
            self._result(False)
            return None
        if rest.find(b'"messages"', found.head) >= 0:
            # a second "messages" key after the array would win over it in a whole decode
            # (the last duplicate key wins), not be appended to the kept messages: decode whole.
            # Also a tool input with a "messages" key: rare, and only costs the hit.
            self._result(False)
            return None
        self._result(True)
        self._lru.move_to_end(found)
        return found, rest

    def keep(self, body: bytes, messages: list[Message]) -> None:
        """Record the prefix of ``body``, decoded whole into ``messages``, for its next turn --
        from the second body whose first half begins like it (:func:`_seen_key`): finding the
        messages' spans costs ~0.8 ms per MB, which a body seen once (a one-off request, a
        conversation's first turn on this worker) need not pay."""
        if len(messages) < 3 or len(body) < MIN_PREFIX:
            return
        key = _seen_key(body)
        if key not in self._seen:
            self._seen[key] = None
            if len(self._seen) > SEEN:
                self._seen.popitem(last=False)
            return
        spans = _kept_spans(body, messages)
        if spans is None:
            return
        raws, cut = spans
        head = _first_message_at(body, raws[0])
        if head is None:
            return
        end = _end_of(body, head, raws[:cut])
        if end is not None:
            kept = tuple(messages[:cut])
            self._add(Prefix(memoryview(body)[:end], head, kept), kept)

    def extend(self, prefix: Prefix, body: bytes, rest: bytes, new: list[Message]) -> None:
        """Record the prefix of ``body``, which :meth:`split` made ``prefix`` + ``rest`` and
        whose ``rest`` decoded into ``new``: ``prefix`` grown by the new messages before the
        next turn's changes (:func:`_cut`)."""
        if len(new) < 2:
            return  # the same prefix serves the next turn
        spans = _kept_spans(rest, new)
        if spans is None:
            return
        raws, cut = spans
        # the new messages follow the prefix's separator in ``body``
        start = _skip_space(body, len(prefix.data)) + 1
        end = _end_of(body, start, raws[:cut])
        if end is None:
            return
        added = tuple(new[:cut])
        grown = Prefix(memoryview(body)[:end], prefix.head, prefix.messages + added)
        self._drop(prefix)  # its conversation has moved on: the longer prefix replaces it
        self._add(grown, added)

    def resize(self, max_bytes: int) -> None:
        """A new bound (a config reload): what no longer fits goes, oldest first."""
        self.max_bytes = max_bytes
        while self._lru and self._bytes > max_bytes:
            self._drop(next(iter(self._lru)))
        self._sized()

    def _result(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self._on_result is not None:
            self._on_result(hit)

    def _sized(self) -> None:
        if self._on_size is not None:
            self._on_size(self._bytes)

    def clear(self) -> None:
        self._lru.clear()
        self._by_key.clear()
        self._seen.clear()
        self._bytes = 0
        self._sized()

    def _add(self, p: Prefix, new: tuple[Message, ...]) -> None:
        """Keep ``p``; ``new``: its messages not kept before (they get their memo)."""
        cost = COST_FACTOR * len(p.data)
        if len(p.data) < max(MIN_PREFIX, KEY_BYTES) or cost > self.max_bytes:
            return
        for m in new:
            m.__dict__.setdefault(MEMO, {})
        bucket = self._by_key.get(p.key)
        if bucket is not None and len(bucket) >= PER_KEY:  # rare: drop its least recently used
            self._drop(next(q for q in self._lru if q.key == p.key))
        self._by_key.setdefault(p.key, []).append(p)
        self._lru[p] = None
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._lru)))
        self._sized()

    def _drop(self, p: Prefix) -> None:
        if p not in self._lru:
            return
        del self._lru[p]
        self._bytes -= COST_FACTOR * len(p.data)
        bucket = self._by_key.get(p.key)
        if bucket is not None:
            bucket.remove(p)
            if not bucket:
                del self._by_key[p.key]


def _kept_spans(data: bytes, messages: list[Message]) -> tuple[list[msgspec.Raw], int] | None:
    """The JSON of each of ``data``'s messages (decoded into ``messages``) and how many of them
    to keep (:func:`_cut`); None when none can be kept."""
    try:
        raws = _MESSAGES.decode(data).messages
    except (msgspec.ValidationError, msgspec.DecodeError):  # pragma: no cover - decoded before
        return None
    if len(raws) != len(messages):
        return None
    cut = _cut(raws)
    if cut == 0 or not all(map(shareable, messages[:cut])):
        return None
    return raws, cut


def _cut(raws: list[msgspec.Raw]) -> int:
    """How many of a body's messages (their JSON: ``raws``) the next turn will send again
    unchanged: all before the last one with a ``cache_control`` marker among the last
    :data:`MARKED_WITHIN`, else all but the last. Claude Code marks its last user message and
    moves the marker on the next turn, which changes that message's bytes; what follows it (a
    mid-conversation system message) may change too."""
    n = len(raws)
    for i in range(n - 1, max(-1, n - 1 - MARKED_WITHIN), -1):
        if bytes(raws[i]).find(b'"cache_control"') >= 0:
            return i
    return n - 1


def _seen_key(body: bytes) -> int:
    """What tells a conversation's next turn from another conversation for keep(): a hash of
    the body's first half, rounded down to a power of two (consecutive turns share it, since a
    turn changes only the end; conversations that only begin alike -- the same first prompt and
    project context -- do not)."""
    size = 1 << ((len(body) // 2).bit_length() - 1)
    return xxh3_64_intdigest(memoryview(body)[:size])


def _skip_space(body: bytes, at: int) -> int:
    while at < len(body) and body[at] in _WHITESPACE:
        at += 1
    return at


def _first_message_at(body: bytes, first: msgspec.Raw) -> int | None:
    """Where the first message's JSON starts in ``body`` (after ``"messages"``, ``:`` and
    ``[``), or None when it is not there (then nothing is kept)."""
    at = body.find(b'"messages"')
    while at >= 0:
        i = _skip_space(body, at + len(b'"messages"'))
        if i < len(body) and body[i] == ord(":"):
            i = _skip_space(body, i + 1)
            if i < len(body) and body[i] == ord("["):
                i = _skip_space(body, i + 1)
                if body.startswith(first, i):
                    return i
        at = body.find(b'"messages"', at + 1)
    return None


def _end_of(body: bytes, at: int, raws: list[msgspec.Raw]) -> int | None:
    """Where the last of ``raws`` ends in ``body``, each found in turn from ``at`` with only
    whitespace and one comma between two; None if one is not where it should be."""
    last = len(raws) - 1
    for i, raw in enumerate(raws):
        at = _skip_space(body, at)
        if not body.startswith(raw, at):
            return None
        at += len(raw)
        if i < last:
            at = _skip_space(body, at)
            if at >= len(body) or body[at] != _COMMA:
                return None
            at += 1
    return at


def shareable(message: Message) -> bool:
    """Whether ``message`` may serve other requests: no image or document with a url source
    (:func:`app.service.media.inline_media` replaces those sources in place)."""
    content = message.content
    if isinstance(content, str):
        return True
    for block in content:
        if isinstance(block, ToolResultBlock):
            inner = block.content
            if isinstance(inner, list) and not all(map(_no_url, inner)):
                return False
        elif not _no_url(block):
            return False
    return True


def _no_url(block: Any) -> bool:
    if isinstance(block, ImageBlock):
        return not isinstance(block.source, UrlSource)
    if isinstance(block, DocumentBlock):
        return not (isinstance(block.source, dict) and block.source.get("type") == "url")
    return True
