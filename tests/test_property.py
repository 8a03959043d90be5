"""Property tests of the pure translators (hypothesis, bounded and derandomized for CI).

(a) Any *valid* Anthropic request (arbitrary system prompts, every block type, tool_use /
    tool_result pairs, thinking, random JSON-schema tools with ``$ref``/``$defs``/``anyOf``/
    nullable/arrays without ``items``, tool_choice, effort, stop sequences, sampling options) is
    translated by :func:`app.translate.to_oci.to_oci` for GENERIC and COHERE model specs of any
    capability set without raising anything but :class:`app.errors.InvalidRequest`; the body is
    JSON-serializable, its tool schemas carry no ``$ref``/``$defs``/``$schema`` and every array
    schema has ``items``.
(b) Any OCI chunk sequence (GENERIC fragments with or without id/name/arguments, reasoning, text,
    finish and usage events, junk fields; COHERE text/tool/terminal events) fed through
    :class:`app.translate.stream.StreamTranslator` gives a well-formed Anthropic stream
    (:func:`devtools.sse_check.check_stream`) that carries exactly the generated content (tool
    arguments are a valid JSON text split at random points), with stop sequences enforced;
    :func:`app.translate.fold.fold_message` (the JSON-answer path) reads those bytes into the
    same message; stop sequences that never match change nothing.
(c) :func:`app.translate.from_oci.message_from_oci` on any GENERIC/COHERE result never raises
    and returns a message with a non-null ``stop_reason``, also when values anywhere in it
    (containers included) have the wrong type.
"""

from __future__ import annotations

import base64
import json
import os
import string
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from app.anthropic.models import CountTokensRequest, MessagesRequest
from app.catalog import ModelSpec, Resolved
from app.errors import GatewayError, InvalidRequest, error_event
from app.translate.fold import fold_message
from app.translate.from_oci import message_from_oci
from app.translate.stream import StreamTranslator
from app.translate.to_oci import to_oci
from app.translate.tokens import raw_estimate
from app.translate.wire import encode
from devtools.sse_check import check_stream
from tests.harness import as_request

COMPARTMENT = "ocid1.compartment.oc1..property"
STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"}

# Bounded and reproducible: the same examples on every CI run, no example database on disk.
# Bug hunting: PROPERTY_EXAMPLES=5000 PROPERTY_RANDOM=1 pytest tests/test_property.py
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "200"))
RANDOM = os.environ.get("PROPERTY_RANDOM") == "1"
PROPS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])

# ---- building blocks ---------------------------------------------------------------------

# JSON text never carries lone surrogates (orjson rejects them before the models see them)
_CHARS = st.characters(blacklist_categories=("Cs",))
TEXT = st.one_of(st.text(alphabet="ab \n{}\"", max_size=12), st.text(_CHARS, max_size=20))
NAME = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON_VALUE, max_size=4)
CACHE = st.sampled_from([None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])

PNG_1x1 = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82").decode()



def _with_cache(block: dict[str, Any], cache: dict[str, Any] | None) -> dict[str, Any]:
    return {**block, "cache_control": cache} if cache else block


@st.composite
def text_block(draw: st.DrawFn) -> dict[str, Any]:
    return _with_cache({"type": "text", "text": draw(TEXT)}, draw(CACHE))


@st.composite
def image_block(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from(["png", "junk", "url", "file"]))
    if source == "png":
        src = {"type": "base64", "media_type": "image/png", "data": PNG_1x1}
    elif source == "junk":
        src = {"type": "base64", "media_type": draw(st.sampled_from(
            ["image/jpeg", "image/gif", "image/webp"])), "data": draw(
            st.text(alphabet=string.ascii_letters + "+/=", max_size=40))}
    elif source == "url":
        src = {"type": "url", "url": "https://example.invalid/" + draw(NAME) + ".png"}
    else:
        src = {"type": "file", "file_id": "file_" + draw(NAME)}  # not supported: a 400
    return _with_cache({"type": "image", "source": src}, draw(CACHE))


@st.composite
def document_block(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["text", "content", "content_list", "base64", "url", "odd"]))
    if kind == "text":
        src: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": draw(TEXT)}
    elif kind == "content":
        src = {"type": "content", "content": draw(TEXT)}
    elif kind == "content_list":
        src = {"type": "content", "content": draw(st.lists(text_block(), max_size=2))}
    elif kind == "base64":
        src = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}
    elif kind == "url":
        src = {"type": "url", "url": "https://example.invalid/doc.pdf"}
    else:
        src = {"type": "file", "file_id": "file_x"}
    block: dict[str, Any] = {"type": "document", "source": src}
    if draw(st.booleans()):
        block["title"] = draw(st.one_of(st.none(), TEXT))
    return _with_cache(block, draw(CACHE))


@st.composite
def tool_result_block(draw: st.DrawFn, tool_use_id: str) -> dict[str, Any]:
    content = draw(st.one_of(
        st.none(), TEXT,
        st.lists(st.one_of(text_block(), image_block(), document_block(),
                           st.just({"type": "search_result", "source": "s", "title": "t",
                                    "content": [{"type": "text", "text": "found"}]})),
                 max_size=3)))
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
    if content is not None or draw(st.booleans()):
        block["content"] = content
    is_error = draw(st.sampled_from([None, True, False, "absent"]))
    if is_error != "absent":
        block["is_error"] = is_error
    return _with_cache(block, draw(CACHE))


