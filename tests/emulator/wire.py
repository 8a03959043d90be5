"""Signing and HTTP helpers and shared data of the emulator tests.

Contract: requests are signed with the real ``oci.signer.Signer`` (over a duck-typed request
object, as the gateway does it) and sent with aiohttp, so these tests also pin down the wire
contract the gateway's own tests rely on. ``Result`` holds status, lower-cased headers and the
raw body; ``parse_sse`` splits an OCI stream into its ``data:`` events; ``details``,
``cohere_details`` and ``v2_details`` (COHEREV2) build minimal valid ChatDetails bodies;
``text_of`` joins GENERIC stream text as a correct client does.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import oci

from emulator import Scenario, TestKey, tool_call

LLAMA = "meta.llama-3.3-70b-instruct"
NOT_AUTHENTICATED = {
    "code": "NotAuthenticated",
    "message": "The required information to complete authentication was not provided or was "
    "incorrect.",
}
REQUEST_ID_RE = re.compile(r"^[^/]+/[0-9A-F]{32}/[0-9A-F]{32}$")



class SignTarget:
    """What an oci signer reads and mutates (a duck-typed requests.PreparedRequest)."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.url, self.body = method, url, body
        self.headers = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(url)
        self.path_url = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def make_signer(key: TestKey) -> oci.signer.Signer:
    return oci.signer.Signer(key.tenancy, key.user, key.fingerprint,
                             private_key_file_location=str(key.private_key_path))


def signed_headers(signer: Any, url: str, body: bytes,
                   extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "content-length": str(len(body)),
               **(extra or {})}
    target = SignTarget("POST", url, headers, body)
    signer(target)
    return target.headers


def signed_get_headers(signer: Any, url: str) -> dict[str, str]:
    """What the SDK signs for a GET: date, (request-target) with the query, host."""
    target = SignTarget("GET", url, {"accept": "application/json"}, b"")
    signer(target)
    return target.headers


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def events(self) -> list[Any]:
        return parse_sse(self.raw)


def parse_sse(raw: bytes) -> list[Any]:
    """Each ``data:`` line is one event (JSON, or the string ``[DONE]``)."""
    events: list[Any] = []
    for line in raw.decode("utf-8").split("\n"):
        if not line.startswith("data:"):
            assert line == "", f"unexpected SSE line {line!r}"
            continue
        data = line[len("data:"):].strip()
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def _send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Result:
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=body, headers=headers
    ) as resp:
        raw = await resp.read()
        return Result(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw)


def send(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Result:
    return asyncio.run(_send(method, url, body, headers or {}))


def details(model: str = LLAMA, messages: list[dict] | None = None, *, stream: bool = False,
            include_usage: bool = False, text: str = "hello there", **fields: Any) -> dict:
    chat: dict[str, Any] = {
        "apiFormat": "GENERIC",
        "messages": messages or [{"role": "USER", "content": [{"type": "TEXT", "text": text}]}],
        "isStream": stream,
    }
    if include_usage:
        chat["streamOptions"] = {"isIncludeUsage": True}
    chat.update(fields)
    return {"compartmentId": "ocid1.compartment.oc1..test",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": model},
            "chatRequest": chat}


def cohere_details(message: str = "hello", *, stream: bool = False, model: str =
                   "cohere.command-a-03-2025", **fields: Any) -> dict:
    chat = {"apiFormat": "COHERE", "message": message, "isStream": stream, **fields}
    return {"compartmentId": "ocid1.compartment.oc1..test",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": model},
            "chatRequest": chat}


VISION_V2 = "cohere.command-a-vision-07-2025"
REASONING_V2 = "cohere.command-a-reasoning-08-2025"


def v2_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "TEXT", "text": text}]


def v2_details(model: str = VISION_V2, messages: list[dict] | None = None, *,
               stream: bool = False, text: str = "hello there", **fields: Any) -> dict:
    chat: dict[str, Any] = {
        "apiFormat": "COHEREV2",
        "messages": messages or [{"role": "USER", "content": v2_text(text)}],
        "isStream": stream, **fields}
    return {"compartmentId": "ocid1.compartment.oc1..test",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": model},
            "chatRequest": chat}


def text_of(events: list[Any]) -> str:
    """Concatenate GENERIC text the way a correct client does (finish event included)."""
    out = []
    for event in events:
        if isinstance(event, dict):
            for part in event.get("message", {}).get("content", []) or []:
                out.append(part.get("text", ""))
    return "".join(out)


def assert_padded(events: list[Any]) -> None:
    for event in events:
        if isinstance(event, dict):
            assert re.fullmatch("a+", event["pad"]), event


# --- shared test data ---------------------------------------------------------------------

WEATHER_TOOL = {"type": "FUNCTION", "name": "get_weather", "description": "w",
                "parameters": {"type": "object",
                               "properties": {"city": {"type": "string"}}}}


def tool_with(schema_props: dict) -> dict:
    """WEATHER_TOOL with other parameter properties."""
    return {**WEATHER_TOOL, "parameters": {"type": "object", "properties": schema_props}}


def tool_scenario(**kwargs: Any) -> Scenario:
    """Reasoning, some text and two tool calls (``kwargs``: more Scenario fields)."""
    return Scenario(text="Let me check.", reasoning="The user wants weather data.",
                    tool_calls=[tool_call("get_weather", {"city": "Paris", "unit": "C"}),
                                tool_call("get_time", {"tz": "Europe/Paris"})], **kwargs)
