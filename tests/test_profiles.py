"""The per-model profile table (app/catalog/profiles.py) and how a config entry changes it.

What the table says for the ids the evidence names (the audit oci-real-world.md, "RW §n"), that
every rule's glob is reachable (no rule hidden behind a broader one), how ``ModelSpec`` derives
its profile (table < legacy keys < ``profile:``), that unknown ``profile`` keys are config
errors, that ``python -m app check`` prints the effective profile, and the finish-reason map.
The HTTP behaviour of each rule is pinned in tests/test_real_oci_rules.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.catalog import ModelSpec, Upstream
from app.catalog.profiles import FALLBACK, RULES, table_profile, table_rule
from app.config import ConfigError, parse_config
from app.translate.common import finish_error, stop_reason
from emulator import FakeOCI, TestKey
from tests.harness import write_config

ROOT = Path(__file__).resolve().parents[1]


# --- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "effort"), [
    # RW §1: hermes-agent #23435 accepts / rejects, litellm #40732, acedergren registry.ts
    ("xai.grok-3-mini", True), ("xai.grok-3-mini-fast", True), ("xai.grok-4.3", True),
    ("xai.grok-4.20-multi-agent", True), ("xai.grok-4.20-multi-agent-0309", True),
    ("xai.grok-4", False), ("xai.grok-4-fast-reasoning", False),
    ("xai.grok-4-1-fast-reasoning", False), ("xai.grok-4-1-fast-non-reasoning", False),
    ("xai.grok-4.20-reasoning", False), ("xai.grok-4.20-0309-non-reasoning", False),
    ("xai.grok-code-fast-1", False), ("xai.grok-3", False), ("xai.grok-3-fast", False),
    ("openai.gpt-oss-120b", True), ("openai.gpt-oss-20b", True), ("openai.gpt-5", True),
    ("openai.gpt-5.2-chat-latest", True), ("google.gemini-2.5-pro", True),
    ("google.gemini-2.5-flash", True), ("google.gemini-2.5-flash-lite", False),
    ("meta.llama-3.3-70b-instruct", False), ("meta.llama-4-scout-17b-16e-instruct", False),
    ("cohere.command-a-03-2025", False),
])
def test_effort_knob_follows_the_live_matrix(model_id: str, effort: bool) -> None:
    assert table_profile(model_id).reasoning_effort is effort


def test_grok_reasons_without_the_knob() -> None:
    grok = table_profile("xai.grok-4")
    assert grok.reasoning and not grok.reasoning_effort  # RW §1: two different facts
    assert grok.context_window == 128000  # RW §8: OCI doc, not 131,072
    assert not table_profile("xai.grok-4-fast-non-reasoning").reasoning


@pytest.mark.parametrize(("model_id", "fmt"), [
    ("cohere.command-a-03-2025", "COHERE"), ("cohere.command-r-plus-08-2024", "COHERE"),
    ("cohere.command-a-vision-07-2025", "COHEREV2"), ("cohere.command-a-vision", "COHEREV2"),
    ("cohere.command-a-reasoning-08-2025", "COHEREV2"), ("meta.llama-3.3-70b-instruct", "GENERIC"),
])
def test_format(model_id: str, fmt: str) -> None:
    assert table_profile(model_id).format == fmt


@pytest.mark.parametrize(("model_id", "cap"), [
    ("cohere.command-a-03-2025", 4000), ("cohere.command-a-vision-07-2025", 4000),
    ("meta.llama-3.3-70b-instruct", 4000), ("meta.llama-3.1-405b-instruct", 4000),
    ("meta.llama-4-maverick-17b-128e-instruct-fp8", 8192),
    ("meta.llama-4-scout-17b-16e-instruct", 8192),
    ("google.gemini-2.5-pro", None), ("xai.grok-4", None), ("openai.gpt-oss-120b", None),
])
def test_on_demand_cap(model_id: str, cap: int | None) -> None:
    assert table_profile(model_id).on_demand_max_output == cap


def test_only_gemini_pairs_calls_and_takes_documents() -> None:
    for rule in RULES:
        p = rule.profile
        gemini = rule.pattern.startswith("google.")
        assert p.pair_tool_calls == p.tool_only_text_part == p.gemini_schema == gemini
        assert p.documents == gemini  # RW §2: langchain-oci, OpenAI family text+image only
        assert p.cohere_history_repair == (p.format == "COHERE")


def test_openai_sampling_and_token_field() -> None:
    assert table_profile("openai.gpt-5-mini").fixed_sampling  # RW §10
    assert table_profile("openai.gpt-5").tokens_param == "max_completion_tokens"
    assert table_profile("openai.o3").tokens_param == "max_completion_tokens"
    assert table_profile("openai.gpt-4.1").tokens_param == "max_completion_tokens"
    oss = table_profile("openai.gpt-oss-120b")
    assert oss.tokens_param == "max_tokens" and not oss.fixed_sampling and not oss.vision


def test_every_rule_is_reachable() -> None:
    # first match wins: a rule whose own glob is taken by an earlier, broader one is dead
    for i, rule in enumerate(RULES):
        probe = rule.pattern.replace("*", "x")
        assert table_rule(probe) == rule.pattern, (i, rule.pattern, table_rule(probe))


def test_unknown_ids_get_the_fallback() -> None:
    assert table_profile("acme.model-9") is FALLBACK is table_profile(None)
    assert FALLBACK.format == "GENERIC" and FALLBACK.tools and not FALLBACK.reasoning_effort
    assert table_rule("acme.model-9") is None


# --- ModelSpec: table < legacy keys < profile: ---------------------------------------------------


def test_spec_limits_default_to_the_table() -> None:
    spec = ModelSpec(model_id="google.gemini-2.5-flash")
    assert (spec.context_window, spec.max_output_tokens) == (1048576, 65536)
    spec = ModelSpec(model_id="xai.grok-4", context_window=100000)
    assert spec.context_window == spec.profile.context_window == 100000


def test_legacy_capabilities_set_exactly_those() -> None:
    spec = ModelSpec(model_id="xai.grok-4", capabilities=("tools", "reasoning"))
    assert spec.has("reasoning") and not spec.has("vision") and not spec.has("structured_output")
    assert not spec.profile.reasoning_effort  # `reasoning` never meant the knob again
    assert ModelSpec(model_id="google.gemini-2.5-pro").has("documents")


def test_profile_overrides_win() -> None:
    spec = parse_config({"oci": {"region": "r", "compartment_id": "c"}, "models": {"m": {
        "model_id": "xai.grok-4", "capabilities": ["tools"], "api_format": "GENERIC",
        "profile": {"reasoning_effort": True, "vision": True, "format": "COHEREV2"}}}}).models["m"]
    assert spec.profile.reasoning_effort and spec.has("vision") and spec.format == "COHEREV2"


def test_api_format_accepts_coherev2() -> None:
    spec = ModelSpec(endpoint_id="ocid1.generativeaiendpoint.oc1..x", api_format="COHEREV2")
    assert spec.format == "COHEREV2"


def test_dedicated_endpoint_takes_its_base_models_profile_without_the_cap() -> None:
    spec = ModelSpec(endpoint_id="ocid1.generativeaiendpoint.oc1..x",
                     base_model="cohere.command-a-03-2025", max_output_tokens=8000)
    assert spec.format == "COHERE" and spec.profile.cohere_history_repair
    assert spec.output_limit == 8000  # DEDICATED: no on-demand cap (RW §8)
    assert ModelSpec(model_id="cohere.command-a-03-2025",
                     max_output_tokens=8000).output_limit == 4000
    # a dedicated primary with an on-demand failover shares one body: the lower limit
    mixed = ModelSpec(endpoint_id="ocid1.generativeaiendpoint.oc1..x",
                      base_model="cohere.command-a-03-2025", max_output_tokens=8000,
                      failover=(Upstream(region="eu-frankfurt-1",
                                         model_id="cohere.command-a-03-2025"),))
    assert mixed.output_limit == 4000


@pytest.mark.parametrize(("profile", "needle"), [
    ({"reasoning_efort": True}, "models.m.profile.reasoning_efort: unknown key"),
    ({"format": "COHERE3"}, "models.m.profile.format"),
    ({"on_demand_max_output": 0}, "models.m.profile.on_demand_max_output"),
    ({"context_window": 5}, "models.m.profile.context_window: unknown key"),
    ("yes", "models.m.profile"),
])
def test_bad_profile_is_a_config_error(profile: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_config({"oci": {"region": "r", "compartment_id": "c"},
                      "models": {"m": {"model_id": "xai.grok-4", "profile": profile}}})


def test_check_prints_the_effective_profiles(fake: FakeOCI, oci_key: TestKey,
                                             tmp_path: Path) -> None:
    config = write_config(tmp_path, fake.url, oci_key.config_path, models={
        "grok": {"model_id": "xai.grok-4"},
        "forced": {"model_id": "xai.grok-4", "profile": {"reasoning_effort": True}},
        "command-a": {"model_id": "cohere.command-a-03-2025", "max_output_tokens": 8000},
    }, aliases={})
    out = subprocess.run([sys.executable, "-m", "app", "check"],
                         env={**os.environ, "GATEWAY_CONFIG": str(config),
                              "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    at = lines.index("profiles (table rule -> effective profile):")

    def profile(name: str, rule: str) -> str:  # the line after "  <name> (rule <rule>):"
        return lines[lines.index(f"  {name} (rule {rule}):", at) + 1]

    grok = profile("grok", "xai.grok-4")
    forced = profile("forced", "xai.grok-4")
    command = profile("command-a", "cohere.command-a*")
    assert "reasoning=yes reasoning_effort=no" in grok and "context_window=128000" in grok
    assert "reasoning_effort=yes" in forced
    assert "format=COHERE " in command and "on_demand_max_output=4000" in command
    assert "command-a: cohere.command-a-03-2025 (on-demand, COHERE, context 256000, " \
           "max output 4000" in out.stdout


# --- finish reasons (RW §11) -----------------------------------------------------------------


@pytest.mark.parametrize(("finish", "cohere", "reason"), [
    ("stop", False, "end_turn"), ("length", False, "max_tokens"),
    ("max_tokens", False, "max_tokens"), ("content_filter", False, "refusal"),
    ("CONTENT_FILTERED", False, "refusal"), ("COMPLETE", True, "end_turn"),
    ("MAX_TOKENS", True, "max_tokens"), ("ERROR_TOXIC", True, "refusal"),
    ("ERROR_LIMIT", True, "max_tokens"), ("TOOL_CALL", True, "tool_use"),
    ("something_new", False, "end_turn"),
])
def test_stop_reason(finish: str, cohere: bool, reason: str) -> None:
    assert stop_reason(finish, had_tool_calls=False, cohere=cohere) == reason
    assert finish_error(finish, cohere=cohere) is None


def test_tool_calls_do_not_hide_a_refusal_or_the_limit() -> None:
    assert stop_reason("stop", had_tool_calls=True) == "tool_use"
    assert stop_reason("content_filter", had_tool_calls=True) == "refusal"
    assert stop_reason("ERROR_LIMIT", had_tool_calls=True, cohere=True) == "max_tokens"


@pytest.mark.parametrize(("finish", "cohere"), [
    ("error", False), ("ERROR", False), ("cancelled", False), ("ERROR", True),
    ("USER_CANCEL", True)])
def test_failed_finishes_are_errors(finish: str, cohere: bool) -> None:
    err = finish_error(finish, cohere=cohere)
    assert err is not None and err.status == 500 and err.error_type == "api_error"
    assert err.upstream_kind == "server_error"
