"""Shape validation of ChatDetails request bodies (reference §4-§6 and Appendix A).

Contract: ``validate_chat_details(body)`` raises ``OCIError`` 400 with a message that starts
with the JSON path of the offending field (``chatRequest.messages[2].content[0].type: ...``)
for GENERIC, COHERE and COHEREV2 chat requests. ``check_model_rules(model, chat_request)``
applies the per-model rules the catalog's flags switch on: the api format, vision/document
parts, ``reasoningEffort`` only for models with the effort knob, gpt-5's
``maxCompletionTokens`` and fixed sampling, Gemini's history constraints (500 for tool calls
without text, 400 for parallel call turns), Cohere v1's TOOL→CHATBOT ordering and COHEREV2's
``toolsChoice``. Where the evidence quotes the service's own error text, that text is the
message verbatim (no path prefix); gpt-5 errors carry OpenAI's error JSON as their message.

The schema is strict on purpose: unknown properties are rejected at every level, because OCI
rejects some unknown properties and a gateway should never rely on them being ignored.
Tool ``parameters`` must be a JSON Schema object without ``$ref``/``$defs``/``definitions``/
``$schema`` in which every ``type: array`` node has ``items``. GENERIC media parts
(IMAGE/DOCUMENT/VIDEO/AUDIO) must carry base64 data URLs; COHEREV2 IMAGE_URL may be a web URL.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .catalog import ModelInfo
from .errors import OCIError, bad_request

FORBIDDEN_SCHEMA_KEYS = ("$ref", "$defs", "definitions", "$schema")
COHERE_PARAMETER_TYPES = ("str", "int", "float", "bool", "list", "dict")


class Spec:
    """A node of the request schema; ``check`` raises OCIError(400) on the first problem."""

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


def _fail(path: str, problem: str) -> None:
    raise bad_request(f"{path or '<body>'}: {problem}")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


class Prim(Spec):
    """A JSON primitive or a free-form object."""

    _CHECKS: Mapping[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def check(self, value: Any, path: str) -> None:
        if not self._CHECKS[self.kind](value):
            _fail(path, f"expected {self.kind}, got {_type_name(value)}")


STR, INT, NUM, BOOL, OBJECT = (Prim(k) for k in ("string", "integer", "number", "boolean",
                                                  "object"))


class Enum(Spec):
    def __init__(self, *values: str) -> None:
        self.values = values

    def check(self, value: Any, path: str) -> None:
        STR.check(value, path)
        if value not in self.values:
            _fail(path, f"invalid value {value!r}, must be one of {', '.join(self.values)}")


class Arr(Spec):
    def __init__(self, item: Spec) -> None:
        self.item = item

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            _fail(path, f"expected array, got {_type_name(value)}")
        for i, element in enumerate(value):
            self.item.check(element, f"{path}[{i}]")


class MapOf(Spec):
    """An object whose keys are free and whose values all follow one spec."""

    def __init__(self, value_spec: Spec) -> None:
        self.value_spec = value_spec

    def check(self, value: Any, path: str) -> None:
        OBJECT.check(value, path)
        for key, element in value.items():
            self.value_spec.check(element, f"{path}.{key}")


class Obj(Spec):
    """A closed object: known fields only, some required."""

    def __init__(self, fields: Mapping[str, Spec], required: tuple[str, ...] = ()) -> None:
        self.fields = dict(fields)
        self.required = required

    def check(self, value: Any, path: str) -> None:
        OBJECT.check(value, path)
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in self.fields:
                _fail(f"{prefix}{key}", "unknown property")
        for key in self.required:
            if value.get(key) is None:
                _fail(f"{prefix}{key}", "required field missing")
        for key, element in value.items():
            if element is not None:  # null is treated like an omitted optional field
                self.fields[key].check(element, f"{prefix}{key}")


class Union(Spec):
    """Objects discriminated by one string field (role, type, apiFormat, ...)."""

    def __init__(self, discriminator: str, variants: Mapping[str, Spec]) -> None:
        self.discriminator = discriminator
        self.variants = dict(variants)

    def check(self, value: Any, path: str) -> None:
        OBJECT.check(value, path)
        prefix = f"{path}." if path else ""
        tag = value.get(self.discriminator)
        if tag is None:
            _fail(f"{prefix}{self.discriminator}", "required field missing")
        Enum(*self.variants).check(tag, f"{prefix}{self.discriminator}")
        self.variants[tag].check(value, path)


class Custom(Spec):
    def __init__(self, fn: Callable[[Any, str], None]) -> None:
        self.fn = fn

    def check(self, value: Any, path: str) -> None:
        self.fn(value, path)


def _variant(tag_field: str, tag: str, fields: Mapping[str, Spec],
             required: tuple[str, ...] = ()) -> Obj:
    return Obj({tag_field: Enum(tag), **fields}, required)


# --- JSON Schema of tool parameters -------------------------------------------------------

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_SINGLE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
                     "propertyNames", "unevaluatedProperties", "unevaluatedItems",
                     "additionalItems")


def _is_array_type(node: Mapping[str, Any]) -> bool:
    declared = node.get("type")
    return declared == "array" or (isinstance(declared, list) and "array" in declared)


def check_json_schema(node: Any, path: str) -> None:
    """Walk a JSON Schema structurally (property names are not keywords)."""
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        _fail(path, f"JSON schema must be an object, got {_type_name(node)}")
    for key in FORBIDDEN_SCHEMA_KEYS:
        if key in node:
            _fail(f"{path}.{key}", "JSON schema keyword not supported")
    if _is_array_type(node) and "items" not in node:
        _fail(path, "array schema must define items")
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items():
            check_json_schema(sub, f"{path}.{key}.{name}")
    for key in _SUBSCHEMA_LISTS:
        for i, sub in enumerate(node.get(key) or []):
            check_json_schema(sub, f"{path}.{key}[{i}]")
    for key in _SUBSCHEMA_SINGLE:
        sub = node.get(key)
        if isinstance(sub, list):  # draft-4 tuple form of items
            for i, element in enumerate(sub):
                check_json_schema(element, f"{path}.{key}[{i}]")
        elif sub is not None:
            check_json_schema(sub, f"{path}.{key}")


def _check_tool_parameters(value: Any, path: str) -> None:
    OBJECT.check(value, path)
    if value.get("type", "object") != "object":
        _fail(f"{path}.type", "tool parameters must be a JSON schema of type object")
    check_json_schema(value, path)


def _check_json_string(value: Any, path: str) -> None:
    STR.check(value, path)
    try:
        json.loads(value)
    except ValueError:
        _fail(path, "must be a string containing JSON")


# --- GENERIC ------------------------------------------------------------------------------


_DATA_URL_RE = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,")


def _check_data_url(value: Any, path: str) -> None:
    # RW §9: SDK ImageUrl/DocumentUrl.url = "the base64 encoded image data or an image uri if
    # it's supported"; the Grok 4 doc says "send a base64-encoded version of the image" and
    # every peer client sends data URLs. No model is documented to support the uri form, so
    # the strict reading: only ``data:<media type>;base64,<data>``.
    STR.check(value, path)
    if not _DATA_URL_RE.match(value):
        _fail(path, "only base64 data URLs (data:<media type>;base64,<data>) are supported, "
                    f"got {value[:40]!r}")


def _url_object(detail: Spec) -> Obj:
    return Obj({"url": Custom(_check_data_url), "detail": detail}, ("url",))


TEXT_CONTENT = _variant("type", "TEXT", {"text": STR})
CONTENT = Union("type", {
    "TEXT": TEXT_CONTENT,
    "IMAGE": _variant("type", "IMAGE", {"imageUrl": _url_object(Enum("AUTO", "HIGH", "LOW"))},
                      ("imageUrl",)),
    "DOCUMENT": _variant("type", "DOCUMENT", {"documentUrl": _url_object(STR)},
                         ("documentUrl",)),
    "VIDEO": _variant("type", "VIDEO", {"videoUrl": _url_object(STR)}, ("videoUrl",)),
    "AUDIO": _variant("type", "AUDIO", {"audioUrl": _url_object(STR)}, ("audioUrl",)),
})
TOOL_CALL = Union("type", {"FUNCTION": _variant("type", "FUNCTION", {
    "id": STR, "name": STR, "arguments": Custom(_check_json_string)}, ("id", "name"))})
ANNOTATION = Obj({"type": STR, "urlCitation": Obj({
    "startIndex": INT, "endIndex": INT, "title": STR, "url": STR})})


def _plain_message(role: str) -> Obj:
    return _variant("role", role, {"content": Arr(CONTENT), "name": STR})


MESSAGE = Union("role", {
    "SYSTEM": _plain_message("SYSTEM"),
    "DEVELOPER": _plain_message("DEVELOPER"),
    "USER": _plain_message("USER"),
    "ASSISTANT": _variant("role", "ASSISTANT", {
        "content": Arr(CONTENT), "name": STR, "refusal": STR, "toolCalls": Arr(TOOL_CALL),
        "annotations": Arr(ANNOTATION), "reasoningContent": STR}),
    "TOOL": _variant("role", "TOOL", {"content": Arr(CONTENT), "toolCallId": STR},
                     ("toolCallId",)),
})
TOOL_DEFINITION = Union("type", {"FUNCTION": _variant("type", "FUNCTION", {
    "name": STR, "description": STR, "parameters": Custom(_check_tool_parameters)},
    ("name",))})
TOOL_CHOICE = Union("type", {
    "NONE": _variant("type", "NONE", {}),
    "AUTO": _variant("type", "AUTO", {}),
    "REQUIRED": _variant("type", "REQUIRED", {}),
    "FUNCTION": _variant("type", "FUNCTION", {"name": STR}, ("name",)),
})
RESPONSE_FORMAT = Union("type", {
    "TEXT": _variant("type", "TEXT", {}),
    "JSON_OBJECT": _variant("type", "JSON_OBJECT", {}),
    "JSON_SCHEMA": _variant("type", "JSON_SCHEMA", {"jsonSchema": Obj({
        "name": STR, "description": STR, "schema": OBJECT, "isStrict": BOOL}, ("name",))},
        ("jsonSchema",)),
})
STREAM_OPTIONS = Obj({"isIncludeUsage": BOOL})
PREDICTION = Union("type", {"CONTENT": _variant("type", "CONTENT", {
    "content": Arr(Union("type", {"TEXT": TEXT_CONTENT}))})})
WEB_SEARCH_OPTIONS = Obj({
    "searchContextSize": Enum("HIGH", "MEDIUM", "LOW"),
    "userLocation": Obj({"city": STR, "region": STR, "country": STR, "timezone": STR}),
})
GENERIC_REQUEST = _variant("apiFormat", "GENERIC", {
    "messages": Arr(MESSAGE),
    "reasoningEffort": Enum("NONE", "MINIMAL", "LOW", "MEDIUM", "HIGH"),
    "verbosity": Enum("LOW", "MEDIUM", "HIGH"),
    "metadata": OBJECT, "isStream": BOOL, "streamOptions": STREAM_OPTIONS,
    "numGenerations": INT, "seed": INT, "isEcho": BOOL, "topK": INT, "topP": NUM,
    "temperature": NUM, "frequencyPenalty": NUM, "presencePenalty": NUM, "stop": Arr(STR),
    "logProbs": INT, "maxTokens": INT, "maxCompletionTokens": INT, "logitBias": OBJECT,
    "prediction": PREDICTION, "responseFormat": RESPONSE_FORMAT, "toolChoice": TOOL_CHOICE,
    "isParallelToolCalls": BOOL, "tools": Arr(TOOL_DEFINITION),
    "webSearchOptions": WEB_SEARCH_OPTIONS, "serviceTier": Enum("AUTO", "DEFAULT", "PRIORITY"),
}, ("messages",))

# --- COHERE -------------------------------------------------------------------------------

COHERE_TOOL_CALL = Obj({"name": STR, "parameters": OBJECT}, ("name", "parameters"))
COHERE_TOOL_RESULT = Obj({"call": COHERE_TOOL_CALL, "outputs": Arr(OBJECT)},
                         ("call", "outputs"))
COHERE_MESSAGE = Union("role", {
    "USER": _variant("role", "USER", {"message": STR}, ("message",)),
    "SYSTEM": _variant("role", "SYSTEM", {"message": STR}, ("message",)),
    "CHATBOT": _variant("role", "CHATBOT", {"message": STR,
                                            "toolCalls": Arr(COHERE_TOOL_CALL)}),
    "TOOL": _variant("role", "TOOL", {"toolResults": Arr(COHERE_TOOL_RESULT)},
                     ("toolResults",)),
})
COHERE_PARAMETER = Obj({"description": STR, "type": Enum(*COHERE_PARAMETER_TYPES),
                        "isRequired": BOOL}, ("type",))
COHERE_TOOL = Obj({"name": STR, "description": STR, "parameterDefinitions":
                   MapOf(COHERE_PARAMETER)}, ("name", "description"))
COHERE_RESPONSE_FORMAT = Union("type", {
    "TEXT": _variant("type", "TEXT", {}),
    "JSON_OBJECT": _variant("type", "JSON_OBJECT", {"schema": OBJECT}),
})
COHERE_REQUEST = _variant("apiFormat", "COHERE", {
    "message": STR, "chatHistory": Arr(COHERE_MESSAGE), "documents": Arr(OBJECT),
    "responseFormat": COHERE_RESPONSE_FORMAT, "isSearchQueriesOnly": BOOL,
    "preambleOverride": STR, "isStream": BOOL, "streamOptions": STREAM_OPTIONS,
    "maxTokens": INT, "maxInputTokens": INT, "temperature": NUM, "topK": INT, "topP": NUM,
    "promptTruncation": Enum("OFF", "AUTO_PRESERVE_ORDER"), "frequencyPenalty": NUM,
    "presencePenalty": NUM, "seed": INT, "isEcho": BOOL, "tools": Arr(COHERE_TOOL),
    "toolResults": Arr(COHERE_TOOL_RESULT), "isForceSingleStep": BOOL,
    "stopSequences": Arr(STR), "isRawPrompting": BOOL,
    "citationQuality": Enum("ACCURATE", "FAST"),
    "safetyMode": Enum("CONTEXTUAL", "STRICT", "OFF"),
}, ("message",))

# --- COHEREV2 (CohereChatRequestV2, reference Appendix A) ----------------------------------


V2_CONTENT = Union("type", {
    "TEXT": _variant("type", "TEXT", {"text": STR}),
    # SDK CohereImageUrlV2.url: "Can be either a base64 data URI or a web URL" -- unlike
    # GENERIC, web URLs are documented here, so they are accepted.
    "IMAGE_URL": _variant("type", "IMAGE_URL", {"imageUrl": Obj({
        "url": STR, "detail": Enum("AUTO", "HIGH", "LOW")}, ("url",))}, ("imageUrl",)),
    "DOCUMENT": _variant("type", "DOCUMENT", {"document": OBJECT}),
    "THINKING": _variant("type", "THINKING", {"thinking": STR}),
})
V2_TOOL_CALL = Obj({
    "id": STR, "type": Enum("FUNCTION"),
    # CohereToolCallV2.function is a free-form object in the SDK; the live shape is
    # {"name", "arguments": JSON string} (nemo-relay OCI codec tests, us-chicago-1 2026-07-29).
    "function": Obj({"name": STR, "arguments": Custom(_check_json_string)}, ("name",)),
}, ("function",))
V2_MESSAGE = Union("role", {
    "SYSTEM": _variant("role", "SYSTEM", {"content": Arr(V2_CONTENT)}, ("content",)),
    "USER": _variant("role", "USER", {"content": Arr(V2_CONTENT)}, ("content",)),
    "ASSISTANT": _variant("role", "ASSISTANT", {
        "content": Arr(V2_CONTENT), "toolPlan": STR, "toolCalls": Arr(V2_TOOL_CALL),
        "citations": Arr(OBJECT)}, ("content",)),
    "TOOL": _variant("role", "TOOL", {"content": Arr(V2_CONTENT), "toolCallId": STR},
                     ("content", "toolCallId")),
})
V2_TOOL = Obj({"type": Enum("FUNCTION"), "function": Obj({
    "name": STR, "description": STR, "parameters": Custom(_check_tool_parameters)},
    ("name", "parameters"))}, ("type", "function"))
COHEREV2_REQUEST = _variant("apiFormat", "COHEREV2", {
    "messages": Arr(V2_MESSAGE), "documents": Arr(OBJECT),
    "citationOptions": Obj({"mode": Enum("FAST", "ACCURATE", "OFF")}),
    "toolsChoice": Enum("REQUIRED", "NONE"), "tools": Arr(V2_TOOL),
    "isStrictToolsEnabled": BOOL, "isLogProbsEnabled": BOOL,
    "thinking": Obj({"type": Enum("ENABLED", "DISABLED"), "tokenBudget": INT}, ("type",)),
    "responseFormat": COHERE_RESPONSE_FORMAT, "isSearchQueriesOnly": BOOL,
    "streamOptions": STREAM_OPTIONS, "isStream": BOOL, "maxTokens": INT, "temperature": NUM,
    "topK": INT, "topP": NUM, "frequencyPenalty": NUM, "presencePenalty": NUM, "seed": INT,
    "stopSequences": Arr(STR), "priority": INT, "isRawPrompting": BOOL,
    "safetyMode": Enum("CONTEXTUAL", "STRICT", "OFF"),
}, ("messages",))

# --- ChatDetails --------------------------------------------------------------------------

SERVING_MODE = Union("servingType", {
    "ON_DEMAND": _variant("servingType", "ON_DEMAND", {"modelId": STR}, ("modelId",)),
    "DEDICATED": _variant("servingType", "DEDICATED", {"endpointId": STR}, ("endpointId",)),
})
CHAT_DETAILS = Obj({
    "compartmentId": STR,
    "servingMode": SERVING_MODE,
    "chatRequest": Union("apiFormat", {
        "GENERIC": GENERIC_REQUEST, "COHERE": COHERE_REQUEST, "COHEREV2": COHEREV2_REQUEST}),
}, ("compartmentId", "servingMode", "chatRequest"))


def validate_chat_details(body: Any) -> None:
    """Raise OCIError(400) naming the first field that is not a valid ChatDetails."""
    CHAT_DETAILS.check(body, "")


# --- per-model rules ----------------------------------------------------------------------
#
# Where the evidence quotes OCI's (or the vendor's) own words, the message is that text
# verbatim; otherwise it starts with the JSON path like the schema errors.

FORMAT_MISMATCH = "Chat request type does not match serving model."  # litellm cohere_v2.py
GEMINI_PAIRING = ("Please ensure that the number of function response parts is equal to the "
                  "number of function call parts of the function call turn.")  # l-o PR #111
_MEDIA_TYPES = ("DOCUMENT", "VIDEO", "AUDIO")


def _check_media(model: ModelInfo, messages: list[dict], image_type: str,
                 media_types: tuple[str, ...] = _MEDIA_TYPES) -> None:
    for i, message in enumerate(messages):
        for j, part in enumerate(message.get("content") or []):
            kind = part.get("type")
            path = f"chatRequest.messages[{i}].content[{j}]"
            if kind == image_type and not model.vision:
                _fail(path, f"model {model.model_id} does not support image input")
            if kind in media_types and not model.documents:
                _fail(path, f"model {model.model_id} does not support {kind} input")


def _openai_error(param: str, code: str, message: str) -> OCIError:
    # RW §10/§14: OpenAI-family errors arrive double-encoded -- the OCI envelope's message is
    # itself the OpenAI error JSON (langchain-oracle param_compat.py, "observed live").
    inner = {"error": {"message": message, "param": param, "code": code}}
    return bad_request(json.dumps(inner, separators=(",", ":")))


def _check_sampling(model: ModelInfo, chat_request: dict) -> None:
    if chat_request.get("maxTokens") is not None and model.max_completion_tokens_param:
        raise _openai_error(
            "maxTokens", "unsupported_parameter",
            "Unsupported parameter: 'maxTokens' is not supported with this model. "
            "Use 'maxCompletionTokens' instead.")
    if not model.fixed_sampling:
        return
    for param in ("temperature", "topP"):
        value = chat_request.get(param)
        if value is not None and value != 1:
            raise _openai_error(
                param, "unsupported_value",
                f"Unsupported value: '{param}' does not support {value} with this model. "
                "Only the default (1) value is supported.")


def _check_effort(model: ModelInfo, chat_request: dict) -> None:
    if chat_request.get("reasoningEffort") is None or model.effort_knob:
        return
    if model.vendor == "xai":
        # RW §1: xAI's own words, passed through by OCI (litellm PR #40732, #16265).
        raise bad_request(f"Model {model.upstream_name} does not support parameter "
                          "reasoningEffort")
    _fail("chatRequest.reasoningEffort",
          f"Model {model.model_id} does not support parameter reasoningEffort")


def _has_text(message: dict) -> bool:
    return any(p.get("type") == "TEXT" and p.get("text") for p in message.get("content") or [])


def _check_gemini_history(model: ModelInfo, messages: list[dict]) -> None:
    for i, message in enumerate(messages):
        if message.get("role") != "ASSISTANT" or not message.get("toolCalls"):
            continue
        if model.tool_calls_need_text and not _has_text(message):
            # RW §3: langchain-oracle #78/#79 -- TransientServiceError (HTTP 500) from a
            # NullPointerException in OCI's conversion to Google's format. The body wording
            # is not known; the reason goes to a debugging header only.
            raise OCIError(500, "InternalServerError", "Internal Server Error", {
                "x-fake-oci-reason": f"chatRequest.messages[{i}]: ASSISTANT toolCalls "
                                     "without text content (Gemini backend NPE)"})
        answered = messages[i + 1: i + 1 + len(message["toolCalls"])]
        if (model.one_call_per_tool_turn and len(message["toolCalls"]) > 1
                and any(m.get("role") == "TOOL" for m in answered)):
            # RW §4: Gemini's 400 INVALID_ARGUMENT (langchain-oracle PR #111).
            raise bad_request(GEMINI_PAIRING)


def _check_cohere_tool_turns(chat_request: dict) -> None:
    # RW §5: a v1 TOOL history entry must be followed by a CHATBOT entry; langchain-oci
    # inserts a dummy CHATBOT "to avoid the error about ToolMessage needing to be followed by
    # an AI message" (providers/cohere.py). OCI's wording is not known.
    roles = [e.get("role") for e in chat_request.get("chatHistory") or []]
    if chat_request.get("message"):
        roles.append("USER")  # the current turn
    for i, (role, following) in enumerate(itertools.pairwise(roles)):
        if role == "TOOL" and following == "USER":
            _fail(f"chatRequest.chatHistory[{i}]",
                  "a TOOL message must be followed by a CHATBOT message, not USER")


def _check_cohere_v2(chat_request: dict) -> None:
    # SDK toolsChoice doc: "When REQUIRED is specified ... the tools parameter must be passed".
    if chat_request.get("toolsChoice") == "REQUIRED" and not chat_request.get("tools"):
        _fail("chatRequest.toolsChoice", "REQUIRED needs tools in the request")


def check_model_rules(model: ModelInfo, chat_request: dict) -> None:
    """Per-model rejections that real OCI returns for schema-valid requests.

    400s first (OCI's own checks), then the Gemini backend's 500 and 400 (history
    conversion happens after validation).
    """
    api_format = chat_request["apiFormat"]
    if api_format not in model.api_formats:
        raise bad_request(FORMAT_MISMATCH)
    messages = chat_request.get("messages") or []
    if api_format == "COHERE":
        _check_cohere_tool_turns(chat_request)
        return
    if api_format == "COHEREV2":
        _check_media(model, messages, "IMAGE_URL", ())  # V2 DOCUMENT = Cohere's own documents
        _check_cohere_v2(chat_request)
        return
    _check_media(model, messages, "IMAGE")
    _check_effort(model, chat_request)
    _check_sampling(model, chat_request)
    _check_gemini_history(model, messages)