def tool_use_block(tool_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


OTHER_ASSISTANT = st.sampled_from([
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
     "input": {"query": "x"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
    {"type": "some_future_block", "payload": {"a": 1}},
])


@st.composite
def thinking_blocks(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        block: dict[str, Any] = {"type": "thinking", "thinking": draw(TEXT)}
        sig = draw(st.sampled_from(["absent", None, "", "EqQBCkgIARAB"]))
        if sig != "absent":
            block["signature"] = sig
        return block
    return {"type": "redacted_thinking", "data": draw(TEXT)}


@st.composite
def conversation(draw: st.DrawFn, tool_names: list[str]) -> list[dict[str, Any]]:
    """Messages of any role; tool_use turns are usually answered by a tool_result turn."""
    messages: list[dict[str, Any]] = []
    pending: list[str] = []  # tool_use ids the next user turn may answer
    seq = 0
    for _ in range(draw(st.integers(1, 6))):
        role = draw(st.sampled_from(["user", "user", "assistant", "system"]))
        if role == "system":
            content: Any = draw(st.one_of(TEXT, st.lists(text_block(), max_size=2)))
            messages.append({"role": "system", "content": content})
            continue
        if draw(st.integers(0, 4)) == 0:
            messages.append({"role": role, "content": draw(TEXT)})
            pending = []
            continue
        blocks: list[dict[str, Any]] = []
        if role == "assistant":
            for _ in range(draw(st.integers(0, 4))):
                kind = draw(st.sampled_from(["text", "tool_use", "thinking", "other"]))
                if kind == "text":
                    blocks.append(draw(text_block()))
                elif kind == "tool_use":
                    seq += 1
                    tool_id = f"toolu_{seq:02d}" + draw(st.sampled_from(["", "x", "Ab9"]))
                    name = draw(st.sampled_from(tool_names)) if tool_names and draw(
                        st.booleans()) else draw(NAME)
                    blocks.append(tool_use_block(tool_id, name, draw(JSON_OBJECT)))
                    pending.append(tool_id)
                elif kind == "thinking":
                    blocks.append(draw(thinking_blocks()))
                else:
                    blocks.append(draw(OTHER_ASSISTANT))
            if not pending and draw(st.booleans()):
                # the next user turn answers nothing unless this turn calls tools
                pass
        else:
            answered = list(pending)
            if answered and draw(st.integers(0, 5)) == 0:
                answered = answered[:-1]  # a result missing: still a translatable request
            for tool_id in answered:
                blocks.append(draw(tool_result_block(tool_id)))
            if draw(st.integers(0, 9)) == 0:
                blocks.append(draw(tool_result_block("toolu_unknown")))  # COHERE: a 400
            for _ in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["text", "text", "image", "document", "other",
                                             "tool_use_in_user"]))
                if kind == "text":
                    blocks.append(draw(text_block()))
                elif kind == "image":
                    blocks.append(draw(image_block()))
                elif kind == "document":
                    blocks.append(draw(document_block()))
                elif kind == "other":
                    blocks.append({"type": "container_upload", "file_id": "f"})
                elif draw(st.integers(0, 4)) == 0:
                    blocks.append(tool_use_block("toolu_user", "x", {}))  # a 400
            pending = []
        messages.append({"role": role, "content": blocks})
    return messages


# ---- random JSON schemas (the tools Claude Code and MCP servers send) --------------------

DEF_NAMES = ["Node", "Item", "Leaf"]


SCHEMA_LEAF: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from([{"type": t} for t in ("string", "integer", "number", "boolean",
                                             "null", "object")]),
    st.just({"type": "array"}),  # no items: OCI/Gemini need them
    st.just({"type": ["string", "null"]}),
    st.just({"type": ["null"]}),
    st.just({"type": "string", "nullable": True}),
    st.just({"type": "string", "format": "uri"}),
    st.just({"type": "string", "format": "date-time", "default": "now"}),
    st.just({"type": "integer", "minimum": 0, "exclusiveMaximum": 10}),
    st.builds(lambda v: {"enum": v}, st.lists(SCALAR, min_size=1, max_size=3)),
    st.builds(lambda v: {"enum": [*v, None], "type": "string"},
              st.lists(TEXT, max_size=2)),
    st.builds(lambda v: {"const": v}, SCALAR),
    st.builds(lambda n: {"$ref": f"#/$defs/{n}"}, st.sampled_from([*DEF_NAMES, "Gone"])),
    st.builds(lambda n: {"$ref": f"#/definitions/{n}"}, st.sampled_from(DEF_NAMES)),
    st.just({"$ref": "#"}),
    st.just({"$ref": "#/properties/a"}),
    st.just({"$ref": "https://example.invalid/schema.json"}),
    st.just({"$ref": "#/$defs/Node", "description": "sibling wins"}),
    st.just({}),
    st.just({"type": "object", "additionalProperties": True}),
    st.just({"type": "array", "prefixItems": [{"type": "string"}]}),
)


