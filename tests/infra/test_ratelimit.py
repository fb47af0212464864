"""Rate limits and lockout against the run's real Redis, through both backends (redis-py, and Upstash REST
via the local bridge in front of the same server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from shared.errors import RateLimited, ServiceUnavailable
from shared.infra.ratelimit import (
    LIMITS,
    LOGIN_LOCKOUT,
    TOTP_LOCKOUT,
    Lockout,
    Rule,
    account_key,
    enforce,
    hit,
    hit_all,
    login_rules,
    password_reset_rules,
    signup_rules,
    too_many_requests,
    totp_rules,
    verification_resend_rules,
)
from shared.infra.redis import KeyValueStore, RedisPyStore, UpstashStore
from tests.support.upstash_bridge import UpstashBridge

BACKENDS = ["redis-py", "upstash"]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client on the same server, to inspect state behind the library's back."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def ns(raw: redis.asyncio.Redis) -> AsyncIterator[str]:
    """A name unique to this test; its rl:/lock: keys go afterwards (the test server outlives the run)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for pattern in (f"rl:{name}*", f"lock:{name}*"):
        keys = [key async for key in raw.scan_iter(match=pattern, count=1000)]
        if keys:
            await raw.delete(*keys)


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, redis_url: str, upstash_bridge: tuple[str, str]
) -> AsyncIterator[KeyValueStore]:
    """The store under test, once per backend."""
    made: KeyValueStore = (
        RedisPyStore(redis_url) if request.param == "redis-py" else UpstashStore(*upstash_bridge)
    )
    yield made
    await made.close()


# --- hit --------------------------------------------------------------------------------------------


async def test_limit_reached_is_refused_with_retry_after(
    store: KeyValueStore, raw: redis.asyncio.Redis, ns: str
) -> None:
    results = [await hit(store, key=f"{ns}:k", limit=3, window_seconds=60) for _ in range(5)]
    assert [(d.allowed, d.remaining, d.retry_after) for d in results[:3]] == [
        (True, 2, 0),
        (True, 1, 0),
        (True, 0, 0),
    ]
    for refused in results[3:]:
        assert not refused.allowed
        assert refused.remaining == 0
        assert 59 <= refused.retry_after <= 60
    # Refused hits are not recorded: the set holds the three allowed ones and expires with the window.
    assert await raw.zcard(f"rl:{ns}:k") == 3
    assert 59_000 < await raw.pttl(f"rl:{ns}:k") <= 60_000


async def test_the_window_slides(store: KeyValueStore, ns: str) -> None:
    key = f"{ns}:slide"
    assert (await hit(store, key=key, limit=2, window_seconds=1)).allowed
    await asyncio.sleep(0.5)
    assert (await hit(store, key=key, limit=2, window_seconds=1)).allowed
    refused = await hit(store, key=key, limit=2, window_seconds=1)
    assert not refused.allowed
    assert refused.retry_after == 1
    await asyncio.sleep(0.6)  # the first hit has left the window, the second has not
    again = await hit(store, key=key, limit=2, window_seconds=1)
    assert (again.allowed, again.remaining) == (True, 0)
    assert not (await hit(store, key=key, limit=2, window_seconds=1)).allowed


async def test_cost_takes_several_units(store: KeyValueStore, ns: str) -> None:
    key = f"{ns}:cost"
    assert (await hit(store, key=key, limit=5, window_seconds=30, cost=3)).remaining == 2
    assert (await hit(store, key=key, limit=5, window_seconds=30)).remaining == 1
    # Three more do not fit: refused, nothing charged, the one unit left is still there.
    refused = await hit(store, key=key, limit=5, window_seconds=30, cost=3)
    assert (refused.allowed, refused.remaining) == (False, 1)
    assert 29 <= refused.retry_after <= 30
    assert (await hit(store, key=key, limit=5, window_seconds=30)).allowed


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="cost"):
        Rule("k", limit=2, window_seconds=10, cost=3)
    with pytest.raises(ValueError, match="limit and window"):
        Rule("k", limit=0, window_seconds=10)
    with pytest.raises(ValueError, match="limit and window"):
        Rule("k", limit=1, window_seconds=0)


