"""The Redis interface, one suite over both backends against the run's real Redis server: redis-py on
REDIS_URL, and Upstash REST through the local bridge (tests/support/upstash_bridge.py) in front of the
same server. Every assertion checks values and their Python types, so both backends must agree exactly."""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from shared.errors import ServiceUnavailable
from shared.infra.redis import (
    KeyValueStore,
    RedisCommandError,
    RedisPyStore,
    RedisUnavailable,
    Script,
    UpstashStore,
    create_store,
)
from shared.local.services import stop_embedded_redis
from shared.settings import get_settings
from tests.support.upstash_bridge import UNAUTHORIZED, UpstashBridge

BACKENDS = ["redis-py", "upstash"]

# Strings that trip up encoders: NUL and CR/LF (RESP framing), JSON escapes, what base64 decoding or the
# SDK's "OK" shortcut could confuse, non-ASCII in 2-, 3- and 4-byte UTF-8, and the empty string.
AWKWARD = [
    "plain",
    "",
    " padded ",
    "nul\x00inside\x00",
    "line\r\nbreak\n",
    'quote " backslash \\ slash /',
    "héllo wörld ÿ",
    "日本語の字幕",
    "🎬🍿 emoji",
    "e\u0301 combining, \u2028 separator",
    "OK",
    "PONG",
    "T0s=",
    "null",
    "-1",
    "x" * 70_000,
]

# "Take a slot if fewer than N hold one": the check and the claim must happen as one step.
TAKE_SLOT = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Compare-and-set across two keys: move a value only if the source still holds what the caller saw.
COMPARE_AND_MOVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""


def assert_exact(actual: Any, expected: Any) -> None:
    """Equal, and of the same Python types all the way down (1 == True would hide a backend mismatch)."""
    assert actual == expected
    assert type(actual) is type(expected), (
        f"{actual!r}: {type(actual).__name__}, not {type(expected).__name__}"
    )
    if isinstance(expected, list | tuple):
        for got, want in zip(actual, expected, strict=True):
            assert_exact(got, want)
    elif isinstance(expected, dict):
        for name, want in expected.items():
            assert_exact(actual[name], want)
    elif isinstance(expected, set):
        assert all(type(item) is str for item in actual)


def make_store(backend: str, redis_url: str, bridge: tuple[str, str], **options: float) -> KeyValueStore:
    if backend == "redis-py":
        return RedisPyStore(redis_url, **options)
    url, token = bridge
    return UpstashStore(url, token, **options)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the same server, to arrange and inspect state behind the store's back."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def ns(raw: redis.asyncio.Redis) -> AsyncIterator[str]:
    """A key prefix for this test alone; its keys go afterwards (the test server outlives the run)."""
    prefix = f"test:redis:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in raw.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await raw.delete(*keys)


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, redis_url: str, upstash_bridge: tuple[str, str]
) -> AsyncIterator[KeyValueStore]:
    """The store under test, once per backend."""
    store = make_store(request.param, redis_url, upstash_bridge)
    yield store
    await store.close()


@pytest.fixture
async def both(redis_url: str, upstash_bridge: tuple[str, str]) -> AsyncIterator[list[KeyValueStore]]:
    """Both backends at once, to compare them side by side."""
    stores = [make_store(backend, redis_url, upstash_bridge) for backend in BACKENDS]
    yield stores
    for store in stores:
        await store.close()


# --- strings, counters, TTLs -------------------------------------------------------------------------


async def test_ping(store: KeyValueStore) -> None:
    assert_exact(await store.ping(), True)


async def test_get_and_set(store: KeyValueStore, ns: str) -> None:
    assert await store.get(f"{ns}missing") is None
    assert_exact(await store.set(f"{ns}k", "v1"), True)
    assert_exact(await store.get(f"{ns}k"), "v1")
    assert_exact(await store.set(f"{ns}k", "v2"), True)
    assert_exact(await store.get(f"{ns}k"), "v2")
    # Numbers go in as text and come back as str on both backends.
    await store.set(f"{ns}int", 42)
    await store.set(f"{ns}float", 1.5)
    assert_exact(await store.mget(f"{ns}int", f"{ns}float"), ["42", "1.5"])


async def test_set_nx(store: KeyValueStore, ns: str) -> None:
    assert_exact(await store.set(f"{ns}lock", "first", nx=True), True)
    assert_exact(await store.set(f"{ns}lock", "second", nx=True), False)
    assert_exact(await store.get(f"{ns}lock"), "first")


