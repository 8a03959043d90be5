"""Unit tests of app/translate/tool_schema.py (pure functions) on tricky schemas.

The emulator's own schema check (emulator.validate) is the judge of "OCI accepts it":
every sanitized schema must pass it, including all of Claude Code's recorded tool schemas.
Malformed schemas (a keyword the sanitiser interprets with the wrong JSON type) are a 400 that
names the tool and the field, on /v1/messages and on count_tokens.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from app.anthropic.models import MessagesRequest
from app.catalog import ModelSpec, Resolved
from app.errors import InvalidRequest
from app.translate.cohere_params import cohere_parameter_definitions
from app.translate.to_oci import to_oci
from app.translate.tool_schema import SchemaError, sanitize_schema
from emulator.errors import OCIError
from emulator.validate import (
    COHERE_PARAMETER_TYPES,
    COHERE_TOOL,
    TOOL_DEFINITION,
    check_json_schema,
)
from tests.harness import ALICE, FIXTURES, GatewayServer, as_request

CC_TOOL_FILES = ("cc-01-main-turn-default-model.json", "cc-17-interactive-main-turn.json")



def cc_tools() -> list[dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for name in CC_TOOL_FILES:
        body = json.loads((FIXTURES / name).read_text())["body"]
        for tool in body["tools"]:
            tools.setdefault(tool["name"], tool)
    return list(tools.values())


def keywords(node: Any, in_properties: bool = False) -> set[str]:
    """Every JSON Schema keyword used anywhere (property names are not keywords)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if in_properties:
                found |= keywords(value)
                continue
            found.add(key)
            found |= keywords(value, in_properties=key == "properties")
    elif isinstance(node, list):
        for item in node:
            found |= keywords(item)
    return found


def accepted(schema: dict[str, Any]) -> None:
    """Raise when the emulator (OCI's rules) would reject these tool parameters."""
    TOOL_DEFINITION.check({"type": "FUNCTION", "name": "t", "parameters": schema}, "tool")


# --- Claude Code's real schemas -------------------------------------------------------------


def test_all_claude_code_tools_are_accepted_after_sanitizing() -> None:
    tools = cc_tools()
    assert len(tools) >= 27  # 24 in -p mode plus the interactive ones
    for tool in tools:
        original = copy.deepcopy(tool["input_schema"])
        with pytest.raises(OCIError):  # as recorded, OCI rejects them ($schema)
            accepted(tool["input_schema"])
        for gemini in (False, True):
            clean = sanitize_schema(tool["input_schema"], gemini=gemini)
            accepted(clean)
            assert "$schema" not in json.dumps(clean)
            assert "propertyNames" not in keywords(clean)
            # nothing the model needs is lost: properties, required, descriptions
            assert set(clean["properties"]) == set(original["properties"]), tool["name"]
            assert clean.get("required", []) == original.get("required", []), tool["name"]
            for name, prop in original["properties"].items():
                if "description" in prop:
                    assert clean["properties"][name]["description"].startswith(
                        prop["description"]), (tool["name"], name)
        assert tool["input_schema"] == original, "the input must not be modified"


def test_claude_code_enums_are_kept_and_union_enums_merged() -> None:
    by_name = {t["name"]: t["input_schema"] for t in cc_tools()}
    agent = sanitize_schema(by_name["Agent"])
    assert agent["properties"]["model"]["enum"] == ["sonnet", "opus", "haiku", "fable"]
    assert agent["additionalProperties"] is False
    # TaskUpdate.status is anyOf [{enum: [pending, in_progress, completed]}, {const: deleted}]:
    # taking the first branch alone would forbid "deleted"
    status = sanitize_schema(by_name["TaskUpdate"])["properties"]["status"]
    assert status["type"] == "string"
    assert status["enum"] == ["pending", "in_progress", "completed", "deleted"]
    assert "anyOf" not in status


def test_claude_code_schemas_for_gemini_drop_what_gemini_rejects() -> None:
    by_name = {t["name"]: t["input_schema"] for t in cc_tools()}
    for name, schema in by_name.items():
        found = keywords(sanitize_schema(schema, gemini=True))
        assert not found & {"additionalProperties", "exclusiveMinimum", "default", "$schema",
                            "propertyNames"}, name
    fetch = sanitize_schema(by_name["WebFetch"], gemini=True)["properties"]["url"]
    assert fetch == {"description": by_name["WebFetch"]["properties"]["url"]["description"],
                     "type": "string"}  # format "uri" is not a Gemini format
    assert sanitize_schema(by_name["WebFetch"])["properties"]["url"]["format"] == "uri"


# --- tricky schemas --------------------------------------------------------------------------


