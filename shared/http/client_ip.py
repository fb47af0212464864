"""The client's IP address, taken from proxy headers only when a configured proxy vouches for them.

Anyone can send `X-Forwarded-For` or `CF-Connecting-IP`, so a rate limit keyed on them is worthless unless
the headers are believed only from proxies we run or rent. The rules (TRUSTED_PROXIES is a comma list of
addresses and CIDRs, plus the special value "*"):

1. Start from the direct peer (`request.client.host`). A missing or non-IP peer (some ASGI adapters, unix
   sockets) becomes `UNKNOWN_PEER`: such requests share one bucket, which is loud but never spoofable.
2. A peer that is not trusted is the client; the headers are ignored entirely.
3. `CF-Connecting-IP` is the client when the hop that delivered the request is a listed proxy (its CIDR,
   not "*"): the peer itself, or with "*" the address the platform's proxy saw (the right-most
   X-Forwarded-For entry). List Cloudflare's ranges only if every path to the origin goes through it.
4. Otherwise X-Forwarded-For is walked from the right, skipping listed proxies; the first address that is
   not a listed proxy is the client. If every entry is a listed proxy, the left-most one is the client.
   An entry that is not an IP address stops the walk and the peer is used: a proxy we trust appends only
   addresses, so garbage on our side of the chain means the chain cannot be believed.
5. "*" means every peer is a proxy: for Vercel, whose functions only ever see Vercel's own proxy, which
   overwrites X-Forwarded-For with the address it saw (so X-Real-IP and X-Vercel-Forwarded-For, which
   carry the same value, are not read).
Addresses are normalised (compressed IPv6, IPv4-mapped IPv6 as IPv4, no zone ids).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from shared.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a request with no usable peer address counts as (see rule 1).
UNKNOWN_PEER = "0.0.0.0"  # noqa: S104 - a placeholder value, nothing binds to it
TRUST_ALL = "*"


@dataclass(frozen=True)
class TrustedProxies:
    """Parsed TRUSTED_PROXIES: the listed networks and whether "*" (every peer is a proxy) was given."""

    networks: tuple[IPNetwork, ...]
    trust_all: bool

    def listed(self, ip: IPAddress) -> bool:
        """True when the address is within one of the listed networks ("*" aside)."""
        return any(ip in network for network in self.networks)


def parse_trusted_proxies(values: Iterable[str]) -> TrustedProxies:
    """Parse addresses, CIDRs and "*"; a bad entry raises ValueError naming it (fail fast on misconfig)."""
    networks: list[IPNetwork] = []
    trust_all = False
    for raw in values:
        value = raw.strip()
        if value == TRUST_ALL:
            trust_all = True
            continue
        try:
            # strict=False: "10.0.0.1/8" means the network 10.0.0.0/8, as operators usually intend.
            network = ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise ValueError(f"TRUSTED_PROXIES: {value!r} is not an IP address or CIDR") from error
        networks.append(network)
        mapped = _mapped_network(network)
        if mapped is not None:
            networks.append(mapped)
    return TrustedProxies(tuple(networks), trust_all)


def _mapped_network(network: IPNetwork) -> IPNetwork | None:
    """The IPv4 network an ::ffff:a.b.c.d/n entry stands for (peers are normalised to IPv4)."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return None


@lru_cache(maxsize=8)
def _parsed(values: tuple[str, ...]) -> TrustedProxies:
    return parse_trusted_proxies(values)


def parse_ip(value: str | None) -> IPAddress | None:
    """Parse one address as proxies write it (optionally "[v6]:port" or "v4:port"); None if it is not one."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):  # "[2001:db8::1]" or "[2001:db8::1]:443"
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # "203.0.113.7:51234" (some load balancers add the port)
        text, _, port = text.partition(":")
        if not _is_port(":" + port):
            return None
    if "%" in text:  # a zone id only means something on the proxy's own link
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_port(suffix: str) -> bool:
    return len(suffix) > 1 and suffix[0] == ":" and suffix[1:].isascii() and suffix[1:].isdigit()


def _forwarded_for(request: Request) -> list[str]:
    """Every X-Forwarded-For entry, left to right, across repeated headers (RFC 9110 list semantics)."""
    return [entry for header in request.headers.getlist("x-forwarded-for") for entry in header.split(",")]


def client_ip(request: Request, *, trusted_proxies: Sequence[str]) -> str:
    """The client's address by the rules in this module's docstring, normalised."""
    trusted = _parsed(tuple(trusted_proxies))
    peer = parse_ip(request.client.host if request.client else None)
    peer_listed = peer is not None and trusted.listed(peer)
    if not (peer_listed or trusted.trust_all):
        return str(peer) if peer is not None else UNKNOWN_PEER
    forwarded = _forwarded_for(request)
    # The hop that handed the request to our side: the peer, or with "*" whom the platform's proxy saw.
    delivering = peer if peer_listed or not forwarded else parse_ip(forwarded[-1])
    if delivering is not None and trusted.listed(delivering):
        cloudflare = parse_ip(request.headers.get("cf-connecting-ip"))
        if cloudflare is not None:
            return str(cloudflare)
    current = str(peer) if peer is not None else UNKNOWN_PEER
    for entry in reversed(forwarded):
        ip = parse_ip(entry)
        if ip is None:
            return str(peer) if peer is not None else UNKNOWN_PEER
        current = str(ip)
        if not trusted.listed(ip):
            return current
    return current


def ip_bucket(ip: str) -> str:
    """The rate-limit unit for an address: IPv4 itself, IPv6 its /64 (one host usually owns a whole /64)."""
    address = parse_ip(ip)
    if address is None:
        raise ValueError(f"not an IP address: {ip!r}")
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def _client_ip_dependency(request: Request) -> str:
    # async: a plain def dependency would cost a thread-pool hop per request.
    return client_ip(request, trusted_proxies=get_settings().trusted_proxies)


ClientIp = Annotated[str, Depends(_client_ip_dependency)]


def peer_is_trusted_proxy(request: Request, trusted_proxies: Sequence[str]) -> bool:
    """Whether headers set by the edge (geolocation, forwarding) may be believed for this request."""
    trusted = _parsed(tuple(trusted_proxies))
    peer = parse_ip(request.client.host if request.client else None)
    return trusted.trust_all or (peer is not None and trusted.listed(peer))
