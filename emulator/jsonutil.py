"""Compact JSON in and out: orjson when installed (fast), else the standard library.

Contract: ``dumps(obj) -> bytes`` (compact, no spaces, UTF-8), ``loads(bytes|str)`` and
``compact(obj) -> str`` — the exact serialization the token counter uses for tool
definitions (``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``), kept on the
standard library so the rule is easy to reproduce in other tests.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a project dependency
    orjson = None  # type: ignore[assignment]


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(data: bytes | str) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