async def test_repeated_keys_in_one_call_are_refused(store: KeyValueStore, ns: str) -> None:
    with pytest.raises(ValueError, match="repeat"):
        await hit_all(store, [Rule(f"{ns}:a", 5, 10), Rule(f"{ns}:a", 5, 10)])
    assert await hit_all(store, []) == []


async def test_fifty_concurrent_hits_never_exceed_the_limit(
    store: KeyValueStore, raw: redis.asyncio.Redis, ns: str
) -> None:
    key = f"{ns}:race"
    results = await asyncio.gather(*(hit(store, key=key, limit=7, window_seconds=60) for _ in range(50)))
    assert sum(d.allowed for d in results) == 7
    assert sorted(d.remaining for d in results if d.allowed) == list(range(7))
    assert all(d.retry_after >= 1 for d in results if not d.allowed)
    assert await raw.zcard(f"rl:{key}") == 7


# --- enforce: several rules in one call --------------------------------------------------------------


async def test_two_rules_in_one_call(store: KeyValueStore, raw: redis.asyncio.Redis, ns: str) -> None:
    ip, alice, bob = Rule(f"{ns}:ip", 3, 60), Rule(f"{ns}:alice", 2, 900), Rule(f"{ns}:bob", 2, 900)
    await enforce(rules=[ip, alice], store=store)
    await enforce(rules=[ip, alice], store=store)
    with pytest.raises(RateLimited) as refused:
        await enforce(rules=[ip, alice], store=store)
    assert refused.value.status == 429
    assert refused.value.code == "rate_limited"
    retry = int(refused.value.headers["Retry-After"])
    assert 899 <= retry <= 900
    assert refused.value.extra == {"retry_after": retry}
    # The refused call charged nothing, so the IP still has room for another account...
    assert await raw.zcard(f"rl:{ns}:ip") == 2
    await enforce(rules=[ip, bob], store=store)
    # ...and now the IP is what refuses, whichever account is named.
    with pytest.raises(RateLimited) as by_ip:
        await enforce(rules=[ip, bob], store=store)
    assert 59 <= int(by_ip.value.headers["Retry-After"]) <= 60
    assert await raw.zcard(f"rl:{ns}:bob") == 1


async def test_retry_after_is_the_longest_wait_of_the_refusing_rules(store: KeyValueStore, ns: str) -> None:
    short, long = Rule(f"{ns}:short", 1, 10), Rule(f"{ns}:long", 1, 100)
    decisions = await hit_all(store, [short, long])
    assert all(d.allowed for d in decisions)
    decisions = await hit_all(store, [short, long])
    assert [d.allowed for d in decisions] == [False, False]
    assert 9 <= decisions[0].retry_after <= 10
    assert 99 <= decisions[1].retry_after <= 100
    with pytest.raises(RateLimited) as refused:
        await enforce(rules=[short, long], store=store)
    assert 99 <= int(refused.value.headers["Retry-After"]) <= 100


async def test_concurrent_enforce_with_two_rules(
    store: KeyValueStore, raw: redis.asyncio.Redis, ns: str
) -> None:
    rules = [Rule(f"{ns}:ip", 9, 60), Rule(f"{ns}:acct", 4, 60)]

    async def attempt() -> bool:
        try:
            await enforce(rules=rules, store=store)
        except RateLimited:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sum(outcomes) == 4
    assert await raw.zcard(f"rl:{ns}:ip") == 4
    assert await raw.zcard(f"rl:{ns}:acct") == 4


async def test_enforce_is_one_round_trip_over_rest(
    upstash_bridge_server: UpstashBridge, upstash_bridge: tuple[str, str], ns: str
) -> None:
    store = UpstashStore(*upstash_bridge)
    try:
        for _ in range(3):
            await enforce(rules=[Rule(f"{ns}:ip", 10, 60), Rule(f"{ns}:acct", 10, 60)], store=store)
    finally:
        await store.close()
    sent = [command[0] for command in upstash_bridge_server.commands() if f"rl:{ns}:ip" in command]
    # One request per call; the script body travels at most once (whoever ran it first loaded it).
    assert len(sent) in (3, 4)
    assert sent[-2:] == ["EVALSHA", "EVALSHA"]


