"""``python -m app claude-env`` as a user runs it (a subprocess), against a test config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.harness import TEST_MODELS, write_config


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run([sys.executable, "-m", "app", "claude-env", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=60, env=env)


def exports(stdout: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in stdout.splitlines()
                if line.startswith("export "))


def test_block_follows_the_aliases_and_takes_the_smallest_window(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", tmp_path / "oci")
    data = yaml.safe_load(config.read_text())  # write_config merges into its claude-*: grok
    data["aliases"] = {"claude-opus-*": "gemini", "claude-sonnet-*": "grok",
                       "claude-haiku-*": "llama"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    out = run(config, "--key", "sk-team-123", "--url", "https://gw.example.com/")
    assert out.returncode == 0, out.stderr
    env = exports(out.stdout)
    assert env == {
        "ANTHROPIC_BASE_URL": "https://gw.example.com",
        "ANTHROPIC_AUTH_TOKEN": "sk-team-123",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "gemini",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "grok",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "llama",
        "CLAUDE_CODE_SUBAGENT_MODEL": "grok",
        # llama's 128000 (the profile table's) is the smallest of gemini, grok and llama
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "128000",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "ENABLE_TOOL_SEARCH": "true",
    }
    assert "unset ANTHROPIC_API_KEY" in out.stdout.splitlines()
    # what a shell makes of it: the block is valid sh
    sh = subprocess.run(["sh", "-c", out.stdout + "env"], capture_output=True, text=True,
                        env={"ANTHROPIC_API_KEY": "sk-ant-real"}, timeout=30)
    assert "ANTHROPIC_AUTH_TOKEN=sk-team-123" in sh.stdout and "sk-ant-real" not in sh.stdout


def test_one_model_for_everything_and_a_placeholder_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", tmp_path / "oci")
    out = run(config, "--model", "gemini")
    assert out.returncode == 0, out.stderr
    env = exports(out.stdout)
    assert env["ANTHROPIC_BASE_URL"] == "http://localhost:8000"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "'<your-gateway-key>'"
    for var in ("OPUS", "SONNET", "HAIKU"):
        assert env[f"ANTHROPIC_DEFAULT_{var}_MODEL"] == "gemini"
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(TEST_MODELS["gemini"]["context_window"])


def test_default_config_aliases_everything_to_grok(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", tmp_path / "oci")  # claude-*: grok
    env = exports(run(config).stdout)
    assert {env[f"ANTHROPIC_DEFAULT_{v}_MODEL"] for v in ("OPUS", "SONNET", "HAIKU")} == {"grok"}
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "131072"


def test_unknown_model_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", tmp_path / "oci")
    out = run(config, "--model", "nope")
    assert out.returncode == 1 and "--model: 'nope' is not a model" in out.stderr
