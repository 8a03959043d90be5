"""Anthropic ``url`` image/document sources, fetched and inlined as base64 before translation.

Contract: :func:`inline_media` replaces, in a parsed :class:`MessagesRequest`, every ``image``
block with a ``url`` source (in messages and inside ``tool_result`` content) by a ``base64``
source, and every ``document`` block with a ``url`` source by a base64 PDF, so the translators
only ever see base64 and OCI only ever gets ``data:`` URLs (real OCI takes base64:
oci-real-world.md #9, SDK ``ImageUrl.url``). Only the sources the model can use are fetched
(images for a ``vision`` model, PDFs for a ``documents`` model); the others are left to the
translator's own 400 or note. The service's pre-check over the parsed
blocks (``app/service/__init__.py``) keeps the walk off the common path.

Every failure is a 400 ``invalid_request_error`` naming the block
(``messages[2].content[0].source.url: cannot fetch the image: …``): fetching switched off
(``media.fetch: false``), too many sources, a refused address, a redirect to one, too large,
an unaccepted type, a timeout. All fetches of a request run concurrently (the same URL once)
under one deadline, ``media.timeout``. The network rules are :mod:`app.oci.media_fetch`'s.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from app.anthropic.models import (
    Base64Source,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    ToolResultBlock,
    UrlSource,
)
from app.catalog.spec import ModelSpec
from app.config_sections import Media
from app.errors import InvalidRequest
from app.observability import metrics as m
from app.oci.media_fetch import Fetched, FetchRefused, MediaFetcher

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DOCUMENT_TYPES = frozenset({"application/pdf"})
# base64 of a large body is a few ms of CPU: off the event loop beyond this
_THREAD_FROM = 1 << 20


@dataclass(slots=True)
class _Slot:
    path: str
    kind: str  # image | document
    url: str
    block: ImageBlock | DocumentBlock


def _slots(req: MessagesRequest, spec: ModelSpec) -> list[_Slot]:
    vision, documents = spec.has("vision"), spec.has("documents")
    out: list[_Slot] = []

    def visit(block: Any, path: str) -> None:
        if isinstance(block, ImageBlock) and isinstance(block.source, UrlSource) and vision:
            out.append(_Slot(path, "image", block.source.url, block))
        elif isinstance(block, DocumentBlock) and block.source.get("type") == "url" and documents:
            out.append(_Slot(path, "document", str(block.source.get("url", "")), block))

    for i, msg in enumerate(req.messages):
        if isinstance(msg.content, str):
            continue
        for j, block in enumerate(msg.content):
            path = f"messages[{i}].content[{j}]"
            if isinstance(block, ToolResultBlock) and isinstance(block.content, list):
                for k, inner in enumerate(block.content):
                    visit(inner, f"{path}.content[{k}]")
            else:
                visit(block, path)
    return out


async def _encode(data: bytes) -> str:
    if len(data) >= _THREAD_FROM:
        return await asyncio.to_thread(lambda: base64.b64encode(data).decode("ascii"))
    return base64.b64encode(data).decode("ascii")


async def inline_media(req: MessagesRequest, spec: ModelSpec, cfg: Media) -> None:
    """Fetch and inline the request's url sources in place; see the module docstring."""
    slots = _slots(req, spec)
    if not slots:
        return
    first = slots[0]
    if not cfg.fetch:
        m.MEDIA_FETCHES.labels(first.kind, "disabled").inc()
        raise InvalidRequest(
            f"{first.path}.source: url sources are not fetched by this gateway (media.fetch is "
            f"off); send the {first.kind} as base64"
        )
    urls = list(dict.fromkeys(s.url for s in slots))
    if len(urls) > cfg.max_items:
        raise InvalidRequest(
            f"{first.path}.source: {len(urls)} url sources; this gateway fetches at most "
            f"{cfg.max_items} per request (send base64 instead)"
        )
    kind_of = {s.url: s.kind for s in slots}
    accept_of = {"image": IMAGE_TYPES, "document": DOCUMENT_TYPES}
    fetched: dict[str, Fetched] = {}
    async with MediaFetcher(
        max_bytes=cfg.max_bytes,
        timeout=cfg.timeout,
        max_redirects=cfg.max_redirects,
        allow_private=cfg.allow_private,
        allowed_hosts=cfg.allowed_hosts,
    ) as fetcher:

        async def one(url: str) -> None:
            kind = kind_of[url]
            try:
                fetched[url] = await fetcher.fetch(url, accept_of[kind])
            except FetchRefused as err:
                m.MEDIA_FETCHES.labels(kind, err.result).inc()
                path = next(s.path for s in slots if s.url == url)
                raise InvalidRequest(f"{path}.source.url: cannot fetch the {kind}: {err}") from None
            m.MEDIA_FETCHES.labels(kind, "ok").inc()

        try:
            async with asyncio.timeout(cfg.timeout):  # one deadline for all of them
                async with asyncio.TaskGroup() as group:
                    for url in urls:
                        group.create_task(one(url))
        except TimeoutError:
            pending = [u for u in urls if u not in fetched]
            slot = next(s for s in slots if s.url in pending) if pending else first
            m.MEDIA_FETCHES.labels(slot.kind, "timeout").inc()
            raise InvalidRequest(
                f"{slot.path}.source.url: cannot fetch the {slot.kind}: no answer within "
                f"{cfg.timeout:g}s"
            ) from None
        except ExceptionGroup as group_err:  # the first refusal; a bug stays a bug
            refusal = next((e for e in group_err.exceptions if isinstance(e, InvalidRequest)), None)
            if refusal is None:
                raise
            raise refusal from None
    encoded = {url: await _encode(f.data) for url, f in fetched.items()}
    for s in slots:
        f = fetched[s.url]
        if isinstance(s.block, ImageBlock):
            s.block.source = Base64Source(media_type=f.media_type, data=encoded[s.url])
        else:
            s.block.source = {"type": "base64", "media_type": f.media_type, "data": encoded[s.url]}
