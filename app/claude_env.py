"""``python -m app claude-env``: the environment block a user pastes to run Claude Code here.

Contract: :func:`env_block` turns a config (plus the gateway URL, the user's key and optionally
one model) into shell lines, each variable with a comment saying why; :func:`main` is the CLI
(exit 1 with a message on a bad config or an unknown ``--model``). Pure apart from reading the
config file: nothing is sent anywhere.

The variables, checked against Claude Code 2.1.197 (the binary the e2e tests install, and
code.claude.com/docs/en/llm-gateway + /en/model-config; the README's "Claude Code settings"
cites them):

- ``ANTHROPIC_BASE_URL``; ``ANTHROPIC_AUTH_TOKEN`` (sent as ``Authorization: Bearer``, which
  the gateway accepts; it takes precedence over a claude.ai login and needs no interactive
  "use this API key?" approval, unlike ``ANTHROPIC_API_KEY``, which is unset so that a real
  Anthropic key never reaches the gateway — the gateway reads ``x-api-key`` first).
- ``ANTHROPIC_DEFAULT_OPUS_MODEL`` / ``_SONNET_MODEL`` / ``_HAIKU_MODEL`` and
  ``CLAUDE_CODE_SUBAGENT_MODEL``: the gateway models that the config routes Claude Code's tier
  names to (``claude-opus-4-8``, ``claude-sonnet-4-6``, ``claude-haiku-4-5`` through the
  aliases), or ``--model`` for all four. They are the *gateway names*, not ``claude-*`` ids:
- ``CLAUDE_CODE_MAX_CONTEXT_TOKENS``: the context window Claude Code assumes for a model it
  does not know (it compacts against it); without it, 200K. Claude Code applies it only to
  model ids that do not start with ``claude-`` (2.1.197: ``getContextWindowForModel``), hence
  the gateway names above. One value serves every model, so it is the *smallest* window of the
  models the variables reach: auto-compact then fires before any of them overflows.
- ``ENABLE_TOOL_SEARCH=true``: Claude Code turns MCP tool search off for a non-Anthropic
  ``ANTHROPIC_BASE_URL`` unless it is set (code.claude.com/docs/en/env-vars); the gateway
  handles what it then sends (tests/e2e/test_claude_code_toolsearch.py, README "Tool search").
"""

from __future__ import annotations

import argparse
import shlex
import sys

from app.catalog import Catalog
from app.config import ConfigError, GatewayConfig, load_config
from app.errors import NotFound
from app.settings import Settings

#: what Claude Code 2.1.197 sends for its tiers by default (fixtures cc-01, cc-05, cc-17)
TIER_NAMES = {
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-4-8",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-6",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
}
KEY_PLACEHOLDER = "<your-gateway-key>"


def tier_models(config: GatewayConfig, model: str | None) -> dict[str, str]:
    """Variable -> gateway model for the three tiers and the subagents."""
    catalog = Catalog(config)
    fallback = config.default_model or next(iter(config.models))
    out: dict[str, str] = {}
    for var, name in TIER_NAMES.items():
        if model is not None:
            out[var] = model
            continue
        try:
            out[var] = catalog.resolve(name).name
        except NotFound:
            out[var] = fallback
    out["CLAUDE_CODE_SUBAGENT_MODEL"] = out["ANTHROPIC_DEFAULT_SONNET_MODEL"]
    return out


def env_block(config: GatewayConfig, *, url: str, key: str | None, model: str | None) -> str:
    if model is not None and model not in config.models:
        raise ConfigError(
            f"--model: {model!r} is not a model of the config (defined: {', '.join(config.models)})"
        )
    tiers = tier_models(config, model)
    reached = sorted(set(tiers.values()))
    window = min(config.models[n].context_window for n in reached)
    smallest = min(reached, key=lambda n: config.models[n].context_window)
    lines = [
        "# Claude Code through oci-anthropic-gateway (python -m app claude-env)",
        f"export ANTHROPIC_BASE_URL={shlex.quote(url)}",
        "# sent as Authorization: Bearer; needs no 'use this API key?' approval",
        f"export ANTHROPIC_AUTH_TOKEN={shlex.quote(key or KEY_PLACEHOLDER)}",
        "# a real Anthropic key must not go to the gateway (x-api-key would win)",
        "unset ANTHROPIC_API_KEY",
        "# gateway model names (not claude-*: the window below applies only to those)",
    ]
    lines += [f"export {var}={shlex.quote(name)}" for var, name in tiers.items()]
    lines += [
        f"# the smallest context window of {', '.join(reached)} ({smallest}): Claude Code",
        "# compacts against it instead of assuming 200K for a model it does not know",
        f"export CLAUDE_CODE_MAX_CONTEXT_TOKENS={window}",
        "# lists the gateway's claude-* model ids in /model",
        "export CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1",
        "# MCP tool search (off by default behind a gateway): the gateway handles deferred",
        "# tools and tool_reference blocks, so tool schemas stay out of every request",
        "export ENABLE_TOOL_SEARCH=true",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app claude-env")
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG)")
    parser.add_argument("--key", help="the user's gateway key (default: a placeholder)")
    parser.add_argument("--model", help="one gateway model for every tier and the subagents")
    parser.add_argument("--url", help="the gateway URL users reach (default: from the settings)")
    args = parser.parse_args(argv)
    settings = Settings()
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = args.url or f"http://{host}:{settings.port}"
    try:
        config = load_config(args.config or settings.config, settings.oci_endpoint)
        sys.stdout.write(env_block(config, url=url.rstrip("/"), key=args.key, model=args.model))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    return 0
