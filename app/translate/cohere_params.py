"""JSON Schema -> COHERE v1 ``parameterDefinitions``. Pure.

Contract: :func:`cohere_parameter_definitions` sanitises a tool's ``input_schema``
(:func:`~app.translate.tool_schema.sanitize_schema`, which raises
:class:`~app.translate.tool_schema.SchemaError` for a malformed schema) and flattens its
top-level properties to v1's ``{name: {type, description, isRequired}}``. v1 has no nested
types, so an array, object or enum property keeps its shape as JSON in the description.
"""

from __future__ import annotations

from typing import Any

from app.translate import wire
from app.translate.tool_schema import sanitize_schema

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
            desc = (desc + " JSON schema: " + wire.encode(shape).decode()[:2000]).strip()
        entry: dict[str, Any] = {"type": ctype, "isRequired": name in required}
        if desc:
            entry["description"] = desc
        params[name] = entry
    return params
