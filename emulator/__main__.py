"""Run the emulator as a standalone process (the docker compose demo upstream, bench, soak).

Usage (``oci-emulator`` is the installed console script; ``python -m emulator`` is the same)::

    oci-emulator --host 127.0.0.1 --port 9999 --no-verify
    oci-emulator --port 9999 --public-key /keys/public.pem [--key-id ID]
    python -m emulator --port 0 --default-delay-between 0.02
    oci-emulator --no-verify --replay tests/cassettes/run-1   # recorded exchanges only

Prints ``oci-emulator listening on http://HOST:PORT`` once bound (``--port 0`` picks a free
port), then one line per request unless ``--quiet``. Script it over HTTP (``/_fake/*``) or
with inline ``[[scenario:{json}]]`` markers; see emulator/README.md. ``--replay DIR`` answers
from the cassette files in DIR instead (format: emulator/cassettes.py, emulator/README.md).
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
from pathlib import Path

from .cassettes import CassetteError, CassetteLibrary
from .server import FakeOCI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="oci-emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--public-key", type=Path,
                      help="PEM public key; accepted for any keyId unless --key-id is given")
    auth.add_argument("--no-verify", action="store_true", help="accept unsigned requests")
    parser.add_argument("--key-id", help="only accept --public-key for this keyId")
    parser.add_argument("--default-delay-between", type=float, default=0.0,
                        help="seconds between stream events when a scenario sets none")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--replay", type=Path, metavar="DIR",
                        help="answer from the recorded exchanges (cassettes) in DIR")
    args = parser.parse_args(argv)
    if not args.no_verify and args.public_key is None:
        parser.error("give --public-key PATH or --no-verify")
    args.cassettes = None
    if args.replay is not None:
        try:
            args.cassettes = CassetteLibrary.load(args.replay)
        except CassetteError as exc:
            parser.error(f"--replay: {exc}")
    return args


def _raise_fd_limit() -> None:
    # Thousands of concurrent benchmark streams need more than the usual 1024 descriptors.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def build(args: argparse.Namespace) -> FakeOCI:
    pem = args.public_key.read_text() if args.public_key else None
    keyed = {args.key_id: pem} if pem and args.key_id else None
    return FakeOCI(
        public_keys=keyed,
        accept_any_key_pem=pem if pem and not args.key_id else None,
        verify_signatures=not args.no_verify,
        host=args.host,
        port=args.port,
        default_delay_between=args.default_delay_between,
        log_requests=not args.quiet,
        replay=args.cassettes,
    )


async def _serve(fake: FakeOCI) -> None:
    await fake.start_async()
    print(f"oci-emulator listening on {fake.url}", flush=True)
    if fake.replay is not None:
        print(f"replaying {len(fake.replay)} cassette(s)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop_async()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    _raise_fd_limit()
    asyncio.run(_serve(build(args)))


if __name__ == "__main__":
    main()
