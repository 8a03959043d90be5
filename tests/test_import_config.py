"""``python -m app import-config``: the original single-file gateway's config.json as YAML config.

The sample (tests/fixtures/legacy/config.json) follows that gateway's ``config.json.template``:
model OCIDs, ``max_tokens_key``, per-model temperature, a Cohere model, a dedicated endpoint,
substring aliases, a default model, and the settings this gateway has no place for. The YAML
written must load with :func:`app.config.load_config` and route names as the old gateway did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from app.catalog import Catalog
from app.config import load_config

SAMPLE = Path(__file__).parent / "fixtures" / "legacy" / "config.json"
OCID = "ocid1.generativeaimodel.oc1.us-chicago-1."


def import_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "import-config", *args],
                          capture_output=True, text=True, timeout=60)


def test_the_sample_converts_to_a_config_that_loads_and_routes_alike(tmp_path: Path) -> None:
    out = tmp_path / "gateway.yaml"
    proc = import_config(str(SAMPLE), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    config = load_config(out)
    legacy = json.loads(SAMPLE.read_text())

    assert config.oci.region == "us-chicago-1" and config.oci.endpoint is None
    assert config.oci.compartment_id == legacy["compartment_id"]
    assert list(config.models) == list(legacy["model_definitions"])
    for name, old in legacy["model_definitions"].items():
        spec = config.models[name]
        assert spec.oci_model == old["ocid"]  # OCIDs as on-demand model ids (or the DAC endpoint)
        assert spec.tokens_param == old["max_tokens_key"]
        assert spec.temperature == old["temperature"]
        assert spec.has("tools") and spec.has("vision") == ("images" in old["model_types"])
        assert spec.display_name == name
    assert config.models["my-llama-dac"].endpoint_id and not config.models["my-llama-dac"].model_id
    assert config.models["openai.gpt-5"].model_id.startswith(OCID)
    # the OCID does not name the family: the format is written out where the legacy config said
    assert config.models["cohere.command-a-03-2025"].format == "COHERE"
    assert config.models["xai.grok-4"].format == "GENERIC"
    assert config.default_model == "xai.grok-4-fast-non-reasoning"
    assert config.server.max_messages == 200

    # the legacy gateway matched an alias as a substring of the requested name
    catalog = Catalog(config)
    assert catalog.resolve("claude-sonnet-4-5-20250929").name == "xai.grok-4"
    assert catalog.resolve("claude-haiku-4-5-20251001").name == "xai.grok-4-fast-non-reasoning"
    assert catalog.resolve("claude-opus-4-1").name == "openai.gpt-5"
    assert catalog.resolve("openai.gpt-5").requested == "openai.gpt-5"
    assert catalog.resolve("something-else").name == "xai.grok-4-fast-non-reasoning"


def test_nothing_is_dropped_silently(tmp_path: Path) -> None:
    proc = import_config(str(SAMPLE))
    assert proc.returncode == 0, proc.stderr
    warned = proc.stderr
    for field in ("google.gemini-2.5-pro.top_p: unknown field",
                  "google.gemini-2.5-pro.model_types: 'video'",
                  "model_aliases.claude-instant: refers to 'meta.llama-2-70b-chat'",
                  "rate_limit:", "server: host, port and log level", "debug_ui:", "debug:",
                  "debug_redact_media:", "enable_nl_tool_fallback:", "context_window"):
        assert field in warned, field
    # the YAML on stdout carries the same warnings as comments, and is the same config
    assert proc.stdout.count("# warning: ") == warned.count("warning: ")
    out = tmp_path / "gateway.yaml"
    out.write_text(proc.stdout)
    assert load_config(out).models == load_config(_written(tmp_path)).models


def _written(tmp_path: Path) -> Path:
    path = tmp_path / "written.yaml"
    assert import_config(str(SAMPLE), "-o", str(path)).returncode == 0
    return path


def test_placeholder_ocids_and_a_custom_endpoint(tmp_path: Path) -> None:
    legacy = {
        "compartment_id": "ocid1.compartment.oc1..aaaa",
        "endpoint": "https://genai.example.internal:8443/",
        "model_definitions": {
            "meta.llama-3.3-70b-instruct": {"ocid": "ocid1.generativeaimodel.oc1...",
                                            "max_tokens_key": "max_tokens"},
        },
        "default_model": "meta.llama-3.3-70b-instruct",
    }
    source = tmp_path / "config.json"
    source.write_text(json.dumps(legacy))
    proc = import_config(str(source))
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(proc.stdout)
    assert data["oci"]["endpoint"] == "https://genai.example.internal:8443"
    assert data["models"]["meta.llama-3.3-70b-instruct"]["model_id"] == (
        "meta.llama-3.3-70b-instruct")
    assert "is not an OCID; using the name" in proc.stderr


def test_unusable_input_is_exit_1_with_the_reason(tmp_path: Path) -> None:
    source = tmp_path / "config.json"
    source.write_text(json.dumps({"endpoint": "https://x", "model_definitions": {}}))
    proc = import_config(str(source))
    assert proc.returncode == 1 and "compartment_id: required" in proc.stderr
    source.write_text("{not json")
    proc = import_config(str(source))
    assert proc.returncode == 1 and "not JSON" in proc.stderr
    proc = import_config(str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and "cannot read it" in proc.stderr
