"""Which webhook URLs payplat may call (OWASP API7, server-side request forgery).

A partner names the URL; payplat's functions run inside AWS, next to the instance metadata
service, the VPC's resolver and whatever else answers on a private address. So a URL is
checked when an endpoint is created AND again at every delivery (the name may resolve
elsewhere by then: DNS rebinding), and the delivery connects to exactly the address that
was checked (`Target.address`), never resolving the name a second time.

Rules: https only (locally, http too, to loopback only); no credentials in the URL; every
address the name resolves to must be public — not private, loopback (except locally),
link-local, multicast, reserved, unspecified, shared (CGNAT 100.64/10), nor an IPv6 form
that embeds one of those (IPv4-mapped, 6to4, Teredo, NAT64) — and never a cloud metadata
address. One bad address refuses the URL: a name with a public and a private address is a
rebinding set-up, not a mistake.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_CHARS = 2048
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # EC2/ECS/Lambda instance metadata
        ipaddress.ip_address("169.254.170.2"),  # ECS task metadata and credentials
        ipaddress.ip_address("fd00:ec2::254"),  # EC2 instance metadata over IPv6
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"https": 443, "http": 80}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the name resolves to (getaddrinfo's, by default)
Resolver = Callable[[str, int], Sequence[str]]


class UrlNotAllowed(ValueError):
    """The URL may not be called; `reason` says why in words a partner can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: connect to `address` (the checked one), send `Host: host`, and verify
    the server's certificate for `host`."""

    scheme: str
    host: str  # as in the URL, without brackets for an IPv6 literal
    port: int
    path: str  # path and query, at least "/"
    address: str  # the IP address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, *, local: bool = False, resolver: Resolver = resolve) -> Target:
    """The URL as a `Target` to connect to, or UrlNotAllowed."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not local):
        raise UrlNotAllowed("The URL must use https.")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("The URL must not hold credentials (user:password@).")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed("The URL has no host.")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise UrlNotAllowed("The URL's port is not a valid port number.") from None
    addresses = resolver(host, port)
    if not addresses:
        raise UrlNotAllowed(f"The host {host[:253]} does not resolve to an address.")
    for address in addresses:
        refusal = address_refusal(address, local=local)
        if refusal is not None:
            raise UrlNotAllowed(f"The host {host[:253]} resolves to {refusal}.")
    if scheme == "http" and not all(_ip(a).is_loopback for a in addresses):
        raise UrlNotAllowed("The URL must use https (http only to this machine, locally).")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def address_refusal(address: str, *, local: bool = False) -> str | None:
    """Why payplat may not connect to `address` (None: it may)."""
    try:
        ip = _ip(address)
    except ValueError:
        return "something that is not an IP address"
    if ip in _METADATA:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = address_refusal(str(embedded), local=local)
        return None if inner is None else f"an IPv6 form of {inner}"
    if ip.is_loopback:
        return None if local else "a loopback address"
    for refused, reason in (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _CGNAT, "a shared (carrier-grade NAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        # Documentation, benchmarking, 6to4 relays...: nothing a partner's server runs on.
        (not ip.is_global, "a special-purpose address"),
    ):
        if refused:
            return reason
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where the network delivers it there."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _ip(address: str) -> IPAddress:
    # A scoped IPv6 address (fe80::1%eth0) names an interface: the scope is not an address.
    return ipaddress.ip_address(address.split("%", 1)[0])


def _split(url: str) -> SplitResult:
    if not url or len(url) > MAX_URL_CHARS:
        raise UrlNotAllowed(f"The URL must be 1 to {MAX_URL_CHARS} characters.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url) or "\\" in url:
        raise UrlNotAllowed("The URL holds whitespace, control characters or backslashes.")
    try:
        return urlsplit(url)
    except ValueError:
        raise UrlNotAllowed("The URL is not a valid URL.") from None