def _object(props: dict[str, Any], required: list[str], extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        node["required"] = required
    if extra is not None:
        node["additionalProperties"] = extra
    return node


_PROP_NAME = st.sampled_from(["a", "b", "path", "$ref", "items", "type", "x y"])
SCHEMA_NODE: st.SearchStrategy[dict[str, Any]] = st.recursive(
    SCHEMA_LEAF,
    lambda inner: st.one_of(
        st.builds(_object, st.dictionaries(_PROP_NAME, inner, max_size=3),
                  st.lists(_PROP_NAME, max_size=3),
                  st.one_of(st.none(), st.booleans(), inner)),
        st.builds(lambda i: {"type": "array", "items": i}, inner),
        st.builds(lambda i: {"type": ["array", "null"], "items": i}, inner),
        st.builds(lambda i: {"type": "array", "items": i}, st.lists(inner, max_size=2)),
        st.builds(lambda bs: {"anyOf": bs}, st.lists(inner, max_size=3)),
        st.builds(lambda bs: {"anyOf": [*bs, {"type": "null"}]}, st.lists(inner, max_size=2)),
        st.builds(lambda bs: {"oneOf": bs}, st.lists(inner, max_size=3)),
        st.builds(lambda bs: {"allOf": bs}, st.lists(inner, max_size=3)),
        st.builds(lambda i: {"not": i, "type": "string"}, inner),
        st.builds(lambda i, d: {**i, "description": d}, inner, TEXT),
        st.builds(lambda i: {"type": "object", "patternProperties": {"^x": i}}, inner),
    ),
    max_leaves=10,
)


_SCHEMA_ROOT = st.one_of(SCHEMA_NODE, st.builds(
    _object, st.dictionaries(st.sampled_from(["a", "b", "c"]), SCHEMA_NODE, max_size=4),
    st.lists(st.sampled_from(["a", "b", "zz"]), max_size=3), st.none()))
_SCHEMA_DEFS = st.dictionaries(st.sampled_from(DEF_NAMES), SCHEMA_NODE, max_size=3)


@st.composite
def tool_schema(draw: st.DrawFn) -> dict[str, Any]:
    root = dict(draw(_SCHEMA_ROOT))
    defs = draw(_SCHEMA_DEFS)
    if defs:
        root[draw(st.sampled_from(["$defs", "definitions"]))] = defs
    if draw(st.booleans()):
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return root


@st.composite
def tool_defs(draw: st.DrawFn) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for name in draw(st.lists(NAME, max_size=4, unique=True)):
        tool: dict[str, Any] = {"name": name, "input_schema": draw(tool_schema())}
        if draw(st.booleans()):
            tool["description"] = draw(st.one_of(st.none(), TEXT))
        if draw(st.integers(0, 4)) == 0:
            tool["type"] = "custom"
        if draw(st.integers(0, 4)) == 0:
            tool["cache_control"] = {"type": "ephemeral"}
        tools.append(tool)
    if draw(st.integers(0, 3)) == 0:
        tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 3})
    if draw(st.integers(0, 5)) == 0:
        tools.append({"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"})
    return tools


@st.composite
def anthropic_request(draw: st.DrawFn, count_tokens: bool = False) -> dict[str, Any]:
    tools = draw(tool_defs())
    names = [t["name"] for t in tools]
    req: dict[str, Any] = {
        "model": draw(st.sampled_from(["m", "claude-sonnet-4-5", "x[1m]"])),
        "messages": draw(conversation(names)),
    }
    if not count_tokens:
        req["max_tokens"] = draw(st.integers(0, 10**6))
        if draw(st.booleans()):
            req["stream"] = draw(st.booleans())
    if draw(st.booleans()):
        req["system"] = draw(st.one_of(
            TEXT, st.lists(st.one_of(
                text_block(), st.just({"type": "text", "text":
                                       "x-anthropic-billing-header: cc_version=2.0"}),
                st.just({"type": "future_system_block"})), max_size=3)))
    if tools or draw(st.booleans()):
        req["tools"] = tools
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["auto", "any", "none", "tool"]))
        choice: dict[str, Any] = {"type": kind}
        if kind == "tool":
            choice["name"] = draw(st.sampled_from(names)) if names and draw(
                st.booleans()) else draw(NAME)
        if draw(st.booleans()):
            choice["disable_parallel_tool_use"] = draw(st.booleans())
        req["tool_choice"] = choice
    if draw(st.booleans()):
        req["thinking"] = draw(st.sampled_from([
            {"type": "enabled", "budget_tokens": 1024}, {"type": "enabled", "budget_tokens": 8000},
            {"type": "enabled", "budget_tokens": 32000}, {"type": "enabled"},
            {"type": "adaptive"}, {"type": "disabled"}, {"type": "future_kind"}]))
    if draw(st.booleans()):
        config: dict[str, Any] = {}
        if draw(st.booleans()):
            config["effort"] = draw(st.sampled_from(
                ["low", "medium", "high", "xhigh", "max", "minimal", "none", "HIGH", "odd"]))
        if draw(st.booleans()):
            config["format"] = draw(st.one_of(
                st.builds(lambda s: {"type": "json_schema", "schema": s}, tool_schema()),
                st.just({"type": "json_schema"}), st.just({"type": "text"})))
        req["output_config"] = config
    if not count_tokens:
        if draw(st.booleans()):
            req["stop_sequences"] = draw(st.lists(st.text(alphabet="ab\n", max_size=3),
                                                  max_size=3))
        if draw(st.booleans()):
            req["temperature"] = draw(st.floats(0, 2))
        if draw(st.booleans()):
            req["top_p"] = draw(st.floats(0, 1))
        if draw(st.booleans()):
            req["top_k"] = draw(st.integers(0, 500))
        if draw(st.booleans()):
            req["metadata"] = {"user_id": draw(TEXT)}
    if draw(st.integers(0, 4)) == 0:
        req["context_management"] = {"edits": []}  # unknown top-level field: accepted
    return req


CAPS = ("tools", "vision", "reasoning", "documents", "structured_output")


@st.composite
def resolved_spec(draw: st.DrawFn) -> Resolved:
    target = draw(st.sampled_from([
        ("model_id", "xai.grok-4"), ("model_id", "meta.llama-3.3-70b-instruct"),
        ("model_id", "google.gemini-2.5-flash"), ("model_id", "openai.gpt-5"),
        ("model_id", "openai.gpt-oss-120b"), ("model_id", "cohere.command-a-03-2025"),
        ("endpoint_id", "ocid1.generativeaiendpoint.oc1..dedicated"),
    ]))
    fields: dict[str, Any] = {
        target[0]: target[1],
        "capabilities": tuple(draw(st.lists(st.sampled_from(CAPS), unique=True))),
        "max_output_tokens": draw(st.integers(1, 70000)),
    }
    if target[0] == "endpoint_id" or draw(st.integers(0, 5)) == 0:
        fields["api_format"] = draw(st.sampled_from(["GENERIC", "COHERE"]))
    if draw(st.integers(0, 3)) == 0:
        fields["temperature"] = draw(st.floats(0, 2))
    if draw(st.integers(0, 3)) == 0:
        fields["max_tokens_param"] = draw(st.sampled_from(["max_tokens",
                                                           "max_completion_tokens"]))
    spec = ModelSpec(**fields)
    return Resolved("m", spec, "m")


