"""A tiny OTLP/HTTP trace endpoint that accepts and discards spans (for ``--tracing on``).

Usage: ``python -m bench.sink --port N``. ``POST /v1/traces`` answers 200 with an empty
``ExportTraceServiceResponse`` (an empty protobuf message is zero bytes); ``GET /stats`` returns
``{"posts": n, "bytes": n}`` so the benchmark can check that spans were really exported.
"""

from __future__ import annotations

import argparse

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    stats = {"posts": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        stats["posts"] += 1
        stats["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", get_stats)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
