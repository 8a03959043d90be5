"""``python -m app keys create|list|revoke|rotate``: manage the client keys file.

Contract:
- The file is ``--file`` or the config's ``client_auth.api_keys_file`` (config: ``--config`` or
  ``GATEWAY_CONFIG``). It is written atomically (a new file renamed over the old one, mode
  0600) and holds only SHA-256 digests: plaintext ``key:`` entries found in it are turned into
  digests on the way. Every write is validated with the gateway's own parser first, so the
  file it leaves is one the gateway loads; the running gateway picks it up on its next reload
  check (``GATEWAY_RELOAD_INTERVAL``), no restart.
- ``create ID`` and ``rotate ID`` print what they did, then the new key once, alone on the last
  line of their output (``| tail -n1`` gets it); it is never stored. Keys start with ``ocigw-``
  and never look like a JWT, so they cannot be mistaken for company sign-in tokens.
- ``--secret NAME`` (with ``--namespace``, ``--secret-key``) writes no file: the Kubernetes
  Secret manifest holding the resulting keys file goes to stdout (``| kubectl apply -f -``) and
  the messages and the new key to stderr, the key again alone on the last line.
- ``list`` prints id, owner, team, expiry (EXPIRED when past), models, limits and budget; never
  a digest. Exit status: 0 done, 1 refused (message on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from app.config import ConfigError, load_config
from app.security.keys import KeysFileError, parse_entry, parse_expires, parse_keys
from app.settings import Settings

PREFIX = "ocigw-"


class Refused(Exception):
    pass


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 256 random bits; base64url, no dots


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _keys_path(args: argparse.Namespace) -> tuple[Path, Any]:
    """The keys file and the config's teams (None when no config was read)."""
    if args.file:
        teams = None
        if args.config:
            teams = _config(args.config).teams
        return Path(args.file), teams
    config = _config(args.config or Settings().config)
    if not config.client_auth.api_keys_file:
        raise Refused(
            "the config has no client_auth.api_keys_file: name the file with --file, or set "
            "client_auth.api_keys_file in the config"
        )
    return Path(config.client_auth.api_keys_file), config.teams


def _config(path: str) -> Any:
    try:
        return load_config(path)
    except ConfigError as err:
        raise Refused(f"config error: {err}") from None


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        parse_keys(data, str(path))  # refuse to edit a file the gateway would refuse
    except (OSError, yaml.YAMLError) as err:
        raise Refused(f"{path}: cannot read the keys file ({err})") from None
    except KeysFileError as err:
        raise Refused(str(err)) from None
    return [dict(e) for e in data["keys"]]


def _digests_only(entries: list[dict[str, Any]]) -> int:
    converted = 0
    for e in entries:
        if "key" in e:
            e["sha256"] = hashlib.sha256(str(e.pop("key")).encode()).hexdigest()
            converted += 1
        if isinstance(e.get("expires"), datetime):  # YAML turned an unquoted time into one
            e["expires"] = _rfc3339(e["expires"])
    return converted


def _render(entries: list[dict[str, Any]]) -> str:
    head = "# Client API keys of the oci-anthropic-gateway (python -m app keys); digests only.\n"
    return head + yaml.safe_dump({"keys": entries}, sort_keys=False)


def _secret(args: argparse.Namespace, text: str) -> str:
    meta: dict[str, Any] = {
        "name": args.secret,
        "annotations": {"oci-gateway/reload": "automatic"},
    }
    if args.namespace:
        meta["namespace"] = args.namespace
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "stringData": {args.secret_key: text},
    }
    return yaml.safe_dump(manifest, sort_keys=False)


def _save(args: argparse.Namespace, path: Path, entries: list[dict[str, Any]], out: TextIO) -> None:
    converted = _digests_only(entries)
    try:
        parse_keys({"keys": entries}, str(path))
    except KeysFileError as err:
        raise Refused(str(err)) from None
    text = _render(entries)
    if converted:
        print(f"turned {converted} plaintext key(s) into SHA-256 digests", file=out)
    if args.secret:
        sys.stdout.write(_secret(args, text))
        print(f"Secret {args.secret!r} written to stdout (no file was changed)", file=out)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)  # atomic: the gateway never reads half a file
    print(f"{path}: {len(entries)} key(s)", file=out)


def _find(entries: list[dict[str, Any]], kid: str) -> dict[str, Any]:
    for e in entries:
        if e.get("id") == kid:
            return e
    raise Refused(f"no key with id {kid!r}")