# ---- checks on translated bodies -----------------------------------------------------------

_FORBIDDEN = {"$ref", "$defs", "$schema", "definitions"}
_VALUE_KEYS = {"enum", "const", "default", "examples"}  # literal data, not schema


def schema_problems(node: Any, path: str = "$") -> list[str]:
    """Schema keywords OCI would choke on, anywhere in a (sanitized) JSON schema."""
    problems: list[str] = []
    if not isinstance(node, dict):
        return problems
    for key in node:
        if key in _FORBIDDEN:
            problems.append(f"{path}: {key}")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    if isinstance(node.get("type"), list):
        problems.append(f"{path}: type list {node['type']}")
    for key, value in node.items():
        if key in _VALUE_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():  # property names are data ("$ref" is a fine name)
                problems.extend(schema_problems(sub, f"{path}.properties[{name!r}]"))
        elif isinstance(value, dict):
            problems.extend(schema_problems(value, f"{path}.{key}"))
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                problems.extend(schema_problems(sub, f"{path}.{key}[{i}]"))
    return problems


def check_translated(translated: dict[str, Any]) -> None:
    # serialised the way the gateway sends it (texts kept as the client's JSON bytes), valid
    # JSON for another parser, and for the stdlib (no NaN, no odd types)
    body = orjson.loads(encode(translated))
    json.dumps(body, allow_nan=False)
    chat = body["chatRequest"]
    if chat["apiFormat"] == "GENERIC":
        for tool in chat.get("tools", []):
            params = tool["parameters"]
            assert params.get("type") == "object", params
            assert isinstance(params.get("properties"), dict), params
            problems = schema_problems(params)
            assert not problems, (tool["name"], problems, params)
        fmt = chat.get("responseFormat")
        if fmt:
            problems = schema_problems(fmt["jsonSchema"]["schema"])
            assert not problems, problems
        for msg in chat["messages"]:
            assert msg["role"] in ("SYSTEM", "USER", "ASSISTANT", "TOOL"), msg
            assert msg.get("content") or msg.get("toolCalls"), msg
    else:
        assert isinstance(chat["message"], str)
        for tool in chat.get("tools", []):
            for name, param in tool["parameterDefinitions"].items():
                assert param["type"] in ("str", "int", "float", "bool", "list", "dict"), (
                    name, param)
    assert raw_estimate(translated) >= 0


def _roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    # what the service does with the body bytes before validating them
    return orjson.loads(orjson.dumps(data))


@PROPS
@given(data=anthropic_request(), resolved=resolved_spec())
def test_any_valid_request_translates_or_is_a_400(data: dict[str, Any],
                                                   resolved: Resolved) -> None:
    req = as_request(MessagesRequest, _roundtrip(data))
    try:
        oci = to_oci(req, resolved, COMPARTMENT)
    except InvalidRequest as err:
        assert err.status == 400 and err.message
        return
    check_translated(oci.body)
    assert oci.max_tokens >= 1
    assert all(oci.stop_sequences)


@PROPS
@given(data=anthropic_request(count_tokens=True), resolved=resolved_spec())
def test_any_valid_count_tokens_request_translates_or_is_a_400(data: dict[str, Any],
                                                                resolved: Resolved) -> None:
    req = as_request(CountTokensRequest, _roundtrip(data))
    try:
        oci = to_oci(req, resolved, COMPARTMENT)
    except InvalidRequest:
        return
    check_translated(oci.body)


# ---- (b) OCI chunk sequences -> Anthropic stream ---------------------------------------------

JUNK = st.dictionaries(st.sampled_from(["pad", "index", "role", "modelVersion", "x-extra"]),
                       st.one_of(st.integers(0, 9), st.text(alphabet="a", max_size=5)),
                       max_size=2)


