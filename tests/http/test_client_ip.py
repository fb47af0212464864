"""Client addresses: proxy headers count only when a configured proxy delivered them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import redis.asyncio
from fastapi import APIRouter
from starlette.requests import Request

from shared.http.client_ip import (
    UNKNOWN_PEER,
    ClientIp,
    client_ip,
    ip_bucket,
    parse_ip,
    parse_trusted_proxies,
)
from shared.infra.loop_local import reset_all
from shared.infra.ratelimit import Rule, enforce

CLOUDFLARE = ["173.245.48.0/20", "2400:cb00::/32"]
LB = ["10.0.0.0/8"]


def request(peer: str | None = "198.51.100.7", headers: list[tuple[str, str]] | None = None) -> Request:
    """A Request built from a raw ASGI scope, as the server would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers or []
        ],
        "client": None if peer is None else (peer, 51234),
        "server": ("api.example.com", 443),
    }
    return Request(scope)


def ip_of(peer: str | None, trusted: list[str], *headers: tuple[str, str]) -> str:
    return client_ip(request(peer, list(headers)), trusted_proxies=trusted)


# --- untrusted peers -----------------------------------------------------------------------------------


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ip_of("198.51.100.7", []) == "198.51.100.7"


def test_spoofed_headers_from_an_untrusted_peer_are_ignored() -> None:
    spoof = [("x-forwarded-for", "1.2.3.4"), ("cf-connecting-ip", "5.6.7.8"), ("x-real-ip", "9.9.9.9")]
    assert ip_of("198.51.100.7", [], *spoof) == "198.51.100.7"
    # Trusting some proxies does not make others trusted.
    assert ip_of("198.51.100.7", LB + CLOUDFLARE, *spoof) == "198.51.100.7"


def test_missing_or_non_ip_peer_is_one_shared_bucket() -> None:
    assert ip_of(None, [], ("x-forwarded-for", "1.2.3.4")) == UNKNOWN_PEER
    assert ip_of("testclient", LB, ("x-forwarded-for", "1.2.3.4")) == UNKNOWN_PEER


# --- trusted proxy chains ------------------------------------------------------------------------------


def test_forwarded_for_is_walked_from_the_right_past_trusted_hops() -> None:
    # The client forged the first two entries; Cloudflare appended the real client, our LB appended
    # Cloudflare's edge, and the LB is the peer.
    chain = ("x-forwarded-for", "6.6.6.6, 10.1.1.1, 203.0.113.50, 173.245.48.9")
    assert ip_of("10.0.0.2", LB + CLOUDFLARE, chain) == "203.0.113.50"
    # Trusting only the LB, Cloudflare's edge is the client (the best we can vouch for).
    assert ip_of("10.0.0.2", LB, chain) == "173.245.48.9"


def test_repeated_forwarded_for_headers_form_one_list() -> None:
    headers = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.50, 10.9.9.9")]
    assert ip_of("10.0.0.2", LB, *headers) == "203.0.113.50"


def test_a_chain_of_only_trusted_hops_gives_the_left_most() -> None:
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "10.5.5.5, 10.6.6.6")) == "10.5.5.5"
    assert ip_of("10.0.0.2", LB) == "10.0.0.2"  # no header: the proxy itself (a health check)


def test_garbage_stops_the_walk_at_the_peer() -> None:
    for value in ("not-an-ip", "203.0.113.5, <script>", "999.1.1.1", "", " , ", "unknown", "fe80::1%eth0"):
        assert ip_of("10.0.0.2", LB, ("x-forwarded-for", value)) == "10.0.0.2", value
    # Garbage the walk never reaches (left of the client) does not matter.
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "junk, 203.0.113.5")) == "203.0.113.5"


def test_ports_and_brackets_are_understood() -> None:
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "203.0.113.5:4711")) == "203.0.113.5"
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "[2001:DB8::5]:443")) == "2001:db8::5"
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "[2001:db8::5]")) == "2001:db8::5"
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "[2001:db8::5]x")) == "10.0.0.2"
    assert ip_of("10.0.0.2", LB, ("x-forwarded-for", "203.0.113.5:port")) == "10.0.0.2"


# --- CF-Connecting-IP ----------------------------------------------------------------------------------


def test_cf_connecting_ip_counts_only_from_a_trusted_peer() -> None:
    header = ("cf-connecting-ip", "203.0.113.77")
    assert ip_of("173.245.48.9", CLOUDFLARE, header) == "203.0.113.77"
    assert ip_of("198.51.100.7", CLOUDFLARE, header) == "198.51.100.7"
    # It wins over X-Forwarded-For when Cloudflare is the peer.
    assert ip_of("173.245.48.9", CLOUDFLARE, header, ("x-forwarded-for", "6.6.6.6")) == "203.0.113.77"


def test_invalid_cf_connecting_ip_falls_back_to_forwarded_for() -> None:
    headers = (("cf-connecting-ip", "garbage"), ("x-forwarded-for", "6.6.6.6, 203.0.113.50"))
    assert ip_of("173.245.48.9", CLOUDFLARE, *headers) == "203.0.113.50"