def test_refs_and_defs_are_inlined() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "where they live"},
            "work": {"$ref": "#/definitions/Address"},
            "tags": {"$ref": "#/$defs/Tags"},
            "same_as_home": {"$ref": "#/properties/home"},
        },
        "required": ["home"],
        "$defs": {
            "Address": {"type": "object", "description": "an address",
                        "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "Tags": {"$ref": "#/$defs/TagList"},  # a chain of references
            "TagList": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        },
        "definitions": {"Address": {"type": "object",
                                    "properties": {"zip": {"type": "string"}}}},
    }
    out = sanitize_schema(schema)
    accepted(out)
    props = out["properties"]
    assert props["home"] == {"type": "object", "description": "where they live",
                             "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert props["work"]["properties"] == {"zip": {"type": "string"}}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}
    assert props["same_as_home"]["properties"] == {"city": {"type": "string"}}
    assert out["required"] == ["home"]
    assert not keywords(out) & {"$ref", "$defs", "definitions", "$schema"}


def test_recursive_and_unresolvable_refs_become_permissive_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tree": {"$ref": "#/$defs/Node"},
            "remote": {"$ref": "https://example.com/schema.json", "description": "remote"},
            "root": {"$ref": "#"},
        },
        "$defs": {"Node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
    }
    out = sanitize_schema(schema)
    accepted(out)
    tree = out["properties"]["tree"]
    assert tree["properties"]["value"] == {"type": "integer"}
    assert tree["properties"]["children"]["items"] == {"type": "object"}  # cut after one level
    assert out["properties"]["remote"] == {"type": "object", "description": "remote"}
    assert out["properties"]["root"]["type"] == "object"


def test_nullable_unions_collapse() -> None:
    schema = {"type": "object", "properties": {
        "a": {"anyOf": [{"type": "string", "description": "inner"}, {"type": "null"}],
              "description": "outer"},
        "b": {"type": ["integer", "null"], "default": None},
        "c": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "number"}}]},
        "d": {"type": ["string", "null"], "enum": ["x", "y", None]},
        "e": {"anyOf": [{"type": "null"}]},
    }}
    props = sanitize_schema(schema)["properties"]
    assert props["a"] == {"type": "string", "description": "outer"}
    assert props["b"]["type"] == "integer"
    assert props["c"] == {"type": "array", "items": {"type": "number"}}
    assert props["d"] == {"type": "string", "enum": ["x", "y"]}
    assert "anyOf" not in props["e"]
    accepted(sanitize_schema(schema))