@st.composite
def json_args(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A tool input and its compact JSON text cut at random points (fragments never empty
    except where a family sends an explicit empty one)."""
    value = draw(JSON_OBJECT)
    text = orjson.dumps(value).decode()
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=4))))
    pieces, last = [], 0
    for cut in [*cuts, len(text)]:
        if cut > last:
            pieces.append(text[last:cut])
            last = cut
    return value, pieces


def _msg(**fields: Any) -> dict[str, Any]:
    return {"role": "ASSISTANT", **fields}


@st.composite
def generic_stream(draw: st.DrawFn) -> dict[str, Any]:
    """OCI GENERIC chunks plus what they mean: text, reasoning, tool calls, finish, usage."""
    chunks: list[dict[str, Any]] = []
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    # a family either gives every call an id (OpenAI, Llama, Grok) or none (Gemini)
    with_ids = draw(st.booleans())
    if draw(st.booleans()):
        chunks.append({"index": 0, "message": _msg(content=[{"type": "TEXT", "text": ""}])})
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["text", "text", "reasoning", "tool", "empty", "junk"]))
        junk = draw(JUNK)
        if kind == "text":
            piece = draw(TEXT)
            part: dict[str, Any] = {"type": "TEXT", "text": piece}
            if draw(st.integers(0, 5)) == 0:
                part = {"type": "TEXT"}  # Gemini: a TEXT part without text
                piece = ""
            parts = [part]
            if draw(st.integers(0, 6)) == 0:
                parts.append({"type": "IMAGE", "imageUrl": {"url": "data:x"}})  # ignored
            text.append(piece)
            chunks.append({**junk, "message": _msg(content=parts)})
        elif kind == "reasoning":
            piece = draw(TEXT)
            reasoning.append(piece)
            chunks.append({**junk, "message": _msg(reasoningContent=piece)})
        elif kind == "tool":
            value, pieces = draw(json_args())
            name = draw(NAME)
            call_id = f"call_{len(calls)}_{draw(NAME)}" if with_ids else None
            calls.append({"id": call_id, "name": name, "input": value})
            whole = draw(st.integers(0, 2)) == 0
            head: dict[str, Any] = {"type": "FUNCTION", "name": name}
            if call_id:
                head["id"] = call_id
            if whole:  # Grok / Gemini / one event per call
                chunks.append({**junk, "message": _msg(toolCalls=[
                    {**head, "arguments": "".join(pieces)}])})
                continue
            first, *rest = pieces
            if draw(st.booleans()):  # Llama: id+name first, arguments after
                chunks.append({"message": _msg(toolCalls=[head])})
                rest = [first, *rest]
            else:  # OpenAI: the first fragment carries the first piece
                chunks.append({"message": _msg(toolCalls=[{**head, "arguments": first}])})
            for piece in rest:
                frag: dict[str, Any] = {"type": "FUNCTION", "arguments": piece}
                if call_id and draw(st.integers(0, 3)) == 0:
                    frag["id"] = call_id  # the same id again: still the same call
                if draw(st.integers(0, 5)) == 0:
                    chunks.append({"message": _msg(toolCalls=[{"type": "FUNCTION",
                                                               "arguments": ""}])})
                chunks.append({**draw(JUNK), "message": _msg(toolCalls=[frag])})
        elif kind == "empty":
            chunks.append(draw(st.sampled_from([
                {"message": _msg()}, {"message": _msg(content=[])}, {"message": None},
                {"message": _msg(content=None, toolCalls=None, reasoningContent=None)},
                {"index": 0}, {},
            ])))
        else:
            chunks.append(junk)
    finish = draw(st.sampled_from([None, "stop", "length", "tool_calls", "content_filter",
                                   "STOP", "weird_reason", "function_call"]))
    trailing = ""
    if finish is not None:
        shape = draw(st.sampled_from(["bare", "empty_msg", "empty_text", "empty_tool",
                                      "trailing_text"]))
        event: dict[str, Any] = {"finishReason": finish}
        if shape == "empty_msg":
            event["message"] = _msg()
        elif shape == "empty_text":
            event["message"] = _msg(content=[{"type": "TEXT", "text": ""}])
        elif shape == "empty_tool" and calls:
            event["message"] = _msg(toolCalls=[{"type": "FUNCTION", "arguments": ""}])
        elif shape == "trailing_text":  # Gemini: the finish event carries real text
            trailing = draw(TEXT)
            event["message"] = _msg(content=[{"type": "TEXT", "text": trailing}])
        chunks.append(event)
    text.append(trailing)
    usage = None
    if draw(st.booleans()):
        usage = {"promptTokens": draw(st.integers(0, 10**6)),
                 "completionTokens": draw(st.one_of(st.none(), st.integers(0, 10**6))),
                 "totalTokens": 0}
        if draw(st.booleans()):
            usage["promptTokensDetails"] = {"cachedTokens": draw(st.integers(0, 100))}
        if draw(st.booleans()):
            usage["completionTokensDetails"] = {"reasoningTokens": draw(st.integers(0, 99))}
        chunks.append({"usage": usage})
    return {"chunks": chunks, "text": "".join(text), "reasoning": "".join(reasoning),
            "calls": calls, "finish": finish, "usage": usage, "cohere": False}


@st.composite
def cohere_stream(draw: st.DrawFn) -> dict[str, Any]:
    pieces = draw(st.lists(TEXT, max_size=5))
    full = "".join(pieces)
    calls = [{"name": draw(NAME), "input": draw(JSON_OBJECT)}
             for _ in range(draw(st.integers(0, 3)))]
    oci_calls = [{"name": c["name"], "parameters": c["input"]} for c in calls]
    stream_text = draw(st.booleans())  # else the text only arrives in the terminal event
    chunks: list[dict[str, Any]] = []
    if stream_text:
        chunks.extend({"apiFormat": "COHERE", "text": p, **draw(JUNK)} for p in pieces)
    if calls and draw(st.booleans()):
        chunks.append({"apiFormat": "COHERE", "toolCalls": oci_calls})
    finish = draw(st.sampled_from([None, "COMPLETE", "MAX_TOKENS", "ERROR_TOXIC", "TOOL_CALL",
                                   "USER_CANCEL", "complete", "NEW_REASON"]))
    usage = None
    if finish is not None:
        terminal: dict[str, Any] = {"apiFormat": "COHERE", "finishReason": finish,
                                    "chatHistory": []}
        if draw(st.booleans()) or not stream_text:
            terminal["text"] = full
        if calls:
            terminal["toolCalls"] = oci_calls
        if draw(st.booleans()):
            usage = {"promptTokens": draw(st.integers(0, 1000)),
                     "completionTokens": draw(st.integers(0, 1000))}
            terminal["usage"] = usage
        chunks.append(terminal)
    elif not stream_text:
        full = ""
    if finish is None and not any("toolCalls" in ch for ch in chunks):
        calls = []  # the calls were never sent
    return {"chunks": chunks, "text": full, "reasoning": "", "calls": calls, "finish": finish,
            "usage": usage, "cohere": True}


def _blocks_of(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in result["content"] if b["type"] == kind]


@PROPS
@given(stream=st.one_of(generic_stream(), cohere_stream()),
       stops=st.one_of(st.just(()), st.lists(st.text(alphabet="ab \n{", min_size=1, max_size=3),
                                             min_size=1, max_size=3).map(tuple)))
def test_any_oci_chunk_sequence_gives_a_well_formed_stream(stream: dict[str, Any],
                                                          stops: tuple[str, ...]) -> None:
    note(f"chunks={stream['chunks']!r} stops={stops!r}")
    tr = StreamTranslator(message_id="msg_prop", model="m", estimated_input=7,
                          cohere=stream["cohere"], stop_sequences=stops)
    body = tr.start()
    for chunk in stream["chunks"]:
        body += tr.feed(chunk)
        if tr.matched_stop is not None:
            break  # the service stops reading upstream here
    body += _finish(tr)
    # block lifecycle, one message_stop (or the error of a failed finish), valid tool JSON
    result = check_stream(body.decode(), allow_error=True)
    if result["error"] is not None:
        assert result["error"]["type"] == "api_error"
        return
    assert result["stop_reason"] in STOP_REASONS
    # the JSON-answer path folds these same bytes: it must read them as the checker does
    folded = fold_message(body)
    assert folded["content"] == [{k: v for k, v in b.items() if k != "partial_json"}
                                 for b in result["content"]]
    assert (folded["stop_reason"], folded["stop_sequence"], folded["usage"]) == (
        result["stop_reason"], result["stop_sequence"], result["usage"])

    out_text = result["text"]
    for block in _blocks_of(result, "text"):
        assert block["text"], "an empty text block was opened"
        for s in stops:
            assert s not in block["text"], f"stop sequence {s!r} leaked into {block['text']!r}"
    tools = _blocks_of(result, "tool_use")
    thinking = "".join(b["thinking"] for b in _blocks_of(result, "thinking"))
    for block in _blocks_of(result, "thinking"):
        assert block["signature"], "thinking block without a signature"

    assert stream["text"].startswith(out_text), (out_text, stream["text"])
    assert stream["reasoning"].startswith(thinking)
    want_calls = stream["calls"]
    assert len(tools) <= len(want_calls)
    for got, want in zip(tools, want_calls, strict=False):
        assert got["name"] == want["name"]
        assert got["input"] == want["input"]
        if want.get("id"):
            assert got["id"] == want["id"]
        else:
            assert got["id"].startswith("toolu_")

    if result["stop_reason"] == "stop_sequence":
        assert result["stop_sequence"] in stops
        assert stream["text"][len(out_text):].startswith(result["stop_sequence"])
    else:
        assert result["stop_sequence"] is None
        assert out_text == stream["text"]
        assert thinking == stream["reasoning"]
        assert len(tools) == len(want_calls)
        if tools:
            # a call cut by the output limit is reported as max_tokens, a filtered one as a
            # refusal (common.stop_reason)
            finish = str(stream["finish"])
            truncated = finish.lower() in ("length", "max_tokens")
            refused = finish.lower() == "content_filter" or finish == "ERROR_TOXIC"
            assert result["stop_reason"] == (
                "max_tokens" if truncated else "refusal" if refused else "tool_use")
        else:
            # without a tool call between them, text runs are contiguous: no stop was missed
            for s in stops:
                assert s not in stream["text"], f"stop sequence {s!r} was not enforced"
    usage = result["usage"]
    assert usage["output_tokens"] >= 0 and usage["input_tokens"] >= 0
    if stream["usage"] and stream["usage"].get("completionTokens") is not None and (
            result["stop_reason"] != "stop_sequence" or tr.usage is not None):
        assert usage["output_tokens"] == stream["usage"]["completionTokens"]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return [text for value in values for text in _strings(value)]


def _finish(tr: StreamTranslator) -> bytes:
    """``finish()``, or for an answer OCI finished as a failure (ERROR, USER_CANCEL) the
    ``event: error`` the service sends in its place, after the text held back for stop
    sequences (``end_text``, as app/service/finish.py does)."""
    held = tr.end_text()
    try:
        return held + tr.finish()
    except GatewayError as err:
        return held + error_event(err)


def _feed_all(stream: dict[str, Any], stops: tuple[str, ...]) -> dict[str, Any]:
    tr = StreamTranslator(message_id="msg_prop", model="m", estimated_input=7,
                          cohere=stream["cohere"], stop_sequences=stops)
    body = tr.start() + b"".join(tr.feed(chunk) for chunk in stream["chunks"]) + _finish(tr)
    result = check_stream(body.decode(), allow_error=True)
    for block in result["content"]:
        if block["type"] == "tool_use" and block["id"].startswith("toolu_"):
            block["id"] = "minted"  # random per run
    return result


@PROPS
@given(stream=st.one_of(generic_stream(), cohere_stream()), length=st.integers(2, 6))
def test_stop_sequences_that_never_match_change_nothing(stream: dict[str, Any],
                                                         length: int) -> None:
    """Holding text back (it might begin a stop sequence) only delays it within its own text
    run: the blocks, their order and content, the stop reason and usage are those of the same
    answer without stop sequences. Before the fix held text reappeared after a following
    thinking block (code-review.md B7)."""
    stop = "\x07" * length
    assume(stop not in "".join(_strings(stream["chunks"])))  # also across chunk boundaries
    plain, held = _feed_all(stream, ()), _feed_all(stream, (stop,))
    assert held["content"] == plain["content"]
    assert (held.get("stop_reason"), held.get("usage"), held["error"]) == (
        plain.get("stop_reason"), plain.get("usage"), plain["error"])


# Wrong types inside known fields (a proxy or a new model family mangling the wire): the
# translator must still end the stream cleanly instead of raising mid-stream.
HOSTILE_VALUE = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(
    st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def hostile_chunk(draw: st.DrawFn) -> dict[str, Any]:
    return draw(st.one_of(
        st.builds(lambda v: {"message": v}, HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"content": v}}, HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"content": [v]}}, HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"content": [{"type": "TEXT", "text": v}]}},
                  HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"reasoningContent": v}}, HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"toolCalls": v}}, HOSTILE_VALUE),
        st.builds(lambda v: {"message": {"toolCalls": [v]}}, HOSTILE_VALUE),
        st.builds(lambda v, w: {"message": {"toolCalls": [{"id": v, "name": w}]}},
                  HOSTILE_VALUE, HOSTILE_VALUE),
        st.builds(lambda v: {"finishReason": v}, HOSTILE_VALUE),
        st.builds(lambda v: {"usage": v}, HOSTILE_VALUE),
        st.builds(lambda v: {"usage": {"promptTokens": v, "completionTokens": v}},
                  HOSTILE_VALUE),
    ))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
@given(chunks=st.lists(hostile_chunk(), min_size=1, max_size=4))
def test_mistyped_generic_chunks_never_raise(chunks: list[dict[str, Any]]) -> None:
    tr = StreamTranslator(message_id="msg_h", model="m", estimated_input=1)
    body = tr.start()
    for chunk in chunks:
        body += tr.feed(chunk)
    body += tr.finish()
    check_stream(body.decode())


# ---- (c) non-streaming results -----------------------------------------------------------


@st.composite
def generic_result(draw: st.DrawFn) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "ASSISTANT"}
    if draw(st.booleans()):
        msg["content"] = draw(st.one_of(st.none(), st.lists(st.one_of(
            st.builds(lambda t: {"type": "TEXT", "text": t}, TEXT),
            st.just({"type": "TEXT"}), st.just({"type": "TEXT", "text": None}),
            st.just({"type": "IMAGE", "imageUrl": {"url": "x"}}), st.just("junk"),
            st.just(None)), max_size=3)))
    if draw(st.booleans()):
        msg["reasoningContent"] = draw(st.one_of(st.none(), TEXT))
    if draw(st.booleans()):
        msg["toolCalls"] = draw(st.one_of(st.none(), st.lists(st.one_of(
            st.builds(lambda i, n, a: {"id": i, "type": "FUNCTION", "name": n, "arguments": a},
                      st.one_of(st.none(), NAME), st.one_of(st.none(), NAME),
                      st.one_of(st.none(), st.just(""), TEXT, JSON_OBJECT,
                                JSON_OBJECT.map(lambda v: orjson.dumps(v).decode()),
                                JSON_VALUE.map(lambda v: orjson.dumps(v).decode()))),
            st.just({}), st.just("junk")), max_size=3)))
    choice: dict[str, Any] = {"index": 0}
    if draw(st.booleans()):
        choice["message"] = draw(st.one_of(st.just(msg), st.none()))
    else:
        choice["message"] = msg
    choice["finishReason"] = draw(st.sampled_from([None, "stop", "length", "tool_calls",
                                                   "content_filter", "ERROR", "xyz"]))
    resp: dict[str, Any] = {"apiFormat": "GENERIC", "timeCreated": "2025-01-01T00:00:00Z"}
    shape = draw(st.sampled_from(["one", "missing", "empty", "null_first", "two"]))
    if shape == "one":
        resp["choices"] = [choice]
    elif shape == "empty":
        resp["choices"] = []
    elif shape == "null_first":
        resp["choices"] = [None]
    elif shape == "two":
        resp["choices"] = [choice, {"message": msg, "finishReason": "stop"}]
    if draw(st.booleans()):
        resp["usage"] = draw(st.one_of(st.none(), st.fixed_dictionaries(
            {"promptTokens": st.one_of(st.none(), st.integers(0, 10**6)),
             "completionTokens": st.one_of(st.none(), st.integers(0, 10**6))},
            optional={"promptTokensDetails": st.one_of(
                st.none(), st.fixed_dictionaries({"cachedTokens": st.integers(0, 99)})),
                "completionTokensDetails": st.fixed_dictionaries(
                    {"reasoningTokens": st.integers(0, 99)})})))
    result: dict[str, Any] = {"modelId": "x", "modelVersion": "1"}
    if draw(st.integers(0, 9)):
        result["chatResponse"] = resp
    return result


@st.composite
def cohere_result(draw: st.DrawFn) -> dict[str, Any]:
    resp: dict[str, Any] = {"apiFormat": "COHERE"}
    if draw(st.booleans()):
        resp["text"] = draw(st.one_of(st.none(), TEXT))
    if draw(st.booleans()):
        resp["toolCalls"] = draw(st.one_of(st.none(), st.lists(st.one_of(
            st.builds(lambda n, p: {"name": n, "parameters": p}, NAME,
                      st.one_of(st.none(), JSON_OBJECT)),
            st.just({}), st.just(7)), max_size=3)))
    resp["finishReason"] = draw(st.sampled_from([None, "COMPLETE", "MAX_TOKENS", "ERROR_TOXIC",
                                                 "TOOL_CALL", "ERROR_LIMIT", "complete"]))
    if draw(st.booleans()):
        resp["usage"] = {"promptTokens": draw(st.integers(0, 1000)),
                         "completionTokens": draw(st.integers(0, 1000))}
    if draw(st.booleans()):
        resp["chatHistory"] = [{"role": "USER", "message": "x"}]
    return {"modelId": "cohere.x", "chatResponse": resp}


def _json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, the root excluded."""
    out: list[tuple[Any, ...]] = []
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_json_paths(value, (*prefix, key)))
    return out


