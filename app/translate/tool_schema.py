"""Make Anthropic tool JSON Schemas acceptable to OCI-hosted models. Pure functions.

Contract: :func:`sanitize_schema` returns a new schema (the input is not modified) that
- has no ``$schema``/``$id``/``$comment`` and no ``$ref``/``$defs``/``definitions`` (references
  are inlined; a recursive reference is cut to ``{"type": "object"}`` after one expansion),
- has nullable unions collapsed (``anyOf: [X, {type: null}]`` -> X, ``type: [T, "null"]`` -> T),
  and other ``anyOf``/``oneOf`` reduced to their first branch (several OCI models reject them;
  the alternatives are named in the description so the model still knows),
- has ``items`` on every array, ``const`` turned into a one-value ``enum``,
- lacks keywords OCI models reject (``propertyNames``, ``patternProperties``, conditionals, …;
  Gemini additionally rejects ``additionalProperties`` and numeric exclusivity),
while keeping types, properties, required, enums, descriptions, defaults and formats.
:func:`cohere_parameter_definitions` flattens a schema to COHERE v1 ``parameterDefinitions``.

Hand-written because no maintained library targets OCI's accepted subset; the rules come from
oci-genai-wire.md §5/§6 and peers' reports (peers.md "What users ask for" #5).
"""

from __future__ import annotations

from typing import Any

import orjson

_ALWAYS_DROP = frozenset(
    {
        "$schema", "$id", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
        "$defs", "definitions", "propertyNames", "patternProperties", "unevaluatedProperties",
        "unevaluatedItems", "dependentSchemas", "dependentRequired", "dependencies", "if",
        "then", "else", "not", "contentEncoding", "contentMediaType", "contentSchema",
        "examples", "deprecated", "readOnly", "writeOnly", "prefixItems", "contains",
        "minContains", "maxContains",
    }
)
_GEMINI_DROP = frozenset(
    {"additionalProperties", "exclusiveMinimum", "exclusiveMaximum", "default", "title"}
)
_SCHEMA_MAPS = ("properties",)
_SCHEMA_LISTS = ("allOf",)
_MAX_DEPTH = 32


def sanitize_schema(schema: dict[str, Any] | None, *, gemini: bool = False) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update({f"#/{key}/{k}": v for k, v in schema[key].items()})
    drop = _ALWAYS_DROP | _GEMINI_DROP if gemini else _ALWAYS_DROP
    out = _clean(schema, defs, drop, (), 0)
    if out.get("type") != "object":
        out = {"type": "object", "properties": out.get("properties", {}), **(
            {"required": out["required"]} if "required" in out else {}
        )}
    out.setdefault("properties", {})
    return out


def _resolve(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, seen
    if ref in seen or ref not in defs:
        # recursive or external reference: keep a permissive object
        desc = node.get("description")
        return ({"type": "object", **({"description": desc} if desc else {})}, seen)
    target = dict(defs[ref])
    # sibling keywords next to $ref (description, default) win over the target's
    for k, v in node.items():
        if k != "$ref":
            target[k] = v
    return target, (*seen, ref)


def _clean(
    node: Any, defs: dict[str, Any], drop: frozenset[str], seen: tuple[str, ...], depth: int
) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    node, seen = _resolve(node, defs, seen)
    if "$ref" in node:  # a reference to a reference
        node, seen = _resolve(node, defs, seen)
    node = _collapse_union(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in drop or key == "$ref" or key in ("anyOf", "oneOf"):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {
                name: _clean(sub, defs, drop, seen, depth + 1) for name, sub in value.items()
            }
        elif key == "items":
            if isinstance(value, dict):
                out[key] = _clean(value, defs, drop, seen, depth + 1)
            elif isinstance(value, list) and value:  # tuple form: keep the first
                out[key] = _clean(value[0], defs, drop, seen, depth + 1)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _clean(value, defs, drop, seen, depth + 1)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            merged: dict[str, Any] = {}
            for sub in value:
                merged.update(_clean(sub, defs, drop, seen, depth + 1))
            for k, v in merged.items():
                out.setdefault(k, v)
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if types else "string"
        elif key == "required" and isinstance(value, list):
            out[key] = [r for r in value if isinstance(r, str)]
        else:
            out[key] = value
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    if "required" in out and "properties" in out:
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def _collapse_union(node: dict[str, Any]) -> dict[str, Any]:
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if not isinstance(branches, list) or not branches:
            continue
        real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if not real:
            continue
        first = real[0] if isinstance(real[0], dict) else {}
        merged = {k: v for k, v in node.items() if k not in (key,)}
        for k, v in first.items():
            merged.setdefault(k, v)
        if len(real) > 1:
            kinds = [str(b.get("type", "value")) for b in real if isinstance(b, dict)]
            note = f"(accepts one of: {', '.join(kinds)})"
            desc = merged.get("description")
            merged["description"] = f"{desc} {note}" if desc else note
        return merged
    return node


_COHERE_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
}


def cohere_parameter_definitions(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Flat COHERE v1 parameters (Python type names; ``List`` capitalised gives OCI a 500)."""
    clean = sanitize_schema(schema)
    required = set(clean.get("required", []))
    params: dict[str, Any] = {}
    for name, prop in clean.get("properties", {}).items():
        jtype = prop.get("type", "string")
        ctype = _COHERE_TYPES.get(jtype if isinstance(jtype, str) else "string", "str")
        desc = prop.get("description") or ""
        if ctype in ("list", "dict") or "enum" in prop:
            # nested structure cannot be expressed in v1 definitions: describe it instead
            shape = {k: v for k, v in prop.items() if k != "description"}
            desc = (desc + " JSON schema: " + orjson.dumps(shape).decode()[:2000]).strip()
        entry: dict[str, Any] = {"type": ctype, "isRequired": name in required}
        if desc:
            entry["description"] = desc
        params[name] = entry
    return params
