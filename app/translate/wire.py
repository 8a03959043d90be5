"""The OCI request body's bytes. Pure.

Contract: :func:`encode` serialises a translated body (the dicts the translators build) to
JSON bytes. Text values are ``str`` or :class:`~app.anthropic.models.JsonText` (a client's JSON
string passed through undecoded); msgspec's encoder writes its bytes as they are through a
``Raw``, one hook call per text. Same JSON as
``orjson.dumps`` for everything else: compact, UTF-8, keys in insertion order.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.anthropic.models import JsonText


def _encoded(value: Any) -> Any:
    if type(value) is JsonText:
        data = value.data
        return data if type(data) is msgspec.Raw else msgspec.Raw(data)
    raise TypeError(f"cannot encode {type(value).__name__} in an OCI body")


_ENCODER = msgspec.json.Encoder(enc_hook=_encoded)


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body)