# --- "*" (Vercel) --------------------------------------------------------------------------------------


def test_trust_all_takes_the_right_most_unlisted_forwarded_for() -> None:
    assert ip_of("169.254.1.1", ["*"], ("x-forwarded-for", "6.6.6.6, 203.0.113.50")) == "203.0.113.50"
    # An unknown peer is fine: every peer is a proxy.
    assert ip_of(None, ["*"], ("x-forwarded-for", "203.0.113.50")) == "203.0.113.50"
    assert ip_of(None, ["*"]) == UNKNOWN_PEER


def test_trust_all_ignores_cf_connecting_ip_unless_cloudflare_delivered() -> None:
    # Anyone can reach a *.vercel.app URL directly and send the header.
    forged = ("cf-connecting-ip", "1.2.3.4")
    assert ip_of("169.254.1.1", ["*"], forged, ("x-forwarded-for", "203.0.113.50")) == "203.0.113.50"
    # Through Cloudflare, Vercel saw Cloudflare's edge (listed), so Cloudflare's header is believed.
    real = ("cf-connecting-ip", "203.0.113.77")
    assert (
        ip_of("169.254.1.1", ["*", *CLOUDFLARE], real, ("x-forwarded-for", "173.245.48.9")) == "203.0.113.77"
    )


# --- normalisation and buckets -------------------------------------------------------------------------


def test_addresses_are_normalised() -> None:
    assert ip_of("::ffff:198.51.100.7", []) == "198.51.100.7"
    assert ip_of("2001:0DB8:0000::0001", []) == "2001:db8::1"
    # A mapped peer matches an IPv4 proxy entry, and an IPv4-mapped proxy entry matches an IPv4 peer.
    assert ip_of("::ffff:10.0.0.2", LB, ("x-forwarded-for", "::ffff:203.0.113.5")) == "203.0.113.5"
    assert ip_of("10.0.0.2", ["::ffff:10.0.0.0/104"], ("x-forwarded-for", "203.0.113.5")) == "203.0.113.5"


def test_ipv6_is_bucketed_by_64() -> None:
    assert ip_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert ip_bucket("2001:db8:1:2::1") == ip_bucket("2001:db8:1:2:ffff::")
    assert ip_bucket("2001:db8:1:3::1") != ip_bucket("2001:db8:1:2::1")
    assert ip_bucket("203.0.113.5") == "203.0.113.5"
    assert ip_bucket("::ffff:203.0.113.5") == "203.0.113.5"
    with pytest.raises(ValueError):
        ip_bucket("unknown")


def test_trusted_proxies_are_validated() -> None:
    parsed = parse_trusted_proxies(["10.0.0.1/8", " 2400:cb00::/32 ", "192.0.2.1", "*"])
    assert parsed.trust_all
    assert [str(n) for n in parsed.networks] == ["10.0.0.0/8", "2400:cb00::/32", "192.0.2.1/32"]
    with pytest.raises(ValueError, match=r"'proxy\.internal'"):
        parse_trusted_proxies(["proxy.internal"])
    assert parse_ip(None) is None


# --- the FastAPI dependency and a rate limit keyed on it ----------------------------------------------


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_rate_limit_by_client_ip_over_http(
    settings_env: Callable[..., None], raw: redis.asyncio.Redis
) -> None:
    from shared.http.app import create_app

    settings_env(TRUSTED_PROXIES="127.0.0.0/8, ::1")
    await reset_all()
    tag = uuid.uuid4().hex
    router = APIRouter(prefix="/api/v1/probe")

    @router.post("/login")
    async def login(ip: ClientIp) -> dict[str, str]:
        await enforce(rules=[Rule(f"{tag}:{ip}", 2, 60)])
        return {"ip": ip}

    app = create_app(router, group="probe")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = await client.post("/api/v1/probe/login", headers={"x-forwarded-for": "203.0.113.9"})
            assert first.json() == {"ip": "203.0.113.9"}
            await client.post("/api/v1/probe/login", headers={"x-forwarded-for": "203.0.113.9"})
            limited = await client.post("/api/v1/probe/login", headers={"x-forwarded-for": "203.0.113.9"})
            assert limited.status_code == 429
            assert limited.headers["content-type"] == "application/problem+json"
            assert limited.json()["code"] == "rate_limited"
            assert 59 <= int(limited.headers["retry-after"]) <= 60
            assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
            other = await client.post("/api/v1/probe/login", headers={"x-forwarded-for": "203.0.113.10"})
            assert other.status_code == 200

        # From an untrusted peer, rotating X-Forwarded-For does not escape the limit.
        direct = httpx.ASGITransport(app=app, client=("198.51.100.200", 5000))
        async with httpx.AsyncClient(transport=direct, base_url="http://test") as client:
            statuses = [
                (
                    await client.post("/api/v1/probe/login", headers={"x-forwarded-for": f"6.6.6.{n}"})
                ).status_code
                for n in range(4)
            ]
        assert statuses == [200, 200, 429, 429]
    finally:
        keys = [key async for key in raw.scan_iter(match=f"rl:{tag}:*")]
        if keys:
            await raw.delete(*keys)
        await reset_all()