# what a proxy or a new model family could put where a container or a string belongs
MISTYPED = st.one_of(HOSTILE_VALUE, st.sampled_from(
    ["hi", 5, 1.5, True, [], ["x"], [5], {}, {"a": 1}, [{"a": 1}], [[]], "[1]", '{"a"']))


@st.composite
def mistyped_result(draw: st.DrawFn) -> dict[str, Any]:
    """A GENERIC or COHERE result with one to three values anywhere in it (containers
    included: ``choices`` a dict, ``message`` a string, ``chatResponse`` a list, COHERE
    ``text`` a number, ...) replaced by a value of another type."""
    result = draw(st.one_of(generic_result(), cohere_result()))
    for _ in range(draw(st.integers(1, 3))):
        paths = _json_paths(result)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = result
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(MISTYPED)
    return result


# the shapes of code-review.md B1 (4 of these 6 raised before the answer path was unified)
MISTYPED_EXAMPLES = [
    {"chatResponse": {"choices": {"a": 1}}},
    {"chatResponse": {"choices": [{"message": "hi"}]}},
    {"chatResponse": ["x"]},
    {"chatResponse": {"apiFormat": "COHERE", "text": 5, "finishReason": "COMPLETE"}},
    {"chatResponse": {"choices": [{"message": {"content": "hi"}, "finishReason": "stop"}]}},
    {"chatResponse": {"choices": [{"message": {"toolCalls": {"id": "x"}}}]}},
    {"chatResponse": {"apiFormat": "COHERE", "toolCalls": "x", "finishReason": 7}},
    {"chatResponse": {"choices": [{"message": {"toolCalls": [{"name": 5, "arguments": [1]}],
                                               "reasoningContent": ["r"]}}],
                      "usage": ["x"]}},
]


