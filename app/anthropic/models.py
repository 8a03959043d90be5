"""Wire models of the Anthropic Messages API, lenient in, decoded in one pass from the body.

Contract: :class:`MessagesRequest` / :class:`CountTokensRequest` and their blocks are msgspec
structs, decoded from body bytes by :func:`app.anthropic.decode.decode_request`. They accept
everything Claude Code and the Python SDKs send (anthropic-messages.md §2, §8.5): unknown fields
anywhere (ignored), unknown block and source types (kept as :class:`UnknownBlock` /
:class:`OtherSource` and dropped or refused by the translators), ``role: "system"`` entries
inside ``messages``, thinking blocks with empty signatures, server tools. Fields whose *type*
is wrong are rejected.

Text payloads stay JSON: ``TextBlock.text`` and a tool result's string ``content`` are
:class:`msgspec.Raw` -- the bytes of the JSON string as the client sent them, escapes and all,
never decoded to ``str`` -- when they are ASCII without ``\\u`` escapes (source files, command
output); other texts are decoded once, their UTF-8 checked, and kept as ``str``. A 1 MB Claude
Code turn is mostly file reads; the translators put these bytes into the OCI body unchanged and
:func:`app.translate.wire.encode` copies them out, so the text is neither decoded nor re-escaped
(docs/design.md, "Long conversations: text passed through"). Code that reads a text calls
:func:`app.anthropic.text.text` and code that makes one :func:`~app.anthropic.text.raw_text`.

Responses are built as plain dicts/bytes by the translators (strict out), because they sit on the
per-event hot path.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union

import msgspec
from msgspec import Meta, Raw, Struct, field

# the helpers for the text fields' values, re-exported with the models they go with
from app.anthropic.text import ASCII_BODY as ASCII_BODY
from app.anthropic.text import JsonText, check_text
from app.anthropic.text import has_text as has_text
from app.anthropic.text import join_texts as join_texts
from app.anthropic.text import raw_text as raw_text
from app.anthropic.text import text as text

_QUOTE, _BRACKET, _N = ord('"'), ord("["), ord("n")

if TYPE_CHECKING:
    RawText = JsonText
else:
    #: a text field: msgspec decodes it as its JSON (a Raw), validation makes it a JsonText
    #: (:func:`~app.anthropic.text.check_text`); documented in the OpenAPI schema as a string
    RawText = Annotated[Raw, Meta(extra_json_schema={"type": "string"})]


class _Block(Struct, tag_field="type", dict=True):
    """A content block; its class is picked by ``type``. Unknown fields (``cache_control``,
    ``citations`` ...) are accepted and not kept: nothing reads them. ``dict=True`` lets
    :class:`ToolResultBlock` cache its decoded content."""

    type: ClassVar[str]


class Base64Source(Struct, tag_field="type", tag="base64"):
    type: ClassVar[str] = "base64"
    media_type: str
    data: str


class UrlSource(Struct, tag_field="type", tag="url"):
    type: ClassVar[str] = "url"
    url: str


class FileSource(Struct, tag_field="type", tag="file"):
    type: ClassVar[str] = "file"
    file_id: str = ""


class OtherSource(Struct, tag_field="type", tag="__other__"):
    """An image source of a type this gateway does not know (refused by the translator)."""

    original_type: str = ""

    @property
    def type(self) -> str:
        return self.original_type


ImageSource = Base64Source | UrlSource | FileSource | OtherSource


class TextBlock(_Block, tag="text"):
    type: ClassVar[str] = "text"
    text: RawText  # a JsonText once validated

    def __post_init__(self) -> None:
        self.text = check_text(self.text, "text")


class ImageBlock(_Block, tag="image"):
    type: ClassVar[str] = "image"
    source: ImageSource


class DocumentBlock(_Block, tag="document"):
    type: ClassVar[str] = "document"
    source: dict[str, Any]
    title: str | None = None


class ToolUseBlock(_Block, tag="tool_use"):
    type: ClassVar[str] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)


class ThinkingBlock(_Block, tag="thinking"):
    type: ClassVar[str] = "thinking"
    thinking: str = ""
    signature: str | None = None


class RedactedThinkingBlock(_Block, tag="redacted_thinking"):
    type: ClassVar[str] = "redacted_thinking"
    data: str = ""


class OtherBlock(_Block):
    """Server-tool echoes, tool references, search results and future block types: accepted,
    not forwarded as such. :attr:`extra` holds the block's fields (what the server-tool and
    tool-search loops read)."""

    @property
    def extra(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__struct_fields__}


def _other(tag: str, *fields: str) -> type[OtherBlock]:
    """An :class:`OtherBlock` for a documented block type, with the fields the gateway reads
    (each ``Any``, default ``None``): decoded in the same pass as the rest of the body."""
    cls = msgspec.defstruct(
        "".join(p.title() for p in tag.split("_")) + "Block",
        [(name, Any, None) for name in fields],
        bases=(OtherBlock,),
        tag=tag,
        tag_field="type",
        dict=True,
        module=__name__,
    )
    cls.type = tag  # type: ignore[attr-defined]
    return cls  # type: ignore[return-value]


# Documented block types the translators read or drop (anthropic-messages.md §3, §8):
# server tools' calls and results, client tool search, search results, MCP, files.
_RESULT = ("tool_use_id", "content", "is_error")
OTHER_BLOCKS = [
    _other("server_tool_use", "id", "name", "input"),
    _other("web_search_tool_result", *_RESULT),
    _other("web_fetch_tool_result", *_RESULT),
    _other("code_execution_tool_result", *_RESULT),
    _other("bash_code_execution_tool_result", *_RESULT),
    _other("text_editor_code_execution_tool_result", *_RESULT),
    _other("tool_search_tool_result", *_RESULT),
    _other("mcp_tool_use", "id", "name", "server_name", "input"),
    _other("mcp_tool_result", *_RESULT),
    _other("tool_reference", "tool_name"),
    _other("search_result", "source", "title", "content"),
    _other("container_upload", "file_id"),
]


class UnknownBlock(OtherBlock, tag="__unknown__"):
    """A block of a type this gateway does not know: its fields as sent."""

    original_type: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.original_type

    @property
    def extra(self) -> dict[str, Any]:
        return self.fields


ToolResultContentBlock = Union[
    TextBlock, ImageBlock, DocumentBlock, UnknownBlock, *OTHER_BLOCKS  # type: ignore[valid-type]
]
_RESULT_CONTENT = msgspec.json.Decoder(list[ToolResultContentBlock])


_RawContent = Annotated[Raw, Meta(extra_json_schema={"type": ["string", "array", "null"]})]


class ToolResultBlock(_Block, tag="tool_result"):
    """``content`` is a :data:`RawText` (a string result), a list of blocks, or ``None``."""

    type: ClassVar[str] = "tool_result"
    tool_use_id: str
    #: the JSON as sent; ``None`` when absent (a Raw default would not go into the schema)
    raw_content: _RawContent = field(name="content", default=None)  # type: ignore[assignment]
    is_error: bool | None = None

    def __post_init__(self) -> None:
        # decoded now: a wrong type is this request's 400. Stored straight into the instance
        # dict, where ``content`` finds it: going through the cached_property took its lock
        # (CPython 3.11), ~0.8 us per block, 0.13 ms of a 1 MB turn's 167 results.
        self.__dict__["content"] = self._decoded()

    @cached_property
    def content(self) -> JsonText | list[Any] | None:
        return self._decoded()

    def _decoded(self) -> JsonText | list[Any] | None:
        raw = self.raw_content
        if raw is None:
            return None
        first = memoryview(raw)[0] if len(raw) else 0
        if first == _QUOTE:
            return check_text(raw, "content")
        if first == _N:
            return None
        if first == _BRACKET:
            # a second pass over this result's bytes only: a tool result is a string in
            # Claude Code's turns, a list (text, images, tool_reference) now and then
            try:
                return _RESULT_CONTENT.decode(raw)
            except msgspec.ValidationError as err:
                what, _, _ = str(err).rpartition(" - at `")
                raise ValueError(f"{what or err} (at content{error_path(str(err))})") from None
        raise ValueError("Expected `str | array | null` for `content`")

    @classmethod
    def of(cls, tool_use_id: str, content: list[Any]) -> ToolResultBlock:
        block = cls(tool_use_id=tool_use_id)
        block.__dict__["content"] = content
        return block


ContentBlock = Union[
    TextBlock,
    ImageBlock,
    DocumentBlock,
    ToolUseBlock,
    ToolResultBlock,
    ThinkingBlock,
    RedactedThinkingBlock,
    UnknownBlock,
    *OTHER_BLOCKS,  # type: ignore[valid-type]
]
SystemBlock = Union[TextBlock, UnknownBlock, *OTHER_BLOCKS]  # type: ignore[valid-type]


class Message(Struct, dict=True):
    """``dict=True``: a message kept by the conversation cache carries the memo of its
    translations (app/anthropic/conversation_cache.py, :data:`MEMO`)."""

    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


_BLOCKS = msgspec.json.Decoder(list[ContentBlock])


def blocks(data: list[dict[str, Any]]) -> list[Any]:
    """Content blocks the gateway holds as dicts (a model's answer, its tool results) as
    block models, through their JSON: what a client would send back."""
    return _BLOCKS.decode(msgspec.json.encode(data))


class Tool(Struct):
    """A custom tool (``input_schema``) or a typed server/Anthropic-schema tool (``type``)."""

    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    # read by tool search and the web search loop (``extra``)
    defer_loading: Any = None
    max_uses: Any = None
    allowed_domains: Any = None
    blocked_domains: Any = None
    user_location: Any = None

    @property
    def is_custom(self) -> bool:
        return self.type in (None, "custom") and self.input_schema is not None

    @property
    def extra(self) -> dict[str, Any]:
        keys = ("defer_loading", "max_uses", "allowed_domains", "blocked_domains", "user_location")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class ToolChoice(Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(Struct):
    type: str  # enabled | adaptive | disabled | future kinds
    budget_tokens: int | None = None


class OutputConfig(Struct):
    effort: str | None = None
    format: dict[str, Any] | None = None


class RequestBase(Struct, kw_only=True):
    model: Annotated[str, Meta(min_length=1)]
    messages: list[Message]
    system: str | list[SystemBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` (the messages and blocks are shared, not copied)."""
        return msgspec.structs.replace(self, **changes)


_R = TypeVar("_R", bound=RequestBase)


class MessagesRequest(RequestBase, kw_only=True):
    max_tokens: Annotated[int, Meta(ge=0)]
    stream: bool = False
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    metadata: dict[str, Any] | None = None


class CountTokensRequest(RequestBase, kw_only=True):
    pass


def error_path(message: str) -> str:
    """`` - at `$.messages[1].content`` -> ``.messages.1.content`` (or "")."""
    _, sep, where = message.rpartition(" - at `")
    if not sep:
        return ""
    where = where.rstrip("`").removeprefix("$")
    return where.replace("[", ".").replace("]", "")
