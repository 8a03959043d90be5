"""Helpers shared by both request translators: system prompt, images, documents, tool results.

Contract: pure functions from Anthropic wire models to plain values; they raise
:class:`~app.errors.InvalidRequest` for content the target model can never accept (an image for a
model without vision, a PDF for a model without documents) with a message naming the model.
"""

from __future__ import annotations

from app.anthropic.models import (
    Base64Source,
    DocumentBlock,
    ImageBlock,
    JsonText,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    UrlSource,
    has_text,
    join_texts,
)
from app.anthropic.models import CountTokensRequest as _Count
from app.anthropic.models import text as text_of
from app.errors import InvalidRequest

# Claude Code's first system block changes every build and defeats prefix caching upstream
# (peers.md #5); it carries no instruction for the model.
_BILLING_HEADER = "x-anthropic-billing-header:"


def system_texts(req: MessagesRequest | _Count) -> list[str]:
    """The system prompt pieces: top-level ``system`` then ``role: system`` messages, in order."""
    texts: list[str] = []
    system = req.system
    if isinstance(system, str):
        if system:
            texts.append(system)
    elif system:
        for block in system:
            if isinstance(block, TextBlock) and has_text(block.text):
                piece = text_of(block.text)
                if not piece.startswith(_BILLING_HEADER):
                    texts.append(piece)
    for msg in req.messages:
        if msg.role == "system":
            if isinstance(msg.content, str):
                if msg.content:
                    texts.append(msg.content)
            else:
                texts.extend(
                    text_of(b.text)
                    for b in msg.content
                    if isinstance(b, TextBlock) and has_text(b.text)
                )
    return texts


def image_url(block: ImageBlock, model: str, vision: bool) -> str:
    if not vision:
        raise InvalidRequest(
            f"model {model!r} cannot take images; choose a model with the vision capability"
        )
    src = block.source
    if isinstance(src, Base64Source):
        if not src.media_type or not src.data:  # OCI takes data:<type>;base64,<data> only
            raise InvalidRequest("an image's base64 source needs a media_type and its data")
        return f"data:{src.media_type};base64,{src.data}"
    if isinstance(src, UrlSource):
        return src.url
    raise InvalidRequest(
        f"image source type {src.type!r} is not supported by this gateway (use base64 or url)"
    )


def document_part(block: DocumentBlock, model: str, documents: bool) -> dict[str, object]:
    """A ``document`` block as an OCI content part: plain text inline, PDFs as DOCUMENT."""
    src = block.source
    kind = src.get("type")
    title = f"{block.title}\n\n" if block.title else ""
    if kind == "text" and isinstance(src.get("data"), str):
        return {"type": "TEXT", "text": title + src["data"]}
    if kind == "content":
        inner = src.get("content")
        if isinstance(inner, str):
            return {"type": "TEXT", "text": title + inner}
        if isinstance(inner, list):
            text = "\n".join(
                b.get("text", "") for b in inner if isinstance(b, dict) and b.get("type") == "text"
            )
            return {"type": "TEXT", "text": title + text}
    if kind in ("base64", "url"):
        if not documents:
            raise InvalidRequest(
                f"model {model!r} cannot read PDF documents; send the text instead or choose "
                "a model with the documents capability"
            )
        if kind == "base64":
            media = src.get("media_type") or "application/pdf"
            return {
                "type": "DOCUMENT",
                "documentUrl": {"url": f"data:{media};base64,{src.get('data', '')}"},
            }
        return {"type": "DOCUMENT", "documentUrl": {"url": str(src.get("url", ""))}}
    raise InvalidRequest(f"document source type {kind!r} is not supported by this gateway")


def image_note(count: int, model: str, vision: bool) -> str:
    """What a tool result's text says about its images (sent separately, or not at all)."""
    if not count:
        return ""
    images = "1 image" if count == 1 else f"{count} images"
    if vision:
        return f"[{images} from this tool result: see the next user message]"
    # an agent's Read of a PNG must not kill the session on a text-only model
    return f"[{images} omitted: {model} cannot view images]"


def tool_result_text(content: object, is_error: bool | None, note: str = "") -> str | JsonText:
    """The text of a tool result plus ``note`` (see :func:`image_note`). Errors are flagged.
    A result of text only, with no note and no error, stays encoded (``join_texts``)."""
    pieces: list[str | JsonText] = []
    if isinstance(content, (str, JsonText)):
        pieces.append(content)
    elif content is not None:
        for b in content:  # type: ignore[attr-defined]
            if isinstance(b, TextBlock):
                pieces.append(b.text)
            elif isinstance(b, DocumentBlock):
                src = b.source
                if src.get("type") == "text" and isinstance(src.get("data"), str):
                    pieces.append(src["data"])
            elif isinstance(b, OtherBlock) and b.type == "tool_reference":
                # tool search's client-side variant: the tool itself is now sent inline
                # (app/service/tool_search.py); the model reads that it was loaded
                pieces.append(f"Tool loaded: {b.extra.get('tool_name')}")
            elif isinstance(b, OtherBlock) and b.type == "search_result":
                for inner in b.extra.get("content") or []:
                    if isinstance(inner, dict) and isinstance(inner.get("text"), str):
                        pieces.append(inner["text"])
    if not note and not is_error and pieces and all(type(p) is JsonText for p in pieces):
        joined = join_texts(pieces)  # type: ignore[arg-type]
        if joined.chars:
            return joined
    text = "\n".join(p if isinstance(p, str) else text_of(p) for p in pieces)
    if note:
        text = f"{text}\n{note}" if text else note
    if not text:
        text = "(no output)"
    if is_error:
        # OCI TOOL messages have no error flag: say it in the text the model reads
        text = f"[tool error] {text}"
    return text


def tool_result_images(content: object) -> list[ImageBlock]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, ImageBlock)]
    return []