def test_other_unions_keep_one_branch_and_say_so() -> None:
    schema = {"type": "object", "properties": {
        "mixed": {"description": "a path or a list",
                  "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "free": {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "string"}]},
        "objs": {"oneOf": [{"type": "object", "properties": {"x": {"type": "string"}}},
                           {"type": "object", "properties": {"y": {"type": "string"}}}]},
    }}
    props = sanitize_schema(schema)["properties"]
    assert props["mixed"]["type"] == "string"
    assert props["mixed"]["description"] == "a path or a list (accepts one of: string, array)"
    assert props["free"] == {"type": "string"}  # one branch takes any string: no enum
    assert props["objs"]["properties"] == {"x": {"type": "string"}}
    assert not keywords(sanitize_schema(schema)) & {"anyOf", "oneOf"}


def test_arrays_get_items_and_tuple_items_keep_the_first() -> None:
    schema = {"type": "object", "properties": {
        "bare": {"type": "array"},
        "nullable_bare": {"type": ["array", "null"]},
        "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
        "nested": {"type": "object", "properties": {"deep": {"type": "array"}}},
        "in_union": {"anyOf": [{"type": "array"}, {"type": "null"}]},
        "prefix": {"type": "array", "prefixItems": [{"type": "string"}]},
    }}
    out = sanitize_schema(schema)
    accepted(out)
    props = out["properties"]
    assert props["bare"]["items"] == {}
    assert props["nullable_bare"] == {"type": "array", "items": {}}
    assert props["tuple"]["items"] == {"type": "string"}
    assert props["nested"]["properties"]["deep"]["items"] == {}
    assert props["in_union"]["items"] == {}
    assert "prefixItems" not in props["prefix"]


def test_rejected_keywords_dropped_and_useful_ones_kept() -> None:
    schema = {
        "$id": "x", "$comment": "c", "title": "T", "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast",
                     "description": "how", "pattern": "^[a-z]+$", "minLength": 1},
            "n": {"type": "integer", "minimum": 0, "maximum": 10, "exclusiveMinimum": 0},
            "kind": {"const": "fixed"},
            "map": {"type": "object", "propertyNames": {"pattern": "^x"},
                    "patternProperties": {"^x": {"type": "string"}},
                    "additionalProperties": {"type": "string"}},
            "cond": {"type": "object", "if": {"properties": {}}, "then": {}, "else": {},
                     "not": {"type": "null"}, "dependentRequired": {"a": ["b"]}},
            "$ref": {"type": "string", "description": "a property named like a keyword"},
            "title": {"type": "string"},
        },
        "required": ["mode", "missing", "$ref"],
        "allOf": [{"properties": {"extra": {"type": "boolean"}}}],
    }
    out = sanitize_schema(schema)
    accepted(out)
    props = out["properties"]
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "default": "fast",
                             "description": "how", "pattern": "^[a-z]+$", "minLength": 1}
    assert props["n"]["minimum"] == 0 and props["n"]["exclusiveMinimum"] == 0
    assert props["kind"] == {"enum": ["fixed"]}
    assert props["map"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert set(props["cond"]) == {"type"}
    assert props["$ref"]["description"] == "a property named like a keyword"
    assert props["title"] == {"type": "string"}
    assert out["required"] == ["mode", "$ref"]  # names without a property are dropped
    assert out["title"] == "T" and "$id" not in out and "$comment" not in out
    gem = sanitize_schema(schema, gemini=True)
    assert "title" not in gem and "title" in gem["properties"]  # keyword vs property name
    assert "default" not in gem["properties"]["mode"]
    assert "exclusiveMinimum" not in gem["properties"]["n"]
    assert "additionalProperties" not in gem["properties"]["map"]


@pytest.mark.parametrize("schema", [None, {}, {"type": "string"}, {"properties": {}},
                                    {"type": "object", "properties": {"a": True}}])
def test_degenerate_schemas_become_objects(schema: Any) -> None:
    out = sanitize_schema(schema)
    assert out["type"] == "object" and isinstance(out["properties"], dict)
    accepted(out)


def test_deep_schema_is_bounded() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        node = {"type": "object", "properties": {"x": node}}
    out = sanitize_schema(node)
    accepted(out)
    check_json_schema(out, "p")


# --- COHERE parameterDefinitions --------------------------------------------------------------


def test_cohere_parameter_definitions() -> None:
    schema = {"$schema": "x", "type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer"},
        "ratio": {"type": ["number", "null"]},
        "metric": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags"},
        "opts": {"type": "object", "properties": {"a": {"type": "string"}}},
        "unit": {"type": "string", "enum": ["C", "F"]},
        "any": {},
    }, "required": ["city", "unit"]}
    params = cohere_parameter_definitions(schema)
    assert params["city"] == {"type": "str", "isRequired": True, "description": "City name"}
    assert params["days"] == {"type": "int", "isRequired": False}
    assert params["ratio"]["type"] == "float" and params["metric"]["type"] == "bool"
    assert params["tags"]["type"] == "list"  # lower case: "List" gives OCI a 500
    assert params["tags"]["description"].startswith("Tags JSON schema: ")
    assert '"items":{"type":"string"}' in params["tags"]["description"]
    assert params["opts"]["type"] == "dict"
    assert params["unit"]["isRequired"] and '"enum":["C","F"]' in params["unit"]["description"]
    assert params["any"]["type"] == "str"
    for p in params.values():
        assert p["type"] in COHERE_PARAMETER_TYPES
    COHERE_TOOL.check({"name": "t", "description": "d", "parameterDefinitions": params}, "t")


def test_cohere_parameter_definitions_of_every_claude_code_tool() -> None:
    for tool in cc_tools():
        params = cohere_parameter_definitions(tool["input_schema"])
        assert set(params) == set(tool["input_schema"]["properties"])
        required = set(tool["input_schema"].get("required", []))
        assert {n for n, p in params.items() if p["isRequired"]} == required
        COHERE_TOOL.check({"name": tool["name"], "description": "d",
                           "parameterDefinitions": params}, "t")


# --- malformed schemas: a 400 naming the field --------------------------------------------------
# Before the fix the first eight raised TypeError/AttributeError in the sanitiser: an HTTP 500
# on /v1/messages and count_tokens (found by tests/test_fuzz_mutation.py). The others were sent
# to OCI as they were, or silently dropped.

