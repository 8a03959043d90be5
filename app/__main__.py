"""Command line: ``python -m app`` serves; ``check [--probe]`` validates; ``keys`` manages keys.

Contract:
- ``python -m app`` validates the config file first (exit 1 with a message naming the bad key),
  then runs uvicorn (uvloop + httptools) on ``GATEWAY_HOST:GATEWAY_PORT`` with one worker, with
  the same keep-alive and graceful timeout as under gunicorn (all from
  :class:`app.settings.Settings`). For several workers use gunicorn:
  ``gunicorn -c python:app.gunicorn_conf``.
- ``python -m app check`` prints the resolved models, their effective behaviour profiles
  (:mod:`app.catalog.profiles`), aliases, routing rules and OCI auth mode and exits 0 only
  when the config is valid and the signer can be built; ``--probe`` also sends one tiny chat
  request per model (``--model NAME`` for one) to OCI and reports each outcome.
  ``--models`` (and ``--probe``) asks OCI's ListModels what the region offers and warns for a
  configured model that is not offered, deprecated or retired (plain ``check`` stays offline).
- ``python -m app models [--all]`` lists the chat models (``--all``: every model) the
  tenancy's region offers, with capabilities, lifecycle state and deprecation/retirement dates.
- ``python -m app conformance [--config PATH] [--model NAME] [--skip SCENARIO] [--json]
  [--record DIR]`` runs the scenario matrix through the gateway against OCI
  (:mod:`app.conformance`); exit 0 only when every scenario passed.
- ``python -m app import-config config.json [-o FILE]`` converts the original single-file
  gateway's ``config.json`` to this gateway's YAML config (:mod:`app.import_config`).
- ``python -m app usage [--by key|user|team|model|class|tag] [--since DAY]`` prints a spend
  table from the usage data in Redis (:mod:`app.usage_cli`).
- ``python -m app claude-env [--config PATH] [--key KEY] [--model NAME] [--url URL]`` prints
  the environment block for Claude Code (:mod:`app.claude_env`).
- ``python -m app keys create|list|revoke|rotate`` manages the client keys file
  (:mod:`app.keys_cli`). Serving and ``check`` refuse a config that would be open with real
  OCI credentials (:func:`app.config.check_client_auth`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from app.catalog.spec import ModelSpec
from app.config import ConfigError, GatewayConfig, check_client_auth, load_config
from app.settings import Settings, whole_seconds

_CAPS = ("tools", "vision", "reasoning", "documents", "structured_output")


def _price_text(spec: ModelSpec) -> str:
    price = spec.unit_price
    if price is None:
        return "none (costs 0 USD)"
    cached = "" if price.cached_input is None else f", cached {price.cached_input}"
    return f"in {price.input} / out {price.output}{cached} USD per 1M ({spec.price_source})"


def _print_config(config: GatewayConfig, path: str) -> None:
    print(f"config: {path}")
    print(
        f"oci: auth={config.oci.auth} endpoint={config.base_url()} "
        f"compartment={config.oci.compartment_id}"
    )
    print("models:")
    for name, spec in config.models.items():
        target = spec.model_id or spec.endpoint_id
        mode = "dedicated" if spec.endpoint_id else "on-demand"
        print(
            f"  {name}: {target} ({mode}, {spec.format}, context {spec.context_window}, "
            f"max output {spec.output_limit}, {spec.tokens_param}, "
            f"capabilities: {', '.join(c for c in _CAPS if spec.has(c)) or '-'}, "
            f"price: {_price_text(spec)})"
        )
    if config.aliases:
        print("aliases (first match wins):")
        for pattern, target in config.aliases.items():
            print(f"  {pattern} -> {target}")
    print(f"default_model: {config.default_model or '(none: unknown names get 404)'}")
    if config.routing:
        print("routing (first match wins; a rule to a model the caller may not use is skipped):")
        for i, rule in enumerate(config.routing):
            match = rule.match.model_dump(exclude_none=True)
            print(f"  [{i}] {match or 'every request'} -> {rule.model}")
    ca = config.client_auth
    print(f"client keys: {ca.api_keys_file or '(none)'}")
    print(f"company sign-in (oidc): {ca.oidc.issuer if ca.oidc else '(none)'}")
    if ca.allow_anonymous or not ca.enabled:
        print("client authentication: NONE (the gateway is open)")
    if config.teams:
        print(f"teams: {', '.join(config.teams)}")


async def _probe(config: GatewayConfig, only: str | None) -> bool:

    from app.anthropic.models import Message, MessagesRequest
    from app.catalog import Catalog
    from app.oci.auth import build_auth
    from app.oci.client import OciClient
    from app.oci.errors import UpstreamError
    from app.translate import wire
    from app.translate.to_oci import to_oci

    auth = await asyncio.to_thread(build_auth, config.oci)
    print(f"oci auth: {auth.description} (signer built)")
    client = OciClient(auth, config.oci)
    await client.start()
    ok = True
    names = [only] if only else list(config.models)
    catalog = Catalog(config)
    try:
        for name in names:
            resolved = catalog.resolve(name)
            # the same translation as a real request, so the probe tests what clients will send
            req = MessagesRequest(
                model=name, max_tokens=5, messages=[Message(role="user", content="Say OK.")]
            )
            body = wire.encode(to_oci(req, resolved, config.oci.compartment_id).body)
            t0 = time.perf_counter()
            try:
                answer = await client.open(
                    config.base_url(), body, "probe" + str(int(t0 * 1e6)), stream=False
                )
                try:
                    await answer.json(idle=config.oci.timeouts.idle)
                finally:
                    answer.close()
                print(f"probe {name}: OK in {(time.perf_counter() - t0) * 1000:.0f} ms")
                if answer.retirement_info:
                    print(f"warning: {name}: OCI model-retirement-info: {answer.retirement_info}")
            except UpstreamError as err:
                ok = False
                print(
                    f"probe {name}: FAILED ({err.upstream_kind}, HTTP "
                    f"{err.upstream_status}): {err.message} "
                    f"[opc-request-id {err.opc_request_id}]"
                )
    finally:
        await client.close()
    return ok


async def _oci_models(config: GatewayConfig, capability: str | None) -> list[Any]:
    from app.oci.auth import build_auth
    from app.oci.client import OciClient
    from app.oci.models_api import list_models

    auth = await asyncio.to_thread(build_auth, config.oci)
    client = OciClient(auth, config.oci)
    await client.start()
    try:
        return await list_models(client, config, capability)
    finally:
        await client.close()


def _lifecycle_check(config: GatewayConfig, *, strict: bool) -> bool:
    """``check --models``/``--probe``: warn for configured models ListModels does not show as
    current. False only when ``strict`` and ListModels itself failed."""
    from app.oci.errors import UpstreamError
    from app.oci.models_api import lifecycle_warnings, management_url

    try:
        offered = asyncio.run(_oci_models(config, "CHAT"))
    except UpstreamError as err:
        print(
            f"{'error' if strict else 'warning'}: ListModels at {management_url(config)} "
            f"failed (HTTP {err.upstream_status}): {err.message}"
        )
        return not strict
    warnings = lifecycle_warnings(config, offered)
    for line in warnings:
        print(f"warning: {line}")
    print(f"ListModels: {len(offered)} chat models offered, {len(warnings)} warning(s)")
    return True


def models(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app models")
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG)")
    parser.add_argument("--all", action="store_true", help="every model, not only CHAT ones")
    args = parser.parse_args(argv)
    settings = Settings()
    path = args.config or settings.config
    from app.oci.errors import UpstreamError
    from app.oci.models_api import management_url, table

    try:
        config = load_config(path, settings.oci_endpoint)
        offered = asyncio.run(_oci_models(config, None if args.all else "CHAT"))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    except UpstreamError as err:
        print(
            f"ListModels at {management_url(config)} failed (HTTP {err.upstream_status}): "
            f"{err.message} [opc-request-id {err.opc_request_id}]",
            file=sys.stderr,
        )
        return 1
    print(table(offered))
    return 0


def check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app check")
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG)")
    parser.add_argument("--probe", action="store_true", help="send one tiny request to OCI")
    parser.add_argument("--model", help="probe only this model")
    parser.add_argument("--models", action="store_true", help="check models with ListModels")
    args = parser.parse_args(argv)
    settings = Settings()
    path = args.config or settings.config
    try:
        config = load_config(path, settings.oci_endpoint)
        _print_config(config, path)
        from app.catalog.profiles import table_rule

        # the effective per-model profile: the table's rule, then the entry's own keys
        print("profiles (table rule -> effective profile):")
        for name, spec in config.models.items():
            rule = table_rule(spec.base_model or spec.model_id) or "no rule: defaults"
            print(f"  {name} (rule {rule}):\n    {spec.profile.describe()}")
        check_client_auth(config)
        if args.model and args.model not in config.models:
            raise ConfigError(f"--model: {args.model!r} is not a model of the config")
        if (args.models or args.probe) and not _lifecycle_check(config, strict=args.models):
            return 1
        if args.probe:
            return 0 if asyncio.run(_probe(config, args.model)) else 1
        from app.oci.auth import build_auth

        auth = build_auth(config.oci)
        print(f"oci auth: {auth.description} (signer built)")
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    return 0


def keys(argv: list[str]) -> int:
    """``python -m app keys create|list|revoke|rotate`` (:mod:`app.keys_cli`)."""
    from app.keys_cli import main as keys_main

    return keys_main(argv)


def usage(argv: list[str]) -> int:
    """``python -m app usage`` (:mod:`app.usage_cli`)."""
    from app.usage_cli import main as usage_main

    return usage_main(argv)


def claude_env(argv: list[str]) -> int:
    """``python -m app claude-env`` (:mod:`app.claude_env`)."""
    from app.claude_env import main as claude_env_main

    return claude_env_main(argv)


def serve() -> int:
    settings = Settings()
    try:
        check_client_auth(load_config(settings.config, settings.oci_endpoint))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    import uvicorn

    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_keep_alive=whole_seconds(settings.keepalive),
        timeout_graceful_shutdown=whole_seconds(settings.graceful_timeout),
    )
    return 0


def _tool(name: str, argv: list[str]) -> int:
    """``conformance`` (:mod:`app.conformance.runner`) and ``import-config``
    (:mod:`app.import_config`), imported only when asked for."""
    if name == "conformance":
        from app.conformance.runner import main as conformance

        return conformance(argv)
    from app.import_config import main as import_config

    return import_config(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "check":
        return check(argv[1:])
    if argv and argv[0] == "models":
        return models(argv[1:])
    if argv and argv[0] in ("conformance", "import-config"):
        return _tool(argv[0], argv[1:])
    if argv and argv[0] == "keys":
        return keys(argv[1:])
    if argv and argv[0] == "usage":
        return usage(argv[1:])
    if argv and argv[0] == "claude-env":
        return claude_env(argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        print(
            f"unknown command {argv[0]!r}; use 'check', 'models', 'keys', 'usage', 'claude-env', "
            "'conformance', 'import-config' or no argument",
            file=sys.stderr,
        )
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main())
