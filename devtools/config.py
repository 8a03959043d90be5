"""A gateway config file aimed at the OCI emulator (tests and soak; bench writes its own).

Contract: :func:`write_config` writes ``<directory>/gateway.yaml``: ``api_key`` auth with the
given OCI config file (an ``emulator.make_test_key`` config), the emulator as the endpoint,
fast retries and short timeouts, the :data:`TEST_MODELS` catalog, ``claude-*`` aliased to
``grok`` and, when ``keys_file`` is given, client API keys (else ``client_auth:
{allow_anonymous: true}``: the gateway is closed by default). Each keyword override replaces a
top-level section, except that a dict override of a dict section is merged one level deep
(``oci={"retries": {...}}`` replaces ``oci.retries`` and keeps the rest of ``oci``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# One model per family of the emulator's streaming styles (emulator/catalog.py), plus "tiny"
# for the context-window and max_tokens limits.
TEST_MODELS: dict[str, dict[str, Any]] = {
    "grok": {
        "model_id": "xai.grok-4",
        "context_window": 131072,
        "max_output_tokens": 16384,
        "capabilities": ["tools", "vision", "reasoning", "structured_output"],
    },
    "grok-fast": {
        "model_id": "xai.grok-4-fast-non-reasoning",
        "context_window": 2000000,  # the profile table's (oci-real-world.md §5)
        "max_output_tokens": 8000,
        "capabilities": ["tools"],
    },
    "llama": {
        "model_id": "meta.llama-3.3-70b-instruct",
        "max_output_tokens": 4000,
        "capabilities": ["tools"],
    },
    "gpt-oss": {
        "model_id": "openai.gpt-oss-120b",
        "max_output_tokens": 16384,
        "capabilities": ["tools", "reasoning"],
    },
    "gpt5": {
        "model_id": "openai.gpt-5",
        "context_window": 272000,  # the profile table's (oci-real-world.md §5)
        "max_output_tokens": 32000,
        "capabilities": ["tools", "reasoning", "vision"],
    },
    "gemini": {
        "model_id": "google.gemini-2.5-flash",
        "max_output_tokens": 65536,
        "context_window": 1048576,
        "capabilities": ["tools", "vision", "reasoning", "documents"],
    },
    "cohere": {
        "model_id": "cohere.command-a-03-2025",
        "context_window": 256000,  # the profile table's (oci-real-world.md §5)
        "max_output_tokens": 8000,
        "capabilities": ["tools"],
    },
    # COHEREV2 (spec.format from the model id): Command A Vision and Command A Reasoning
    "command-a-vision": {
        "model_id": "cohere.command-a-vision-07-2025",
        "max_output_tokens": 4000,
        "capabilities": ["tools", "vision", "structured_output"],
    },
    "command-a-reasoning": {
        "model_id": "cohere.command-a-reasoning-08-2025",
        "max_output_tokens": 4000,
        "context_window": 256000,
        "capabilities": ["tools", "reasoning"],
    },
    "tiny": {
        "model_id": "meta.llama-3.3-70b-instruct",
        "max_output_tokens": 100,
        "context_window": 1000,
        "capabilities": ["tools"],
    },
}


def write_config(
    directory: Path,
    fake_url: str,
    oci_config: Path | str,
    *,
    keys_file: Path | None = None,
    **overrides: Any,
) -> Path:
    config: dict[str, Any] = {
        "oci": {
            "region": "us-chicago-1",
            "endpoint": fake_url,
            "compartment_id": "ocid1.compartment.oc1..test",
            "auth": "api_key",
            "config_file": str(oci_config),
            "profile": "DEFAULT",
            "retries": {"max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.05},
            "timeouts": {"connect": 2, "first_byte": 5, "idle": 5},
        },
        "models": TEST_MODELS,
        "aliases": {"claude-*": "grok"},
    }
    if keys_file is not None:
        config["client_auth"] = {"api_keys_file": str(keys_file)}
    elif "client_auth" not in overrides:
        # emulator credentials: open on loopback on purpose (closed by default otherwise)
        config["client_auth"] = {"allow_anonymous": True}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


__all__ = ["TEST_MODELS", "write_config"]
