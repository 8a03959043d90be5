"""``python -m app usage``: a spend table from the usage data the budgets keep.

Contract: ``python -m app usage [--config PATH] [--by key|user|team|model|class|tag]
[--since DAY] [--until DAY] [--json]`` sums the per-day usage data (USD, requests, input and
output tokens) of one dimension over UTC days ``since``..``until`` (``YYYY-MM-DD``, or ``Nd``
for the last N days; default: this month so far) and prints one row per value, most expensive
first, then the total. It reads Redis (``limits.redis_url`` of the config): the store every
replica writes. Without Redis each gateway process keeps its own usage data in memory, which
no other process can read: the command then says so and exits 2 (``GET /v1/usage`` on the
gateway still shows a caller's windows as that process counted them).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson

from app.config import ConfigError, load_config
from app.settings import Settings

DIMENSIONS = ("key", "user", "team", "model", "class", "tag")


def parse_day(value: str, now: float) -> str:
    today = datetime.fromtimestamp(now, UTC)
    relative = re.fullmatch(r"(\d{1,3})d", value)
    if relative:
        return (today - timedelta(days=int(relative.group(1)) - 1)).strftime("%Y-%m-%d")
    try:
        return datetime.strptime(value, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: use a UTC day (2026-05-01) or a number of days (7d)"
        ) from None


def table(rows: dict[str, list[float]], by: str) -> str:
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0]))
    width = max([len(by), 5, *(len(name) for name, _ in ordered)])
    lines = [f"{by.upper():<{width}}  {'REQUESTS':>9}  {'INPUT':>12}  {'OUTPUT':>12}  {'USD':>12}"]
    total = [0.0, 0.0, 0.0, 0.0]
    for name, (usd, req, tin, tout) in ordered:
        lines.append(f"{name:<{width}}  {req:>9.0f}  {tin:>12.0f}  {tout:>12.0f}  {usd:>12.4f}")
        total = [a + b for a, b in zip(total, (usd, req, tin, tout), strict=True)]
    usd, req, tin, tout = total
    lines.append(f"{'TOTAL':<{width}}  {req:>9.0f}  {tin:>12.0f}  {tout:>12.0f}  {usd:>12.4f}")
    return "\n".join(lines)


async def _report(
    url: str, history: int, by: str, since: str, until: str
) -> dict[str, list[float]]:
    from app.security.redis_budgets import RedisStore

    store = RedisStore(url, history)
    try:
        return await store.report(by, since, until)
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    now = time.time()
    parser = argparse.ArgumentParser(prog="python -m app usage", description=__doc__)
    parser.add_argument("--config", default=None, help="gateway config (default GATEWAY_CONFIG)")
    parser.add_argument("--by", choices=DIMENSIONS, default="key")
    parser.add_argument("--since", type=lambda v: parse_day(v, now), default=None)
    parser.add_argument("--until", type=lambda v: parse_day(v, now), default=None)
    parser.add_argument("--json", action="store_true", help="rows as JSON instead of a table")
    args = parser.parse_args(argv)
    today = datetime.fromtimestamp(now, UTC)
    since = args.since or today.replace(day=1).strftime("%Y-%m-%d")
    until = args.until or today.strftime("%Y-%m-%d")
    try:
        config = load_config(args.config or Settings().config)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    if not config.limits.redis_url:
        print(
            "no limits.redis_url in the config: without Redis each gateway process keeps its "
            "spend in its own memory, which this command cannot read. Configure Redis to share "
            'budgets and usage data across processes (README "Spend and budgets"); a caller\'s '
            "own windows are at GET /v1/usage.",
            file=sys.stderr,
        )
        return 2
    try:
        rows = asyncio.run(
            _report(config.limits.redis_url, config.budgets.history_days, args.by, since, until)
        )
    except Exception as err:  # the store's own errors: say which, never a traceback
        print(
            f"cannot read the usage data from Redis: {type(err).__name__}: {err}", file=sys.stderr
        )
        return 1
    if args.json:
        out = [
            {
                "name": k,
                "usd": v[0],
                "requests": int(v[1]),
                "input_tokens": int(v[2]),
                "output_tokens": int(v[3]),
            }
            for k, v in sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]
        print(orjson.dumps({"by": args.by, "since": since, "until": until, "rows": out}).decode())
        return 0
    print(f"usage by {args.by}, {since} .. {until} (UTC)")
    print(table(rows, args.by))
    return 0