@pytest.mark.parametrize("result", MISTYPED_EXAMPLES)
def test_mistyped_results_give_a_message(result: dict[str, Any]) -> None:
    message = message_from_oci(result, model="m", message_id="msg_c", estimated_input=3)
    assert message["stop_reason"] in STOP_REASONS and isinstance(message["content"], list)


@PROPS
@given(result=st.one_of(generic_result(), cohere_result(), mistyped_result()),
       stops=st.lists(st.text(alphabet="ab \n", min_size=1, max_size=2), max_size=2).map(tuple))
def test_any_oci_result_gives_a_message(result: dict[str, Any], stops: tuple[str, ...]) -> None:
    try:
        message = message_from_oci(result, model="m", message_id="msg_c", estimated_input=3,
                                   stop_sequences=stops)
    except GatewayError as err:  # OCI finished it as a failure (ERROR): the 500 of the answer
        assert err.error_type == "api_error"
        return
    assert message["stop_reason"] in STOP_REASONS
    assert message["type"] == "message" and message["role"] == "assistant"
    orjson.dumps(message)
    kinds = [b["type"] for b in message["content"]]
    assert kinds == sorted(kinds, key=["thinking", "text", "tool_use"].index), kinds
    for block in message["content"]:
        if block["type"] == "tool_use":
            assert isinstance(block["input"], dict) and block["id"]
        if block["type"] == "text":
            assert block["text"] and not any(s in block["text"] for s in stops)
    if any(k == "tool_use" for k in kinds):
        # a call cut by the output limit is reported as max_tokens (from_oci.stop_reason),
        # a filtered one as a refusal
        assert message["stop_reason"] in ("tool_use", "max_tokens", "refusal")
    usage = message["usage"]
    assert all(isinstance(usage[k], int) and usage[k] >= 0 for k in usage), usage
    if message["stop_reason"] == "stop_sequence":
        assert message["stop_sequence"] in stops


