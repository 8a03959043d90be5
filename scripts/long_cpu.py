"""In-process CPU of the gateway's request path on the bench's long turns, vs the floor.

Contract: ``python scripts/long_cpu.py [--profile SIZE]`` builds ``bench.long.grow`` bodies of
16 KB, 1 MB and 4 MB and times (``time.process_time``, median of N) the functions a worker runs per
request before the network: parse (loads + validation + limits) -> translate (``to_oci``) ->
token estimate -> serialise (``wire.encode``) -> SHA-256, against the floor
(``bench.long.floor_s``): ``whole`` for a body decoded whole (no conversation cache, or a
conversation the worker has not kept), ``kept`` for a session's turns through the cache.
``--profile 1M`` prints a cProfile of the same path. No server.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.anthropic.conversation_cache import ConversationCache
from app.anthropic.models import MessagesRequest
from app.catalog import Catalog
from app.config import parse_config
from app.service.parse import parse
from app.translate import wire
from app.translate.to_oci import to_oci
from app.translate.tokens import raw_estimate
from bench.long import floor_s, grow, session
from devtools.config import TEST_MODELS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", choices=("16K", "1M", "4M"))
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    config = parse_config(
        {
            "oci": {
                "region": "us-chicago-1",
                "compartment_id": "ocid1.compartment.oc1..x",
                "auth": "api_key",
            },
            "models": TEST_MODELS,
        }
    )
    catalog = Catalog(config)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50000, 20, 40)  # as app/gc_tuning.py does in the workers

    def path(raw: bytes, cache: ConversationCache | None = None) -> dict[str, float]:
        t = {}
        tl = time.process_time()
        orjson.loads(raw)
        t0 = time.process_time()
        t["loads"] = t0 - tl
        req = parse(raw, MessagesRequest, config.server, cache)
        t1 = time.process_time()
        resolved = catalog.resolve(req.model)
        oci = to_oci(req, resolved, "ocid1.compartment.oc1..x")
        t2 = time.process_time()
        raw_estimate(oci.body)
        t3 = time.process_time()
        out = wire.encode(oci.body)
        hashlib.sha256(out).digest()
        t4 = time.process_time()
        del req, oci, out
        t5 = time.process_time()
        t.update(
            parse=t1 - t0,
            translate=t2 - t1,
            estimate=t3 - t2,
            dumps_sha=t4 - t3,
            free=t5 - t4,
            total=t5 - t0,
        )
        return t

    for label, size in (("16K", 16 * 1024), ("1M", 1024 * 1024), ("4M", 4 * 1024 * 1024)):
        body = grow(size)
        body["model"] = "gemini"  # TEST_MODELS name of google.gemini-2.5-flash
        raw = orjson.dumps(body)
        if args.profile == label:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(5):
                path(raw)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        runs = [path(raw) for _ in range(args.rounds)]
        # a session's turns through the conversation cache (the first two record it)
        cache = ConversationCache(256 << 20)
        model = (b'"gemini-2.5-flash"', b'"gemini"')
        turns = [t.replace(*model, 1) for t in session(size, 2 + args.rounds)]
        for t in turns[:2]:
            path(t, cache)
        kept = [path(t, cache) for t in turns[2:]]
        floor = floor_s(raw, args.rounds) * 1e3
        for what, rs in (("whole", runs), ("kept", kept)):
            med = {k: min(r[k] for r in rs) * 1e3 for k in rs[0]}  # best of N: a busy machine
            parts = "  ".join(f"{k} {v:.2f}" for k, v in med.items())
            print(
                f"{label} ({len(raw) / 1e6:.2f} MB) {what}: {parts} ms | floor {floor:.2f} ms | "
                f"path/floor {med['total'] / floor:.2f}x"
            )


if __name__ == "__main__":
    main()