async def test_set_ex_expire_and_ttl(store: KeyValueStore, ns: str) -> None:
    assert_exact(await store.set(f"{ns}session", "s", ex=100), True)
    ttl = await store.ttl(f"{ns}session")
    assert type(ttl) is int and 95 <= ttl <= 100
    assert_exact(await store.set(f"{ns}token", "t", ex=60, nx=True), True)
    assert_exact(await store.set(f"{ns}token", "t2", ex=60, nx=True), False)

    await store.set(f"{ns}plain", "p")
    assert_exact(await store.ttl(f"{ns}plain"), -1)
    assert_exact(await store.ttl(f"{ns}missing"), -2)
    assert_exact(await store.expire(f"{ns}plain", 30), True)
    assert 25 <= await store.ttl(f"{ns}plain") <= 30
    assert_exact(await store.expire(f"{ns}missing", 30), False)


async def test_short_ttl_really_expires(store: KeyValueStore, ns: str) -> None:
    await store.set(f"{ns}blink", "x", ex=1)
    assert await store.get(f"{ns}blink") == "x"
    await asyncio.sleep(1.2)
    assert await store.get(f"{ns}blink") is None


async def test_delete(store: KeyValueStore, ns: str) -> None:
    await store.set(f"{ns}a", "1")
    await store.set(f"{ns}b", "2")
    assert_exact(await store.delete(f"{ns}a", f"{ns}b", f"{ns}missing"), 2)
    assert_exact(await store.delete(f"{ns}a"), 0)
    assert_exact(await store.delete(), 0)
    assert await store.get(f"{ns}b") is None


async def test_incr(store: KeyValueStore, ns: str) -> None:
    assert_exact(await store.incr(f"{ns}n"), 1)
    assert_exact(await store.incr(f"{ns}n", 5), 6)
    assert_exact(await store.incr(f"{ns}n", -10), -4)
    assert_exact(await store.get(f"{ns}n"), "-4")


async def test_mget(store: KeyValueStore, ns: str) -> None:
    await store.set(f"{ns}a", "A")
    await store.set(f"{ns}c", "C")
    assert_exact(await store.mget(f"{ns}a", f"{ns}b", f"{ns}c", f"{ns}a"), ["A", None, "C", "A"])
    assert_exact(await store.mget(), [])


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
async def test_strings_round_trip_unchanged(store: KeyValueStore, ns: str, value: str) -> None:
    key = f"{ns}ключ:🎬:{value[:20]}"
    assert await store.set(key, value)
    assert_exact(await store.get(key), value)
    assert_exact(await store.mget(key, f"{ns}missing"), [value, None])
    await store.hset(f"{ns}hash", {value[:100]: value})
    assert_exact(await store.hgetall(f"{ns}hash"), {value[:100]: value})
    await store.sadd(f"{ns}set", value)
    assert_exact(await store.smembers(f"{ns}set"), {value})
    await store.zadd(f"{ns}zset", {value: 1.0})
    assert_exact(await store.zrangebyscore(f"{ns}zset", "-inf", "+inf"), [value])
    assert_exact(await store.eval("return {KEYS[1], ARGV[1]}", [key], [value]), [key, value])


# --- hashes, sets, sorted sets -----------------------------------------------------------------------


async def test_hash(store: KeyValueStore, ns: str) -> None:
    key = f"{ns}profile"
    assert_exact(await store.hgetall(key), {})
    assert_exact(await store.hset(key, {"name": "Ada", "age": 36, "score": 4.5}), 3)
    assert_exact(await store.hset(key, {"age": 37, "city": "London"}), 1)  # one new field, one update
    assert_exact(await store.hgetall(key), {"name": "Ada", "age": "37", "score": "4.5", "city": "London"})
    assert_exact(await store.hdel(key, "age", "missing"), 1)
    assert_exact(await store.hdel(key), 0)
    assert_exact(await store.hset(key, {}), 0)
    assert_exact(await store.hgetall(key), {"name": "Ada", "score": "4.5", "city": "London"})


