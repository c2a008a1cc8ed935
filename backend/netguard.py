"""Fetching a URL a user gave us without letting them reach inside our network (SSRF).

Every hop is checked before it is fetched: the scheme (http, https), the port (80, 443 or the
URL's own when the host is allowed explicitly), and every address the host resolves to must be
a public unicast address (no private, loopback, link-local, CGNAT, multicast, reserved or
unspecified range, IPv4-mapped or 6to4 forms of them included). The connection then goes to the
address that was checked, not to a second DNS answer (a rebinding attacker cannot swap it in
between): the URL's host is replaced by the address, with the name kept in the Host header
and, for https, as the TLS server name (certificates are still verified against the name).
Redirects are followed by hand, each one checked again; the body is read up to a size limit
and the whole fetch runs under one deadline.

``allow_hosts`` is the test allowance: names or addresses that may be private (the suite's
local page server). Production leaves it empty.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

import httpx

from backend.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges Python's is_global does not already exclude, or that hide another address.
_EXTRA_BLOCKED = [
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: embeds an IPv4 address
    ipaddress.ip_network("2002::/16"),  # 6to4: embeds an IPv4 address
]


class UrlRefused(ValidationFailed):
    code = "url_refused"


class FetchFailed(Exception):
    """The page could not be fetched (network, status, type or size); ``reason`` says which."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public_address(address.ipv4_mapped)
        if address.sixtofour is not None and not public_address(address.sixtofour):
            return False
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    return not any(address in net for net in _EXTRA_BLOCKED if net.version == address.version)


@dataclass(frozen=True)
class Guard:
    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 2 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 5
    content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    user_agent: str = "RiffleBot/1.0 (+product import)"


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    body: bytes
    hops: list[str] = field(default_factory=list)


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):  # unknown, or not a valid name at all
        raise UrlRefused(f"the host {host[:100]!r} does not resolve", field="url") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check(url: httpx.URL, guard: Guard) -> IPAddress:
    """The address to connect to for ``url``, or :class:`UrlRefused`."""
    if url.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs can be fetched", field="url")
    host = url.host
    if not host:
        raise UrlRefused("the URL has no host", field="url")
    allowed = host in guard.allow_hosts
    port = url.port or (443 if url.scheme == "https" else 80)
    if port not in (80, 443) and not allowed:
        raise UrlRefused("only the standard ports (80, 443) can be fetched", field="url")
    addresses = await resolve(host, port)
    if not addresses:
        raise UrlRefused(f"the host {host!r} does not resolve", field="url")
    if not allowed:
        for address in addresses:
            if not public_address(address):
                raise UrlRefused(
                    f"{host} points to an address that is not on the public internet", field="url"
                )
    return addresses[0]


async def fetch(url: str, guard: Guard, *, client: httpx.AsyncClient | None = None) -> Fetched:
    """GET ``url`` under the guard. :class:`UrlRefused` for a URL we will not fetch,
    :class:`FetchFailed` for one that could not be fetched."""
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UrlRefused("this is not a valid URL", field="url") from None
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)
    hops: list[str] = []
    try:
        async with asyncio.timeout(guard.timeout_s):
            for _ in range(guard.max_redirects + 1):
                address = await check(current, guard)
                hops.append(str(current))
                pinned = current.copy_with(host=str(address))
                headers = {"Host": current.netloc.decode("ascii"), "User-Agent": guard.user_agent}
                extensions = {"sni_hostname": current.host} if current.scheme == "https" else {}
                request = http.build_request("GET", pinned, headers=headers, extensions=extensions)
                response = await http.send(request, stream=True)
                try:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchFailed("bad_redirect", "a redirect without a Location")
                        current = current.join(location)
                        continue
                    if response.status_code >= 400:
                        raise FetchFailed("status", f"the page answered {response.status_code}")
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type not in guard.content_types:
                        raise FetchFailed("type", f"the page is {content_type or 'untyped'}, not HTML")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > guard.max_bytes:
                            raise FetchFailed("too_large", f"the page is larger than {guard.max_bytes} bytes")
                    return Fetched(str(current), response.status_code, content_type, bytes(body), hops)
                finally:
                    await response.aclose()
            raise FetchFailed("redirects", f"more than {guard.max_redirects} redirects")
    except TimeoutError:
        raise FetchFailed("timeout", f"the page did not answer within {guard.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchFailed("network", f"the page could not be fetched ({type(exc).__name__})") from None
    finally:
        if own:
            await http.aclose()