async def test_enforce_defaults_to_the_configured_store(raw: redis.asyncio.Redis, ns: str) -> None:
    await enforce(rules=[Rule(f"{ns}:default", 1, 60)])
    assert await raw.zcard(f"rl:{ns}:default") == 1
    with pytest.raises(RateLimited):
        await enforce(rules=[Rule(f"{ns}:default", 1, 60)])


async def test_redis_down_fails_closed() -> None:
    # Nothing listens on port 1: the error is a 503 and it propagates (login must not pass unchecked).
    dead = RedisPyStore("redis://127.0.0.1:1", timeout=0.5)
    try:
        with pytest.raises(ServiceUnavailable):
            await enforce(rules=[Rule("never", 1, 60)], store=dead)
        with pytest.raises(ServiceUnavailable):
            await LOGIN_LOCKOUT.check(dead, account_key("a@example.com"))
    finally:
        await dead.close()


def test_too_many_requests_has_retry_after() -> None:
    error = too_many_requests(0)
    assert error.headers == {"Retry-After": "1"}  # never 0: "retry now" would invite a tight loop
    locked = too_many_requests(42, detail="Slow down.", code="account_locked")
    assert (locked.detail, locked.code, locked.status) == ("Slow down.", "account_locked", 429)
    assert error.code == "rate_limited"


# --- named policies ----------------------------------------------------------------------------------


def test_policies_key_on_ip_bucket_and_hashed_account() -> None:
    account = account_key("  Alice@Example.com ")
    assert account == account_key("alice@example.com")
    ip_rule, account_rule = login_rules(ip="2001:db8:1:2::abcd", account=account)
    assert ip_rule.key == "login:ip:2001:db8:1:2::/64"
    assert account_rule.key == f"login:account:{account}"
    assert (ip_rule.limit, ip_rule.window_seconds) == (LIMITS["login:ip"].limit, 60)
    assert (account_rule.limit, account_rule.window_seconds) == (10, 15 * 60)
    assert [r.key for r in signup_rules(ip="::ffff:203.0.113.9")] == ["signup:ip:203.0.113.9"]
    for make in (password_reset_rules, verification_resend_rules, totp_rules, login_rules):
        rules = make(ip="203.0.113.9", account=account)
        assert len(rules) == 2
        assert all(f":{kind}:" in rule.key for rule, kind in zip(rules, ("ip", "account"), strict=True))
    with pytest.raises(ValueError, match="account_key"):
        login_rules(ip="203.0.113.9", account="alice@example.com")  # raw emails never reach Redis


async def test_ipv6_neighbours_share_one_budget(store: KeyValueStore, raw: redis.asyncio.Redis) -> None:
    # A fresh documentation /64 per run, so the real policy keys do not collide across runs.
    prefix = f"2001:db8:{uuid.uuid4().int % 0xFFFF:x}:1"
    account = account_key(f"{uuid.uuid4().hex}@example.com")
    keys = [rule.key for rule in signup_rules(ip=f"{prefix}::1")]
    try:
        for host in range(1, 6):
            await enforce(rules=signup_rules(ip=f"{prefix}::{host:x}"), store=store)
        with pytest.raises(RateLimited):
            await enforce(rules=signup_rules(ip=f"{prefix}:ffff:ffff:ffff:ffff"), store=store)
        # The next /64 is someone else.
        await enforce(rules=signup_rules(ip=f"{prefix[:-1]}2::1"), store=store)
        keys += [rule.key for rule in signup_rules(ip=f"{prefix[:-1]}2::1")]
        await enforce(rules=login_rules(ip=f"{prefix}::1", account=account), store=store)
        keys += [rule.key for rule in login_rules(ip=f"{prefix}::1", account=account)]
    finally:
        await raw.delete(*(f"rl:{key}" for key in keys))


# --- lockout -----------------------------------------------------------------------------------------


@pytest.fixture
def lockout(ns: str) -> Lockout:
    """The login policy under a name of this test's own."""
    return Lockout(ns)


