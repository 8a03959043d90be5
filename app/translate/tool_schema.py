"""Make Anthropic tool JSON Schemas acceptable to OCI-hosted models. Pure functions.

Contract: :func:`sanitize_schema` returns a new schema (the input is not modified) that
- has no ``$schema``/``$id``/``$comment`` and no ``$ref``/``$defs``/``definitions`` (local
  references -- ``#/$defs/X``, ``#/definitions/X``, any ``#/...`` JSON pointer, ``#`` -- are
  inlined, chains followed; a recursive or unresolvable reference becomes ``{"type": "object"}``
  after one expansion),
- has nullable unions collapsed (``anyOf: [X, {type: null}]`` -> X, ``type: [T, "null"]`` -> T,
  ``null`` removed from enums); a union of same-type scalar branches becomes one schema with the
  merged ``enum`` (so no allowed value is lost); any other ``anyOf``/``oneOf`` is reduced to its
  first branch, the other branch types named in the description (several OCI models reject
  unions),
- has ``items`` on every array, ``const`` turned into a one-value ``enum``,
- lacks keywords OCI models reject (``propertyNames``, ``patternProperties``, conditionals, …;
  Gemini additionally rejects ``additionalProperties``, numeric exclusivity, ``default``,
  ``title`` and formats other than ``date-time``/``enum``/``float``/``double``/``int32``/
  ``int64``),
while keeping types, properties, required, enums, descriptions, defaults and formats.
:mod:`app.translate.cohere_params` flattens the result to COHERE v1 ``parameterDefinitions``.

A keyword the sanitiser interprets that has the wrong JSON type (``required`` that is not an
array of strings, ``properties`` that is not an object of schemas, ``items``/``anyOf``/``allOf``/
``additionalProperties`` that are not schemas, ``enum`` not an array, ``type`` not a string or
an array of strings, ``$ref``/``description`` not strings) raises :class:`SchemaError`, whose
:meth:`~SchemaError.describe` names the field path; the request translators turn it into a
400 naming the tool. Such a schema is invalid JSON Schema, which Anthropic's API rejects too;
guessing what it meant would send OCI a tool the client did not describe.

Hand-written because no maintained library targets OCI's accepted subset; the rules come from
oci-genai-wire.md §5/§6 and peers' reports (peers.md "What users ask for" #5).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

_ALWAYS_DROP = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
        "$vocabulary",
        "$defs",
        "definitions",
        "propertyNames",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentSchemas",
        "dependentRequired",
        "dependencies",
        "if",
        "then",
        "else",
        "not",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "prefixItems",
        "contains",
        "minContains",
        "maxContains",
        "additionalItems",
        "$recursiveRef",
        "$recursiveAnchor",
    }
)
_GEMINI_DROP = frozenset(
    {"additionalProperties", "exclusiveMinimum", "exclusiveMaximum", "default", "title"}
)
_SCHEMA_MAPS = ("properties",)
_SCHEMA_LISTS = ("allOf",)
_MAX_DEPTH = 32
_MAX_REF_HOPS = 8
# the formats Gemini's function-declaration schema accepts, per type
_GEMINI_FORMATS = {
    "string": ("enum", "date-time"),
    "number": ("float", "double"),
    "integer": ("int32", "int64"),
}


_SCHEMA = "a schema (an object or a boolean)"
_SCHEMAS = "an array of schemas (objects or booleans)"


class SchemaError(ValueError):
    """A schema keyword with the wrong JSON type; ``path`` grows as the error propagates up."""

    def __init__(self, where: str, expected: str) -> None:
        super().__init__(where, expected)
        self.path = [where]
        self.expected = expected

    def within(self, keyword: str, part: str | int | None = None) -> SchemaError:
        self.path.insert(0, _where(keyword, part))
        return self

    def describe(self, root: str) -> str:
        """``input_schema.properties.cmd.required must be an array of strings``."""
        return f"{root}{''.join(self.path)} must be {self.expected}"


def _where(keyword: str, part: str | int | None = None) -> str:
    if part is None:
        return "." + keyword
    if isinstance(part, int):
        return f".{keyword}[{part}]"
    # client text in an error message: bounded
    return f".{keyword}.{part if len(part) <= 64 else part[:61] + '...'}"


def _is_schema(value: Any) -> bool:
    return isinstance(value, (dict, bool))


def sanitize_schema(schema: dict[str, Any] | None, *, gemini: bool = False) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    ctx = _Ctx(
        root=schema, drop=_ALWAYS_DROP | _GEMINI_DROP if gemini else _ALWAYS_DROP, gemini=gemini
    )
    out = _clean(schema, ctx, (), 0)
    if out.get("type") != "object":
        out = {
            "type": "object",
            "properties": out.get("properties", {}),
            **({"required": out["required"]} if "required" in out else {}),
        }
    out.setdefault("properties", {})
    return out


class _Ctx:
    __slots__ = ("drop", "gemini", "root")

    def __init__(self, root: dict[str, Any], drop: frozenset[str], gemini: bool) -> None:
        self.root = root
        self.drop = drop
        self.gemini = gemini


def _pointer(root: dict[str, Any], ref: str) -> Any:
    """The node a local reference (``#``, ``#/$defs/X``, ``#/properties/a``) points at."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None  # remote, $id or $anchor reference: not resolvable offline
    node: Any = root
    for raw in ref[2:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


_NO_REF = object()


def _resolve(
    node: dict[str, Any], ctx: _Ctx, seen: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Follow ``$ref`` chains; siblings of a ``$ref`` (description, default) win."""
    for _ in range(_MAX_REF_HOPS):
        ref = node.get("$ref", _NO_REF)
        if ref is _NO_REF:
            return node, seen
        if not isinstance(ref, str):
            raise SchemaError(_where("$ref"), "a string")
        target = _pointer(ctx.root, ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if ref in seen or not isinstance(target, dict):
            # recursive or unresolvable reference: keep a permissive object
            desc = siblings.get("description")
            return {"type": "object", **({"description": desc} if desc else {})}, seen
        node = {**target, **siblings}
        seen = (*seen, ref)
    return {"type": "object"}, seen


def _clean(node: Any, ctx: _Ctx, seen: tuple[str, ...], depth: int) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    node, seen = _resolve(node, ctx, seen)
    node = _collapse_union(node)
    drop = ctx.drop
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        if key in drop or key == "$ref" or key in ("anyOf", "oneOf"):
            if key == "additionalProperties" and not _is_schema(value):
                # checked even where Gemini drops it: validity must not depend on the model
                raise SchemaError(_where(key), _SCHEMA)
            continue
        if key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise SchemaError(_where(key), "an object of schemas")
            out[key] = {name: _sub(sub, ctx, seen, depth, key, name) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, list):  # tuple form: keep the first
                for i, sub in enumerate(value):
                    if not _is_schema(sub):
                        raise SchemaError(_where(key, i), _SCHEMA)
                if value:
                    out[key] = _sub(value[0], ctx, seen, depth, key, 0)
            elif isinstance(value, dict):
                out[key] = _sub(value, ctx, seen, depth, key)
            elif not isinstance(value, bool):
                raise SchemaError(_where(key), f"{_SCHEMA} or {_SCHEMAS}")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _sub(value, ctx, seen, depth, key)
            elif isinstance(value, bool):
                out[key] = value
            else:
                raise SchemaError(_where(key), _SCHEMA)
        elif key in _SCHEMA_LISTS:
            _check_schemas(key, value)
            merged: dict[str, Any] = {}
            for i, sub in enumerate(value):
                merged.update(_sub(sub, ctx, seen, depth, key, i))
            for k, v in merged.items():
                out.setdefault(k, v)
        elif key == "const":
            out.setdefault("enum", [value])
        elif key == "type":
            if isinstance(value, list):
                if not all(isinstance(t, str) for t in value):
                    raise SchemaError(_where(key), "a string or an array of strings")
                types = [t for t in value if t != "null"]
                nullable = len(types) < len(value)
                out["type"] = types[0] if types else "string"
            elif isinstance(value, str):
                out["type"] = value
            else:
                raise SchemaError(_where(key), "a string or an array of strings")
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
                raise SchemaError(_where(key), "an array of strings")
            out[key] = value
        elif key == "enum" and not isinstance(value, list):
            raise SchemaError(_where(key), "an array")
        elif key == "description" and not isinstance(value, str):
            raise SchemaError(_where(key), "a string")
        else:
            out[key] = value
    if nullable or isinstance(out.get("enum"), list):
        _drop_null_enum(out)
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    if "required" in out and "properties" in out:
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    if (
        ctx.gemini
        and "format" in out
        and out["format"] not in _GEMINI_FORMATS.get(str(out.get("type")), ())
    ):
        del out["format"]  # Gemini rejects formats it does not know (e.g. "uri")
    return out


def _sub(
    node: Any,
    ctx: _Ctx,
    seen: tuple[str, ...],
    depth: int,
    keyword: str,
    part: str | int | None = None,
) -> dict[str, Any]:
    """``_clean`` one level down; a :class:`SchemaError` below gets this level's path."""
    if not _is_schema(node):
        raise SchemaError(_where(keyword, part), _SCHEMA)
    try:
        return _clean(node, ctx, seen, depth + 1)
    except SchemaError as err:
        raise err.within(keyword, part) from None


def _check_schemas(keyword: str, value: Any) -> None:
    if not isinstance(value, list):
        raise SchemaError(_where(keyword), _SCHEMAS)
    for i, sub in enumerate(value):
        if not _is_schema(sub):
            raise SchemaError(_where(keyword, i), _SCHEMA)


def _drop_null_enum(out: dict[str, Any]) -> None:
    enum = out.get("enum")
    if isinstance(enum, list) and None in enum:
        values = [v for v in enum if v is not None]
        if values:
            out["enum"] = values
        else:
            del out["enum"]


def _is_null(branch: Any) -> bool:
    return isinstance(branch, dict) and (
        branch.get("type") == "null"
        or branch.get("const", 0) is None
        or branch.get("enum") == [None]
    )


_SCALARS = frozenset({"string", "integer", "number", "boolean"})


def _type_names(value: Any) -> list[str]:
    return [str(t) for t in value] if isinstance(value, list) else [str(value)]


def _collapse_union(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf``/``oneOf`` -> one schema: nulls dropped, same-type enums merged, else first."""
    for key in ("anyOf", "oneOf"):
        if key not in node:
            continue
        branches = node[key]
        _check_schemas(key, branches)
        if not branches:
            continue
        rest = {k: v for k, v in node.items() if k != key}
        real = [b if isinstance(b, dict) else {} for b in branches if not _is_null(b)]
        if not real:
            return rest
        merged = dict(rest)
        for k, v in real[0].items():
            merged.setdefault(k, v)
        if len(real) == 1:
            return merged
        kinds = list(
            dict.fromkeys(
                t for b in real for t in _type_names(b.get("type", "value")) if t != "null"
            )
        )
        scalar_only = all(
            isinstance(b.get("type"), str)
            and b["type"] in _SCALARS
            and not {"properties", "items"} & b.keys()
            for b in real
        )
        if len(kinds) == 1 and scalar_only:
            # e.g. Claude Code's TaskUpdate.status: anyOf [{enum: [a, b, c]}, {const: d}]
            values: list[Any] = []
            for b in real:
                if "enum" in b and isinstance(b["enum"], list):
                    values.extend(b["enum"])
                elif "const" in b:
                    values.append(b["const"])
                else:
                    values = []  # one branch takes any value of the type: no enum at all
                    break
            merged.pop("const", None)
            merged.pop("enum", None)
            if values:
                merged["enum"] = [v for i, v in enumerate(values) if v not in values[:i]]
            return merged
        if len(kinds) > 1:
            note = f"(accepts one of: {', '.join(kinds)})"
            desc = merged.get("description")
            merged["description"] = f"{desc} {note}" if desc else note
        return merged
    return node
