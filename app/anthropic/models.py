"""Wire models of the Anthropic Messages API, lenient in.

Contract: :class:`MessagesRequest` / :class:`CountTokensRequest` accept everything Claude Code
and the Python SDKs send (anthropic-messages.md §2, §8.5): unknown top-level fields, unknown
block types (kept as :class:`OtherBlock` and dropped by the translator), ``cache_control``
anywhere, ``role: "system"`` entries inside ``messages``, thinking blocks with empty signatures,
server tools. Fields whose *type* is wrong are rejected, and :func:`describe_errors` turns the
pydantic error into a message naming the field path.

Responses are built as plain dicts/bytes by the translators (strict out), because they sit on the
per-event hot path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Block(BaseModel):
    """A block (or message) whose unknown fields (``cache_control``, ``citations`` ...) are
    accepted but not kept: nothing reads them, and keeping them (``extra="allow"``) was ~20%
    of validating a 1-4 MB turn (docs/design.md, "Long conversations"). The models whose
    extras are read (:class:`OtherBlock`, :class:`OtherSource`, :class:`Tool`, the request)
    stay :class:`_Lenient`."""

    model_config = ConfigDict(extra="ignore")


class Base64Source(_Block):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(_Block):
    type: Literal["url"]
    url: str


class OtherSource(_Lenient):
    type: str


def _source_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return t if t in ("base64", "url") else "other"


ImageSource = Annotated[
    Annotated[Base64Source, Tag("base64")]
    | Annotated[UrlSource, Tag("url")]
    | Annotated[OtherSource, Tag("other")],
    Discriminator(_source_tag),
]


class TextBlock(_Block):
    type: Literal["text"]
    text: str


class ImageBlock(_Block):
    type: Literal["image"]
    source: ImageSource


class DocumentBlock(_Block):
    type: Literal["document"]
    source: dict[str, Any]
    title: str | None = None


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: str = ""
    signature: str | None = None


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: str = ""


class OtherBlock(_Lenient):
    """Server-tool echoes and future block types: accepted, not forwarded."""

    type: str


def _tool_result_block_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return t if t in ("text", "image", "document") else "other"


ToolResultContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_tool_result_block_tag),
]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ToolResultContentBlock] | None = None
    is_error: bool | None = None


_BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
)


def _block_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return t if t in _BLOCK_TYPES else "other"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_tag),
]


class Message(_Block):
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(_Lenient):
    """A custom tool (``input_schema``) or a typed server/Anthropic-schema tool (``type``)."""

    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None

    @property
    def is_custom(self) -> bool:
        return self.type in (None, "custom") and self.input_schema is not None


class ToolChoice(_Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Lenient):
    type: str  # enabled | adaptive | disabled | future kinds
    budget_tokens: int | None = None


class OutputConfig(_Lenient):
    effort: str | None = None
    format: dict[str, Any] | None = None


class _RequestBase(_Lenient):
    model: str = Field(min_length=1)
    messages: list[Message]
    system: str | list[TextBlock | OtherBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(_RequestBase):
    max_tokens: int = Field(ge=0)
    stream: bool = False
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: dict[str, Any] | None = None


class CountTokensRequest(_RequestBase):
    pass


def describe_errors(err: ValidationError) -> str:
    """``messages.1.content: Input should be a valid string`` — the first few problems."""
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _TAG_NAMES))
        msg = e["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    extra = len(err.errors()) - 5
    if extra > 0:
        parts.append(f"and {extra} more")
    return "; ".join(parts)


# Discriminator tags and union-member names pydantic puts into error locations; they are noise.
_TAG_NAMES = {
    *_BLOCK_TYPES,
    "other",
    "base64",
    "url",
    "str",
    "list[tagged-union[TextBlock,ImageBlock,DocumentBlock,OtherBlock]]",
}