def _entry_options(args: argparse.Namespace, teams: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if args.owner:
        entry["owner"] = args.owner
    if args.team:
        if teams is not None and args.team not in teams:
            raise Refused(
                f"team {args.team!r} is not defined in the config (teams: "
                f"{', '.join(teams) or 'none'}); its requests would get 403"
            )
        entry["team"] = args.team
    if args.expires and args.days:
        raise Refused("give --expires or --days, not both")
    if args.expires:
        try:
            entry["expires"] = _rfc3339(parse_expires(args.expires, "--expires"))
        except KeysFileError as err:
            raise Refused(str(err)) from None
    elif args.days:
        entry["expires"] = _rfc3339(datetime.now(UTC) + timedelta(days=args.days))
    if args.models:
        entry["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for flag, name in (
        ("rpm", "requests_per_minute"),
        ("tpm", "tokens_per_minute"),
        ("streams", "max_concurrent_streams"),
    ):
        if getattr(args, flag) is not None:
            entry[name] = getattr(args, flag)
    budget = {
        name: getattr(args, flag)
        for flag, name in (
            ("usd_per_day", "usd_per_day"),
            ("usd_per_week", "usd_per_week"),
            ("usd_per_month", "usd_per_month"),
        )
        if getattr(args, flag) is not None
    }
    if budget:
        entry["budget"] = budget
    return entry


def create(args: argparse.Namespace, out: TextIO) -> None:
    path, teams = _keys_path(args)
    entries = _read(path)
    if any(e.get("id") == args.id for e in entries):
        raise Refused(f"a key with id {args.id!r} exists already (rotate it, or revoke it first)")
    key = new_key()
    entry = {"id": args.id, "sha256": hashlib.sha256(key.encode()).hexdigest()}
    entry.update(_entry_options(args, teams))
    try:
        parse_entry(entry, f"key {args.id!r}")
    except KeysFileError as err:
        raise Refused(str(err)) from None
    _save(args, path, [*entries, entry], out)
    print(f"created key {args.id!r}; it is shown once, below, and never stored:", file=out)
    print(key, file=out)


def rotate(args: argparse.Namespace, out: TextIO) -> None:
    path, _ = _keys_path(args)
    entries = _read(path)
    entry = _find(entries, args.id)
    key = new_key()
    entry.pop("key", None)
    entry["sha256"] = hashlib.sha256(key.encode()).hexdigest()
    _save(args, path, entries, out)
    print(
        f"rotated key {args.id!r}: the old key stops working at the gateway's next reload; "
        "the new one is shown once, below:",
        file=out,
    )
    print(key, file=out)


def revoke(args: argparse.Namespace, out: TextIO) -> None:
    path, _ = _keys_path(args)
    entries = _read(path)
    entry = _find(entries, args.id)
    entries.remove(entry)
    _save(args, path, entries, out)
    print(f"revoked key {args.id!r}: it stops working at the gateway's next reload", file=out)


def list_keys(args: argparse.Namespace, out: TextIO) -> None:
    path, _ = _keys_path(args)
    entries = _read(path)
    now = datetime.now(UTC)
    rows = [("ID", "OWNER", "TEAM", "EXPIRES", "MODELS", "LIMITS", "BUDGET")]
    for e in entries:
        key = parse_entry(e, str(path))
        expires = "-"
        if key.expires is not None:
            expires = _rfc3339(key.expires) + (" EXPIRED" if key.expired(now) else "")
        limits = key.limits.model_dump(exclude_none=True)
        budget = key.budget.model_dump(exclude_none=True) if key.budget else {}
        rows.append(
            (
                key.id,
                key.owner or "-",
                key.team or "-",
                expires,
                ",".join(key.models) if key.models is not None else "*",
                " ".join(f"{k}={v}" for k, v in limits.items()) or "-",
                " ".join(f"{k}={v:g}" for k, v in budget.items()) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app keys", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", help="the keys file (default: client_auth.api_keys_file)")
    common.add_argument("--config", help="the gateway config (default: $GATEWAY_CONFIG)")
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument("--secret", metavar="NAME", help="print a Kubernetes Secret instead")
    writes.add_argument("--namespace", help="the Secret's namespace")
    writes.add_argument("--secret-key", default="keys.yaml", help="file name in the Secret")
    c = sub.add_parser("create", parents=[common, writes], help="add a key")
    c.add_argument("id", help="key id: 1-64 of [A-Za-z0-9_.@-]; logs and metrics show it")
    c.add_argument("--owner", help="who holds the key (e.g. an email)")
    c.add_argument("--team", help="a teams.<name> of the config")
    c.add_argument("--expires", help="RFC 3339 time, e.g. 2026-06-30T00:00:00Z")
    c.add_argument("--days", type=int, help="expires this many days from now")
    c.add_argument("--models", help="comma-separated model names or globs")
    c.add_argument("--rpm", type=int, help="requests per minute")
    c.add_argument("--tpm", type=int, help="tokens per minute")
    c.add_argument("--streams", type=int, help="concurrent streams")
    c.add_argument("--usd-per-day", type=float, help='budget (README "Spend and budgets")')
    c.add_argument("--usd-per-week", type=float)
    c.add_argument("--usd-per-month", type=float)
    for name, helptext in (("rotate", "give a key a new secret"), ("revoke", "remove a key")):
        sub.add_parser(name, parents=[common, writes], help=helptext).add_argument("id")
    sub.add_parser("list", parents=[common], help="show the keys (never their digests)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    run = {"create": create, "rotate": rotate, "revoke": revoke, "list": list_keys}
    # with --secret the manifest owns stdout; everything else goes to stderr
    out = sys.stderr if getattr(args, "secret", None) else sys.stdout
    try:
        run[args.command](args, out)
    except Refused as err:
        print(f"keys: {err}", file=sys.stderr)
        return 1
    return 0