async def test_set(store: KeyValueStore, ns: str) -> None:
    key = f"{ns}devices"
    assert_exact(await store.smembers(key), set())
    assert_exact(await store.sadd(key, "tv", "phone", 7), 3)
    assert_exact(await store.sadd(key, "tv", "tablet"), 1)
    assert_exact(await store.smembers(key), {"tv", "phone", "7", "tablet"})
    assert_exact(await store.srem(key, "phone", 7, "missing"), 2)
    assert_exact(await store.srem(key), 0)
    assert_exact(await store.sadd(key), 0)
    assert_exact(await store.smembers(key), {"tv", "tablet"})


async def test_sorted_set(store: KeyValueStore, ns: str) -> None:
    key = f"{ns}watched"
    assert_exact(await store.zrangebyscore(key, "-inf", "+inf"), [])
    assert_exact(await store.zrangebyscore_withscores(key, "-inf", "+inf"), [])
    assert_exact(await store.zadd(key, {"a": 1, "b": 2.5, "c": 3, "d": 4, "e": 1e10}), 5)
    assert_exact(await store.zadd(key, {"a": 0.5, "f": -1}), 1)  # "a" re-scored, "f" new
    assert_exact(await store.zadd(key, {}), 0)

    assert_exact(await store.zrangebyscore(key, "-inf", "+inf"), ["f", "a", "b", "c", "d", "e"])
    assert_exact(await store.zrangebyscore(key, 1, 3), ["b", "c"])
    assert_exact(await store.zrangebyscore(key, 0.5, 3), ["a", "b", "c"])  # bounds are inclusive
    assert_exact(await store.zrangebyscore(key, "(0.5", "(3"), ["b"])  # "(" excludes
    assert_exact(await store.zrangebyscore(key, "-inf", "+inf", count=2), ["f", "a"])
    assert_exact(await store.zrangebyscore(key, "-inf", "+inf", offset=2, count=2), ["b", "c"])
    assert_exact(await store.zrangebyscore(key, "-inf", "+inf", offset=4), ["d", "e"])
    assert_exact(
        await store.zrangebyscore_withscores(key, 0, "+inf", offset=1, count=3),
        [("b", 2.5), ("c", 3.0), ("d", 4.0)],
    )
    assert_exact(await store.zrangebyscore_withscores(key, 1e9, "+inf"), [("e", 1e10)])

    assert_exact(await store.zrem(key, "c", "missing"), 1)
    assert_exact(await store.zrem(key), 0)
    assert_exact(await store.zremrangebyscore(key, "-inf", 1), 2)  # "f" and "a"
    assert_exact(await store.zrangebyscore(key, "-inf", "+inf"), ["b", "d", "e"])


# --- Lua ---------------------------------------------------------------------------------------------


async def test_eval_reply_types(store: KeyValueStore, ns: str) -> None:
    assert_exact(await store.eval("return 1 + 1"), 2)
    assert_exact(await store.eval("return 3.9"), 3)  # Lua numbers come back as integers
    assert_exact(await store.eval("return 'text'"), "text")
    assert_exact(await store.eval("return false"), None)
    assert_exact(await store.eval("return {1, 'two', {3, 'four'}, false}"), [1, "two", [3, "four"], None])
    assert_exact(await store.eval("return {ok = 'DONE'}"), "DONE")  # a status reply
    assert_exact(await store.eval("return redis.call('SET', KEYS[1], 'v')", [f"{ns}k"]), "OK")
    assert_exact(await store.eval("return redis.call('GET', KEYS[1])", [f"{ns}missing"]), None)
    assert_exact(
        await store.eval(
            "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]}", [f"{ns}1", f"{ns}2"], [7, 0.25, "z"]
        ),
        [f"{ns}1", f"{ns}2", "7", "0.25", "z"],
    )


async def test_eval_compare_and_move_is_one_step(store: KeyValueStore, ns: str) -> None:
    source, target = f"{ns}source", f"{ns}target"
    await store.set(source, "v1")
    assert_exact(await store.eval(COMPARE_AND_MOVE, [source, target], ["stale"]), 0)
    assert_exact(await store.mget(source, target), ["v1", None])
    assert_exact(await store.eval(COMPARE_AND_MOVE, [source, target], ["v1"]), 1)
    assert_exact(await store.mget(source, target), [None, "v1"])


async def test_script_runs_by_sha_and_loads_itself_when_missing(
    store: KeyValueStore, ns: str, raw: redis.asyncio.Redis
) -> None:
    script = Script(f"-- {ns}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")  # new to the server
    assert await raw.script_exists(script.sha) == [False]
    assert_exact(await store.eval(script, [f"{ns}n"], [2]), 2)  # NOSCRIPT, then EVAL
    assert await raw.script_exists(script.sha) == [True]
    assert_exact(await store.eval(script, [f"{ns}n"], [3]), 5)  # EVALSHA alone


