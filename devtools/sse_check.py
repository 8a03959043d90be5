"""The Anthropic SSE stream checker, re-exported: it lives in :mod:`app.conformance.stream_check`
because ``python -m app conformance`` ships in the image and checks live streams with it."""

from app.conformance.stream_check import check_stream, parse_sse

__all__ = ["check_stream", "parse_sse"]
