"""A guarded HTTP GET for client-named media URLs (OCI takes images and PDFs as base64 only).

Contract: :class:`MediaFetcher` (``async with``: one aiohttp session for one request's fetches)
:meth:`~MediaFetcher.fetch` downloads an ``http``/``https`` URL and returns :class:`Fetched`
(the bytes and their media type), or raises :class:`FetchRefused` whose ``result`` is one of
``refused|too_large|bad_type|timeout|error`` (the metric label) and whose message is safe to
show the client. It lives in ``oci/`` because aiohttp, the transport, stays in this package.

Server-side request forgery is the risk: the URL comes from the client and the gateway sits
inside the network. So, unless ``allow_private`` or the host is in ``allowed_hosts``:

- every address a host name resolves to must be public (:func:`is_public`: ``is_global``,
  not multicast, IPv4-mapped / 6to4 / Teredo addresses judged by the IPv4 inside); one
  non-public address refuses the host. The check is the connector's *resolver*, so the address
  checked is the address connected to: a DNS answer that changes between a check and the
  connection (rebinding) cannot slip through, and the DNS cache is off;
- an IP literal (which aiohttp never resolves) is checked before the request;
- redirects are followed by hand, at most ``max_redirects``, each hop checked the same way;
- no proxy from the environment, no cookies, no credentials in the URL.

The body is read up to ``max_bytes`` (a larger ``content-length`` is refused before reading);
its media type is what the first bytes say (:func:`sniff`) when that is one of ``accept``,
else the ``content-type`` when it is; any other declared type is refused before reading.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


class FetchRefused(Exception):
    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


class _PrivateAddress(OSError):
    """Raised by the resolver; aiohttp wraps it in a ClientConnectorError."""


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    media_type: str


def is_public(address: str) -> bool:
    """True for an address on the public internet (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return ip.is_global and not ip.is_multicast


def sniff(data: bytes) -> str | None:
    """The media type the first bytes announce (PNG, JPEG, GIF, WebP, PDF), or None."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class _GuardedResolver(AbstractResolver):
    def __init__(self, trusted: Any) -> None:
        self._inner = ThreadedResolver()
        self._trusted = trusted

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._trusted(host):
            for r in results:
                if not is_public(r["host"]):
                    raise _PrivateAddress(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._inner.close()


class MediaFetcher:
    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        max_redirects: int = 3,
        allow_private: bool = False,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(h.lower().strip("[]") for h in allowed_hosts)
        self._session: aiohttp.ClientSession | None = None

    def trusted(self, host: str) -> bool:
        return self.allow_private or host.lower().strip("[]") in self.allowed_hosts

    async def __aenter__(self) -> MediaFetcher:
        connector = aiohttp.TCPConnector(
            resolver=_GuardedResolver(self.trusted), use_dns_cache=False, limit=8
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.timeout, sock_connect=self.timeout, sock_read=self.timeout
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_url(self, url: URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise FetchRefused("refused", "only http and https URLs are fetched")
        if url.user or url.password:
            raise FetchRefused("refused", "URLs with credentials are not fetched")
        host = url.host
        try:
            ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self.trusted(host) and not is_public(host.strip("[]")):
            raise FetchRefused("refused", "the URL points to a non-public address")

    async def fetch(self, raw_url: str, accept: frozenset[str]) -> Fetched:
        assert self._session is not None, "use MediaFetcher with async with"
        try:
            url = URL(raw_url)
        except (ValueError, TypeError):
            raise FetchRefused("refused", "not a valid URL") from None
        headers = {"accept": ", ".join(sorted(accept)), "user-agent": "oci-anthropic-gateway/0.1"}
        for _hop in range(self.max_redirects + 1):
            self._check_url(url)
            try:
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS and "location" in resp.headers:
                        url = url.join(URL(resp.headers["location"]))
                        continue
                    if resp.status != 200:
                        raise FetchRefused("error", f"the server answered HTTP {resp.status}")
                    return await self._read(resp, accept)
            except FetchRefused:
                raise
            except TimeoutError:
                raise FetchRefused("timeout", f"no answer within {self.timeout:g}s") from None
            except aiohttp.ClientConnectorError as err:
                if isinstance(err.os_error, _PrivateAddress):
                    raise FetchRefused(
                        "refused", "the URL points to a non-public address"
                    ) from None
                raise FetchRefused("error", "cannot connect to the server") from None
            except (aiohttp.ClientError, OSError, ValueError) as err:
                raise FetchRefused("error", f"the download failed ({type(err).__name__})") from None
        raise FetchRefused("refused", f"more than {self.max_redirects} redirects")

    async def _read(self, resp: aiohttp.ClientResponse, accept: frozenset[str]) -> Fetched:
        declared = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if declared not in accept and declared not in _GENERIC_TYPES:
            raise FetchRefused("bad_type", f"content-type {declared[:60]!r} is not accepted")
        if (resp.content_length or 0) > self.max_bytes:
            raise FetchRefused("too_large", f"larger than {self.max_bytes} bytes")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data += chunk
            if len(data) > self.max_bytes:
                raise FetchRefused("too_large", f"larger than {self.max_bytes} bytes")
        body = bytes(data)
        # the bytes win over the header when they name an accepted type (servers mislabel)
        sniffed = sniff(body)
        media_type = sniffed if sniffed in accept else declared if declared in accept else None
        if media_type is None:
            raise FetchRefused("bad_type", "the content is not of an accepted type")
        return Fetched(body, media_type)