MALFORMED = [
    ({"type": "object", "required": None}, "required must be an array of strings"),
    ({"type": "object", "required": 5}, "required must be an array of strings"),
    ({"type": "object", "properties": {"a": {}}, "required": "a"},
     "required must be an array of strings"),
    ({"type": "object", "properties": None}, "properties must be an object of schemas"),
    ({"type": "object", "properties": 5}, "properties must be an object of schemas"),
    ({"type": "object", "properties": "abc", "required": ["a"]},
     "properties must be an object of schemas"),
    ({"type": "object", "properties": [{"type": "string"}]},
     "properties must be an object of schemas"),
    ({"type": "object", "properties": {"a": {"type": "string", "description": 5}}},
     "properties.a.description must be a string"),
    ({"type": "object", "required": ["a", 1]}, "required must be an array of strings"),
    ({"type": "object", "properties": {"a": 5}}, "properties.a must be a schema"),
    ({"properties": {"a": {"type": "array", "items": 5}}}, "properties.a.items must be a schema"),
    ({"properties": {"a": {"type": "array", "items": [{}, "x"]}}},
     "properties.a.items[1] must be a schema"),
    ({"properties": {"a": {"anyOf": 5}}}, "properties.a.anyOf must be an array of schemas"),
    ({"properties": {"a": {"oneOf": [{"type": "string"}, None]}}},
     "properties.a.oneOf[1] must be a schema"),
    ({"properties": {"a": {"allOf": {"type": "string"}}}},
     "properties.a.allOf must be an array of schemas"),
    ({"properties": {"a": {"enum": "x"}}}, "properties.a.enum must be an array"),
    ({"properties": {"a": {"type": 5}}}, "properties.a.type must be a string or an array"),
    ({"properties": {"a": {"type": ["string", None]}}}, "properties.a.type must be a string"),
    ({"properties": {"a": {"$ref": 5}}}, "properties.a.$ref must be a string"),
    ({"properties": {"a": {"additionalProperties": "no"}}},
     "properties.a.additionalProperties must be a schema"),
    ({"properties": {"a": {"$ref": "#/$defs/X"}}, "$defs": {"X": {"required": None}}},
     "properties.a.required must be an array of strings"),
]


@pytest.mark.parametrize(("schema", "message"), MALFORMED)
@pytest.mark.parametrize("gemini", [False, True])
def test_malformed_schema_names_the_field(schema: dict[str, Any], message: str,
                                          gemini: bool) -> None:
    with pytest.raises(SchemaError) as err:
        sanitize_schema(copy.deepcopy(schema), gemini=gemini)
    assert err.value.describe("input_schema").startswith("input_schema." + message), (
        err.value.describe("input_schema"))
    with pytest.raises(SchemaError):
        cohere_parameter_definitions(copy.deepcopy(schema))


def test_valid_odd_schemas_stay_accepted() -> None:
    # boolean schemas, tuple items, nullable type lists, empty unions: valid JSON Schema
    schema = {"type": "object", "additionalProperties": False, "required": [],
              "properties": {"a": True, "b": {"type": "array", "items": [{"type": "string"}]},
                             "c": {"type": ["string", "null"]}, "d": {"anyOf": []},
                             "e": {"items": True, "type": "array"}, "f": False}}
    accepted(sanitize_schema(schema))
    cohere_parameter_definitions(schema)


def _request(schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "grok", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"},
                      {"name": "Read", "input_schema": {"type": "object"}},
                      {"name": "Bash", "description": "Run", "input_schema": schema}], **extra}


@pytest.mark.parametrize("model_id", ["xai.grok-4", "google.gemini-2.5-flash",
                                      "cohere.command-a-03-2025"])
def test_translators_raise_invalid_request_naming_the_tool(model_id: str) -> None:
    req = as_request(MessagesRequest, _request({"type": "object", "required": None}))
    resolved = Resolved("m", ModelSpec(model_id=model_id, capabilities=("tools",)), "m")
    with pytest.raises(InvalidRequest) as err:
        to_oci(req, resolved, "ocid1.compartment.oc1..x")
    # the index is the one in the client's tools array (the server tool counts)
    assert err.value.message == "tools[2] (Bash): input_schema.required must be an array of strings"


def test_structured_output_schema_is_checked_too() -> None:
    req = as_request(MessagesRequest, _request({"type": "object"}, output_config={
        "format": {"type": "json_schema", "schema": {"type": "object", "properties": 5}}}))
    spec = ModelSpec(model_id="xai.grok-4", capabilities=("tools", "structured_output"))
    with pytest.raises(InvalidRequest) as err:
        to_oci(req, Resolved("m", spec, "m"), "ocid1.compartment.oc1..x")
    assert err.value.message == (
        "output_config.format.schema.properties must be an object of schemas")


@pytest.mark.parametrize("route", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("schema", [{"type": "object", "required": None},
                                    {"type": "object", "properties": 7},
                                    {"type": "object", "properties": {"cmd": {"items": "x"}}}])
def test_malformed_tool_schema_is_a_400_over_http(gateway: GatewayServer, route: str,
                                                  schema: dict[str, Any]) -> None:
    r = httpx.post(gateway.url + route, json=_request(schema), timeout=30,
                   headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("tools[2] (Bash): input_schema."), error
