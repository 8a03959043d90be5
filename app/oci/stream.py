"""Reading an OCI streaming answer: parsed events as they arrive, pings through long silences.

Contract: :func:`read_chunks` iterates the body of a streaming response and yields, in order,
lists of parsed events (:class:`~app.oci.sse.SseReader`), or ``None`` each time the upstream
has been silent for ``ping_every`` seconds, so the caller can keep its client connection alive.
It raises :class:`~app.oci.errors.UpstreamError`: ``timeout`` after ``idle`` seconds of silence,
``stream_broken`` on a cut connection or a malformed event (neither retryable: the caller's
stream has started). A real cancellation (client gone, shutdown) always propagates.

One timer per stream (:class:`_Watchdog`) notices the silence, instead of a timer per socket
read: a ``readany`` wrapped in ``asyncio.timeout`` costs a timer handle per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from app.oci.errors import broken_answer, timeout_error
from app.oci.sse import MalformedChunk, SseReader


class _Watchdog:
    """Notices upstream silence for one stream.

    It re-arms itself while data keeps coming; after ``every`` seconds without data (or since
    the last ping) it cancels the reading task, but only while that task is waiting in
    ``readany`` (never while it is handing bytes to the client), and marks the cancellation as
    its own so the reader turns it into a ping or an idle timeout.
    """

    __slots__ = ("_every", "_handle", "_loop", "_task", "fired", "last", "mark", "reading")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], every: float
    ) -> None:
        self._loop = loop
        self._task = task
        self._every = every
        self.last = self.mark = loop.time()
        self.fired = False
        self.reading = False
        self._handle = loop.call_at(self.mark + every, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self.mark + self._every
        if now < due or not self.reading:
            self._handle = self._loop.call_at(max(due, now + 0.05), self._check)
            return
        self.fired = True
        self._task.cancel()
        self._handle = self._loop.call_at(now + self._every, self._check)

    def close(self) -> None:
        self._handle.cancel()


async def read_chunks(
    content: aiohttp.StreamReader, *, idle: float, ping_every: float
) -> AsyncGenerator[list[dict[str, Any]] | None, None]:
    """Yield lists of parsed events as they come; ``None`` after each ``ping_every`` of silence."""
    reader = SseReader()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    dog = _Watchdog(loop, task, min(ping_every, idle))
    try:
        while True:
            dog.reading = True
            try:
                data = await content.readany()
            except asyncio.CancelledError:
                if not dog.fired:
                    raise
                dog.fired = False
                if task.uncancel() > 0:
                    raise  # a real cancellation (client gone, shutdown) arrived as well
                now = loop.time()
                if now - dog.last >= idle:
                    raise timeout_error(f"no data for {idle:g}s mid-stream") from None
                dog.mark = now
                dog.reading = False
                yield None
                continue
            except (aiohttp.ClientError, OSError) as err:
                raise broken_answer(
                    f"the OCI stream was cut off ({type(err).__name__})", retryable=False
                ) from None
            finally:
                dog.reading = False
            if not data:
                tail = reader.close()
                if tail:
                    yield tail
                return
            dog.last = dog.mark = loop.time()
            try:
                events = reader.feed(data)
            except MalformedChunk as err:
                raise broken_answer(str(err), retryable=False) from None
            if events:
                yield events
    finally:
        dog.close()