# ---- fixed examples: shapes found while fuzzing, kept as regression tests ------------------



@pytest.mark.parametrize("schema", [
    # anyOf branch whose type is a list: TypeError (unhashable list) -> HTTP 500 before 7f46c5c
    {"type": "object", "properties": {"a": {"anyOf": [{"type": ["string", "null"]},
                                                      {"type": "integer"}]}}},
    {"type": "object", "properties": {"a": {"oneOf": [{"type": ["string"]},
                                                      {"type": "string", "enum": ["x"]}]}}},
    {"type": "object", "properties": {"a": {"type": ["array", "null"]}}},
    {"type": "object", "properties": {"$ref": {"$ref": "#/$defs/Node"}},
     "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}},
    {"$ref": "#/definitions/R", "definitions": {"R": {"type": "object", "properties": {
        "x": {"allOf": [{"$ref": "#/definitions/R"}, {"type": "array"}]}}}}},
])
@pytest.mark.parametrize("model_id", ["xai.grok-4", "google.gemini-2.5-flash",
                                      "cohere.command-a-03-2025"])
def test_schema_regressions(schema: dict[str, Any], model_id: str) -> None:
    req = as_request(MessagesRequest, {
        "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "t", "input_schema": schema}]})
    resolved = Resolved("m", ModelSpec(model_id=model_id, capabilities=("tools",)), "m")
    check_translated(to_oci(req, resolved, COMPARTMENT).body)


@pytest.mark.parametrize("schema", [
    pytest.param({"type": "object", "properties": {"a": {
        "type": "array", "items": [{"type": "string"}],
        "additionalItems": {"$ref": "#/$defs/X"}}}, "$defs": {"X": {"type": "integer"}}},
        id="additionalItems-ref"),
    pytest.param({"type": "object", "properties": {"a": {"$recursiveRef": "#"}}},
                 id="recursiveRef"),
])
@pytest.mark.parametrize("model_id", ["xai.grok-4", "google.gemini-2.5-flash"])
def test_no_reference_survives_in_generic_tools(schema: dict[str, Any], model_id: str) -> None:
    req = as_request(MessagesRequest, {
        "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "t", "input_schema": schema}]})
    resolved = Resolved("m", ModelSpec(model_id=model_id, capabilities=("tools",)), "m")
    params = to_oci(req, resolved, COMPARTMENT).body["chatRequest"]["tools"][0]["parameters"]
    text = json.dumps(params)
    assert "$ref" not in text and "$recursiveRef" not in text, text