async def test_script_over_rest_sends_the_body_only_once(
    upstash_bridge_server: UpstashBridge, upstash_bridge: tuple[str, str], ns: str
) -> None:
    store = UpstashStore(*upstash_bridge)
    script = Script(f"-- {ns}\nreturn redis.call('INCR', KEYS[1])")
    try:
        for _ in range(3):
            await store.eval(script, [f"{ns}n"])
    finally:
        await store.close()
    sent = [command[0] for command in upstash_bridge_server.commands() if f"{ns}n" in command]
    assert sent == ["EVALSHA", "EVAL", "EVALSHA", "EVALSHA"]


async def test_take_slot_is_atomic_under_50_concurrent_callers(store: KeyValueStore, ns: str) -> None:
    limit, callers = 7, 50
    # A fresh script, so the callers also race through NOSCRIPT -> EVAL on first use.
    script = Script(f"-- {ns}\n{TAKE_SLOT}")
    key = f"{ns}slots"
    results = await asyncio.gather(
        *(store.eval(script, [key], [limit, f"caller-{i}", 60]) for i in range(callers))
    )
    assert sorted(results) == [0] * (callers - limit) + [1] * limit
    winners = {f"caller-{i}" for i, taken in enumerate(results) if taken == 1}
    assert_exact(await store.smembers(key), winners)
    # Full stays full.
    assert_exact(await store.eval(script, [key], [limit, "late", 60]), 0)


# --- errors ------------------------------------------------------------------------------------------


async def test_command_errors_are_not_outages(store: KeyValueStore, ns: str) -> None:
    await store.hset(f"{ns}hash", {"f": "v"})
    with pytest.raises(RedisCommandError) as caught:
        await store.incr(f"{ns}hash")
    error = caught.value
    assert error.reply.startswith("WRONGTYPE ")
    assert error.status == 500 and error.code == "redis_command_error"
    assert not isinstance(error, ServiceUnavailable)
    assert error.detail == "Redis command failed"  # what a client sees: no server internals
    assert str(error) == error.reply  # what logs and tracebacks show

    await store.set(f"{ns}text", "abc")
    with pytest.raises(RedisCommandError) as caught:
        await store.incr(f"{ns}text")
    assert caught.value.reply == "ERR value is not an integer or out of range"

    with pytest.raises(RedisCommandError) as caught:
        await store.eval("return error('boom')")
    assert caught.value.reply.startswith("ERR ") and "boom" in caught.value.reply

    with pytest.raises(RedisCommandError) as caught:
        await store.eval("return redis.error_reply('LIMIT too many sessions')")
    assert caught.value.reply == "LIMIT too many sessions"  # a script's own error code survives

    with pytest.raises(RedisCommandError):
        await store.eval(Script("this is not lua"))  # NOSCRIPT, then EVAL's compile error

    assert await store.ping()  # the store is still usable


async def test_non_utf8_reply_is_a_command_error(store: KeyValueStore) -> None:
    with pytest.raises(RedisCommandError) as caught:
        await store.eval("return '\\255\\254'")
    assert "UTF-8" in caught.value.reply
    assert await store.ping()


async def test_booleans_are_refused_before_sending(store: KeyValueStore, ns: str) -> None:
    with pytest.raises(TypeError):
        await store.set(f"{ns}flag", True)


