"""``python -m app import-config config.json [-o FILE]``: the original single-file gateway's config
(art-jin/oci-anthropic-gateway ``config.json``) as this gateway's YAML config.

Contract: :func:`convert` maps the legacy document to a config dict that :func:`app.config.
parse_config` accepts, plus the list of warnings for everything it could not carry over --
each unknown or unsupported field is named, nothing is dropped silently. :func:`main` prints
the YAML (with the warnings as a comment block at its top) to stdout or ``-o FILE`` and the
warnings to stderr; exit 0 when a config was written, 1 when the input is unreadable or has no
usable model (the message says why).

The mapping (legacy -> new):

- ``compartment_id`` -> ``oci.compartment_id``; ``endpoint`` -> ``oci.region`` when it is the
  standard inference URL of a region, else ``oci.endpoint``. Auth becomes ``api_key`` with
  ``~/.oci/config`` ``DEFAULT``, the legacy gateway's local fallback (it tried OKE workload
  identity and resource principals first: set ``oci.auth`` for those).
- each ``model_definitions.<name>`` -> ``models.<name>``: ``ocid`` -> ``model_id`` (OCI takes a
  model OCID as an on-demand model id; without one, the name itself), ``max_tokens_key`` ->
  ``max_tokens_param``, ``temperature`` -> ``temperature``, ``api_format: cohere`` (or a
  ``cohere.`` name) -> ``api_format: COHERE`` (an OCID does not tell the gateway the family),
  ``model_types`` ``images`` -> capability ``vision``; every model keeps ``tools``. The name
  is kept as ``display_name`` too.
- ``model_aliases`` (the legacy gateway matched an alias as a substring of the lower-cased
  requested name) -> ``aliases`` with the glob ``*<alias>*``, in the same order.
- ``default_model`` -> ``default_model``; ``messages_max_items`` -> ``server.max_messages``.
- ``server.host``/``port``/``log_level`` are process settings here (``GATEWAY_HOST``, ...), the
  ``rate_limit`` is per client key (the keys file), ``guardrails``, ``debug*`` and
  ``enable_nl_tool_fallback`` do not exist: each is a warning saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from app.config import ConfigError, parse_config

_REGION_URL = re.compile(
    r"^https://inference\.generativeai\.([a-z0-9-]+)\.oci\.oraclecloud\.com/?$"
)
#: a real OCID: ocid1.<type>.<realm>.<region>.<unique id> (the templates' "your-model-ocid" is not)
_OCID = re.compile(r"^ocid1\.generativeai(model|endpoint)\.oc\d+\.[a-z0-9-]*\.[a-z0-9]{20,}$")
_MODEL_KEYS = {
    "ocid",
    "max_tokens_key",
    "temperature",
    "api_format",
    "model_types",
    "compartment_id",
}
_DROPPED = {
    "server": "host, port and log level are process settings: GATEWAY_HOST, GATEWAY_PORT, "
    "GATEWAY_LOG_LEVEL (README 'Configuration')",
    "rate_limit": "limits are per client key here: see client_auth.api_keys_file in the README",
    "guardrails": "OCI guardrails are not supported by this gateway",
    "debug": "there is no debug mode; use GATEWAY_LOG_LEVEL=DEBUG and the traces",
    "debug_ui": "there is no debug UI; use the traces and metrics (README 'Observability')",
    "debug_redact_media": "there are no request dumps to redact",
    "enable_nl_tool_fallback": "tools are always native OCI tool calls here",
}


def _region_or_endpoint(endpoint: Any, warnings: list[str]) -> dict[str, str]:
    if not isinstance(endpoint, str) or not endpoint:
        warnings.append("endpoint: missing; set oci.region (or oci.endpoint) before use")
        return {"region": "us-chicago-1"}
    match = _REGION_URL.match(endpoint)
    return {"region": match.group(1)} if match else {"endpoint": endpoint.rstrip("/")}


def _model(name: str, legacy: Any, compartment: Any, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(legacy, dict):
        raise ConfigError(f"model_definitions.{name}: must be an object")
    spec: dict[str, Any] = {}
    ocid = legacy.get("ocid")
    if isinstance(ocid, str) and _OCID.match(ocid):
        # a dedicated AI cluster's endpoint, or an on-demand model by its OCID
        spec["endpoint_id" if ".generativeaiendpoint." in ocid else "model_id"] = ocid
    else:
        spec["model_id"] = name  # OCI also takes the model's name on demand
        warnings.append(
            f"model_definitions.{name}.ocid: {ocid!r} is not an OCID; "
            f"using the name {name!r} as the OCI model id"
        )
    key = legacy.get("max_tokens_key")
    if key in ("max_tokens", "max_completion_tokens"):
        spec["max_tokens_param"] = key
    elif key is not None:
        warnings.append(
            f"model_definitions.{name}.max_tokens_key: {key!r} is not max_tokens "
            "or max_completion_tokens; left to the gateway's default"
        )
    if isinstance(legacy.get("temperature"), int | float):
        spec["temperature"] = float(legacy["temperature"])
    fmt = str(legacy.get("api_format") or "").lower()
    if fmt == "cohere" or name.startswith("cohere."):
        spec["api_format"] = "COHERE"
    elif fmt not in ("", "generic"):
        warnings.append(f"model_definitions.{name}.api_format: {fmt!r} unknown; using GENERIC")
    capabilities = ["tools"]
    types = legacy.get("model_types") or ["text"]
    if "images" in types:
        capabilities.append("vision")
    for kind in ("video", "audio"):
        if kind in types:
            warnings.append(
                f"model_definitions.{name}.model_types: {kind!r} input is not "
                "supported by this gateway; dropped"
            )
    spec["capabilities"] = capabilities
    spec["display_name"] = name
    own = legacy.get("compartment_id")
    if own and own != compartment:
        warnings.append(
            f"model_definitions.{name}.compartment_id: one compartment serves "
            f"every model here; {own!r} was dropped (oci.compartment_id is used)"
        )
    for extra in sorted(set(legacy) - _MODEL_KEYS):
        warnings.append(f"model_definitions.{name}.{extra}: unknown field, dropped")
    return spec


def convert(legacy: Any) -> tuple[dict[str, Any], list[str]]:
    """The new config dict and the warnings; :class:`ConfigError` when nothing usable is left."""
    if not isinstance(legacy, dict):
        raise ConfigError("the legacy config must be a JSON object")
    warnings: list[str] = []
    compartment = legacy.get("compartment_id")
    if not isinstance(compartment, str) or not compartment:
        raise ConfigError("compartment_id: required")
    definitions = legacy.get("model_definitions") or {}
    if not isinstance(definitions, dict) or not definitions:
        raise ConfigError("model_definitions: at least one model is required")
    oci = {
        **_region_or_endpoint(legacy.get("endpoint"), warnings),
        "compartment_id": compartment,
        "auth": "api_key",
    }
    models = {name: _model(name, d, compartment, warnings) for name, d in definitions.items()}
    config: dict[str, Any] = {"oci": oci, "models": models}
    aliases: dict[str, str] = {}
    for alias, target in (legacy.get("model_aliases") or {}).items():
        if target not in models:
            warnings.append(
                f"model_aliases.{alias}: refers to {target!r}, which is not in "
                "model_definitions; dropped"
            )
            continue
        aliases[f"*{alias}*"] = target
    if aliases:
        config["aliases"] = aliases
    default = legacy.get("default_model")
    if default in models:
        config["default_model"] = default
    elif default is not None:
        warnings.append(
            f"default_model: {default!r} is not in model_definitions; dropped "
            "(unknown model names get a 404)"
        )
    if "messages_max_items" in legacy:
        config["server"] = {"max_messages": int(legacy["messages_max_items"])}
    known = {
        "compartment_id",
        "endpoint",
        "model_definitions",
        "model_aliases",
        "default_model",
        "messages_max_items",
    }
    for key in legacy:
        if key in known:
            continue
        warnings.append(f"{key}: {_DROPPED.get(key, 'unknown field')}; dropped")
    warnings.append(
        "models: context_window and max_output_tokens are not in the legacy config; "
        "the defaults (128000 / 4096) apply: set them per model"
    )
    return config, warnings


def to_yaml(config: dict[str, Any], warnings: list[str], source: str) -> str:
    head = [
        f"# Converted from {source} by `python -m app import-config`.",
        "# Check it with `python -m app check`, then `python -m app conformance`.",
    ]
    head += [f"# warning: {w}" for w in warnings]
    return "\n".join(head) + "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app import-config",
        description="Convert the original gateway's config.json.",
    )
    parser.add_argument("legacy", help="the legacy config.json")
    parser.add_argument("-o", "--output", help="write the YAML here instead of stdout")
    args = parser.parse_args(argv)
    try:
        try:
            legacy = json.loads(Path(args.legacy).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"{args.legacy}: cannot read it ({err.strerror})") from None
        except ValueError as err:
            raise ConfigError(f"{args.legacy}: not JSON ({err})") from None
        config, warnings = convert(legacy)
        parse_config(config, "the converted config")  # what is written must load
    except ConfigError as err:
        print(f"import-config: {err}", file=sys.stderr)
        return 1
    text = to_yaml(config, warnings, Path(args.legacy).name)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(config['models'])} models)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