async def test_lockout_progression(
    store: KeyValueStore, raw: redis.asyncio.Redis, lockout: Lockout, ns: str
) -> None:
    account = account_key("victim@example.com")
    lock_key, failures_key = f"lock:{ns}:{account}:until", f"lock:{ns}:{account}:failures"
    assert await lockout.check(store, account) is None
    for _ in range(4):
        assert await lockout.record_failure(store, account) is None
    assert await lockout.check(store, account) is None
    assert 86_390 <= await raw.ttl(failures_key) <= 86_400  # failures are remembered for a day

    # Fifth failure: one minute.
    assert await lockout.record_failure(store, account) == 60
    assert await lockout.check(store, account) == 60
    assert 59_000 < await raw.pttl(lock_key) <= 60_000

    # The lock ends (no sleeping: it is the key's TTL) and the next failure locks for two minutes.
    await raw.delete(lock_key)
    assert await lockout.check(store, account) is None
    assert await lockout.record_failure(store, account) == 120
    assert 119_000 < await raw.pttl(lock_key) <= 120_000
    # A failure racing in while locked still counts and doubles again.
    assert await lockout.record_failure(store, account) == 240
    assert 239 <= (await lockout.check(store, account) or 0) <= 240

    # Doubling stops at an hour, however many failures.
    await raw.set(failures_key, 1_000)
    assert await lockout.record_failure(store, account) == 3600
    assert 3_599_000 < await raw.pttl(lock_key) <= 3_600_000


async def test_a_longer_lock_is_never_shortened(
    store: KeyValueStore, raw: redis.asyncio.Redis, lockout: Lockout, ns: str
) -> None:
    account = account_key("racer@example.com")
    await raw.set(f"lock:{ns}:{account}:until", 1, px=600_000)
    for _ in range(5):
        await lockout.record_failure(store, account)
    # The fifth failure would lock for a minute; the ten-minute lock stays.
    assert 599 <= (await lockout.check(store, account) or 0) <= 600


async def test_clear_resets_everything(store: KeyValueStore, lockout: Lockout) -> None:
    account = account_key("owner@example.com")
    for _ in range(6):
        await lockout.record_failure(store, account)
    assert await lockout.check(store, account) == 120
    await lockout.clear(store, account)  # a successful login or a completed password reset
    assert await lockout.check(store, account) is None
    # The count starts over: four failures lock nothing, the fifth locks for the first minute again.
    for _ in range(4):
        assert await lockout.record_failure(store, account) is None
    assert await lockout.record_failure(store, account) == 60


async def test_lockout_is_the_same_for_unknown_accounts_and_per_policy(
    store: KeyValueStore, raw: redis.asyncio.Redis
) -> None:
    # Keys depend on the hashed email only; nothing is looked up, so a made-up address locks alike.
    account = account_key(f"nobody-{uuid.uuid4().hex}@example.com")
    try:
        for _ in range(5):
            await LOGIN_LOCKOUT.record_failure(store, account)
        assert await LOGIN_LOCKOUT.check(store, account) == 60
        assert await TOTP_LOCKOUT.check(store, account) is None  # separate counters
        with pytest.raises(ValueError, match="account_key"):
            await LOGIN_LOCKOUT.check(store, "nobody@example.com")
    finally:
        await LOGIN_LOCKOUT.clear(store, account)
    assert await raw.exists(f"lock:login:{account}:failures", f"lock:login:{account}:until") == 0


async def test_concurrent_failures_all_count(
    store: KeyValueStore, raw: redis.asyncio.Redis, lockout: Lockout, ns: str
) -> None:
    account = account_key("crowd@example.com")
    started = time.monotonic()
    results = await asyncio.gather(*(lockout.record_failure(store, account) for _ in range(8)))
    assert time.monotonic() - started < 5
    # Exactly failures 5..8 locked, each longer than the one before; the lock in force is the longest.
    assert sorted(r for r in results if r is not None) == [60, 120, 240, 480]
    assert results.count(None) == 4
    assert await raw.get(f"lock:{ns}:{account}:failures") == "8"
    assert 479 <= (await lockout.check(store, account) or 0) <= 480