async def test_both_backends_report_the_same_error_replies(both: list[KeyValueStore], ns: str) -> None:
    await both[0].hset(f"{ns}hash", {"f": "v"})
    await both[0].set(f"{ns}text", "abc")
    failures: list[Callable[[KeyValueStore], Awaitable[object]]] = [
        lambda s: s.incr(f"{ns}hash"),
        lambda s: s.incr(f"{ns}text"),
        lambda s: s.set(f"{ns}k", "v", ex=0),
        lambda s: s.zadd(f"{ns}z", {"m": float("nan")}),
        lambda s: s.zrangebyscore(f"{ns}z", "low", "high"),
        lambda s: s.eval("return error('boom')"),
        lambda s: s.eval("return redis.call('NOSUCHCOMMAND')"),
        lambda s: s.eval("return redis.error_reply('MINE custom')"),
        lambda s: s.eval("syntax error here"),
    ]
    for failure in failures:
        replies = []
        for store in both:
            with pytest.raises(RedisCommandError) as caught:
                await failure(store)
            replies.append(caught.value.reply)
        assert replies[0] == replies[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


UNREACHABLE: dict[str, Callable[[], KeyValueStore]] = {
    "redis-py-missing-unix-socket": lambda: RedisPyStore(
        f"unix://{tempfile.gettempdir()}/{uuid.uuid4().hex}.sock"
    ),
    "redis-py-closed-port": lambda: RedisPyStore("redis://127.0.0.1:1"),
    "upstash-closed-port": lambda: UpstashStore(f"http://127.0.0.1:{_free_port()}", "token"),
}


@pytest.mark.parametrize("make", list(UNREACHABLE.values()), ids=list(UNREACHABLE))
async def test_unreachable_server_is_redis_unavailable_fast(make: Callable[[], KeyValueStore]) -> None:
    store = make()
    calls: list[Callable[[], Awaitable[object]]] = [
        store.ping,
        lambda: store.get("k"),
        lambda: store.set("k", "v"),
        lambda: store.eval("return 1"),
        lambda: store.eval(Script("return 2")),
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(RedisUnavailable) as caught:
                await call()
            assert time.monotonic() - started < 3
            error = caught.value
            assert isinstance(error, ServiceUnavailable)
            assert error.status == 503 and error.code == "redis_unavailable"
            assert error.__cause__ is not None  # the driver's exception stays attached for the logs
            assert "127.0.0.1" not in error.detail and ".sock" not in error.detail  # nothing internal shown
    finally:
        await store.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts but nobody ever answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_hung_server_times_out_as_unavailable(backend: str, silent_port: int) -> None:
    url = f"redis://127.0.0.1:{silent_port}" if backend == "redis-py" else f"http://127.0.0.1:{silent_port}"
    store = make_store(backend, url, (url, "token"), timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await store.get("k")
        assert time.monotonic() - started < 3
    finally:
        await store.close()


async def test_upstash_wrong_token_is_unavailable(upstash_bridge: tuple[str, str]) -> None:
    store = UpstashStore(upstash_bridge[0], "not-the-token")
    try:
        with pytest.raises(RedisUnavailable) as caught:
            await store.ping()
        assert "WRONGPASS" in str(caught.value)
    finally:
        await store.close()


async def test_upstash_answer_that_is_not_json_is_unavailable(upstash_bridge: tuple[str, str]) -> None:
    url, token = upstash_bridge
    store = UpstashStore(f"{url}/not-upstash", token)  # a 404 page, as from a wrong URL or a proxy
    try:
        with pytest.raises(RedisUnavailable):
            await store.ping()
    finally:
        await store.close()


# --- backend choice ----------------------------------------------------------------------------------


async def test_create_store_prefers_upstash(
    settings_env: Callable[..., None],
    upstash_bridge: tuple[str, str],
    redis_url: str,
    ns: str,
    raw: redis.asyncio.Redis,
) -> None:
    url, token = upstash_bridge
    settings_env(UPSTASH_REDIS_REST_URL=url, UPSTASH_REDIS_REST_TOKEN=token, REDIS_URL=redis_url)
    store = create_store(get_settings())
    try:
        assert isinstance(store, UpstashStore)
        assert await store.set(f"{ns}k", "via upstash")
        assert await raw.get(f"{ns}k") == "via upstash"
    finally:
        await store.close()


async def test_create_store_uses_redis_url(
    settings_env: Callable[..., None], redis_url: str, ns: str, raw: redis.asyncio.Redis
) -> None:
    settings_env(REDIS_URL=redis_url, UPSTASH_REDIS_REST_URL=None, UPSTASH_REDIS_REST_TOKEN=None)
    store = create_store(get_settings())
    try:
        assert isinstance(store, RedisPyStore)
        assert await store.set(f"{ns}k", "via redis-py")
        assert await raw.get(f"{ns}k") == "via redis-py"
    finally:
        await store.close()


async def test_create_store_falls_back_to_embedded_redis(
    settings_env: Callable[..., None], ns: str, raw: redis.asyncio.Redis
) -> None:
    # A short path: unix socket paths are limited to ~100 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="cinema-redis-"))
    settings_env(
        REDIS_URL=None, UPSTASH_REDIS_REST_URL=None, UPSTASH_REDIS_REST_TOKEN=None, DATA_DIR=str(data_dir)
    )
    store = create_store(get_settings())
    try:
        assert isinstance(store, RedisPyStore)
        assert await store.set(f"{ns}k", "embedded")
        assert await store.get(f"{ns}k") == "embedded"
        assert (data_dir / "redis" / "redis.sock").exists()
        assert await raw.get(f"{ns}k") is None  # a server of its own, not the run's
    finally:
        await store.close()
        stop_embedded_redis(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the bridge speaks Upstash's protocol ------------------------------------------------------------


async def test_bridge_protocol(upstash_bridge: tuple[str, str], ns: str) -> None:
    url, token = upstash_bridge
    auth = {"Authorization": f"Bearer {token}"}
    b64 = {**auth, "Upstash-Encoding": "base64"}
    key, counter = f"{ns}k", f"{ns}n"
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/", json=["SET", key, "héllo"], headers=auth)
        assert (response.status_code, response.json()) == (200, {"result": "OK"})
        assert (await http.post("/", json=["GET", key], headers=auth)).json() == {"result": "héllo"}
        encoded = base64.b64encode("héllo".encode()).decode()
        assert (await http.post("/", json=["GET", key], headers=b64)).json() == {"result": encoded}
        assert (await http.post("/", json=["SET", key, "v"], headers=b64)).json() == {"result": "OK"}
        assert (await http.post("/", json=["MGET", key, f"{ns}none"], headers=b64)).json() == {
            "result": [base64.b64encode(b"v").decode(), None]
        }
        assert (await http.post("/", json=["INCRBY", counter, 5], headers=b64)).json() == {"result": 5}

        response = await http.post("/", json=["INCR", key], headers=auth)
        assert response.status_code == 400
        assert response.json() == {"error": "ERR value is not an integer or out of range"}

        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            response = await http.post("/", json=["PING"], headers=headers)
            assert (response.status_code, response.json()) == (401, {"error": UNAUTHORIZED})

        response = await http.post(
            "/pipeline",
            json=[["SET", counter, "1"], ["INCR", counter], ["HGET", counter, "f"], ["GET", counter]],
        )
        assert response.status_code == 401
        response = await http.post(
            "/pipeline",
            json=[["SET", counter, "1"], ["INCR", counter], ["HGET", counter, "f"], ["GET", counter]],
            headers=auth,
        )
        assert response.status_code == 200
        assert response.json() == [
            {"result": "OK"},
            {"result": 2},
            {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
            {"result": "2"},
        ]
        response = await http.post("/multi-exec", json=[["INCR", counter], ["INCR", counter]], headers=b64)
        assert response.json() == [{"result": 3}, {"result": 4}]


async def test_bridge_serves_the_sdk_pipelines(upstash_bridge: tuple[str, str], ns: str) -> None:
    from upstash_redis.asyncio import Redis

    client = Redis(*upstash_bridge, allow_telemetry=False)
    try:
        pipeline = client.pipeline()
        pipeline.set(f"{ns}k", "ü")
        pipeline.get(f"{ns}k")
        pipeline.incr(f"{ns}n")
        assert await pipeline.exec() == [True, "ü", 1]
        transaction = client.multi()
        transaction.incr(f"{ns}n")
        transaction.hset(f"{ns}h", values={"a": "1"})
        transaction.hgetall(f"{ns}h")
        assert await transaction.exec() == [2, 1, {"a": "1"}]
    finally:
        await client.close()


async def test_what_the_upstash_store_sends(
    upstash_bridge_server: UpstashBridge, upstash_bridge: tuple[str, str], ns: str
) -> None:
    store = UpstashStore(f"{upstash_bridge[0]}/", upstash_bridge[1])  # a trailing slash, as pydantic adds
    try:
        await store.set(f"{ns}k", 1.5, ex=30, nx=True)
    finally:
        await store.close()
    request = next(r for r in reversed(upstash_bridge_server.received) if f"{ns}k" in (r.body or []))
    assert request.path == "/"
    assert request.body == ["SET", f"{ns}k", "1.5", "EX", "30", "NX"]  # every argument as text
    assert request.headers["authorization"] == f"Bearer {upstash_bridge[1]}"
    assert request.headers["upstash-encoding"] == "base64"
    assert not [name for name in request.headers if name.startswith("upstash-telemetry")]
