"""One small async key-value interface over Redis, with a redis-py and an Upstash REST backend.

Both backends send the same commands with the same encoded arguments and convert replies in one place
(`_CommandStore`), so every method returns the same Python types whichever backend is configured.
Failures surface as two exceptions only: `RedisUnavailable` (503: the server cannot be reached, is
loading, refuses our credentials or is over quota) and `RedisCommandError` (500: the command itself
failed, e.g. a Lua error or WRONGTYPE).
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import AppError, ServiceUnavailable
from shared.infra.loop_local import LoopLocal
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    import redis.asyncio
    import upstash_redis.asyncio

RedisValue = str | int | float
# A sorted-set score bound: a number, or Redis syntax such as "-inf", "+inf" or "(5" (exclusive).
ScoreBound = float | str


class RedisUnavailable(ServiceUnavailable):
    """Redis cannot serve us right now (unreachable, timed out, loading, bad credentials, over quota)."""

    code = "redis_unavailable"
    title = "Redis unavailable"

    def __init__(self, reason: str) -> None:
        # Clients get a generic detail; the reason (addresses, server replies) is for str() and logs.
        super().__init__("Redis is temporarily unavailable; try again shortly.")
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class RedisCommandError(AppError):
    """The server rejected a command (Lua error, WRONGTYPE, syntax): a bug, not an outage."""

    code = "redis_command_error"
    title = "Redis command failed"

    def __init__(self, reply: str) -> None:
        # The reply stays out of `detail` (shown to clients) but is what str() and logs show.
        super().__init__()
        self.reply = reply

    def __str__(self) -> str:
        return self.reply


@dataclass(frozen=True)
class Script:
    """A Lua script run by SHA1 (EVALSHA), sent in full only when the server has not cached it yet."""

    lua: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.lua.encode(), usedforsecurity=False).hexdigest())


class KeyValueStore(Protocol):
    """What the platform needs from Redis; multi-key atomicity goes through `eval` (Lua)."""

    async def ping(self) -> bool:
        """Return True when the server answers."""
        ...

    async def get(self, key: str) -> str | None:
        """Return the value or None."""
        ...

    async def mget(self, *keys: str) -> list[str | None]:
        """Return the values of keys in order, None for missing ones."""
        ...

    async def set(self, key: str, value: RedisValue, *, ex: int | None = None, nx: bool = False) -> bool:
        """Set a value (optionally with a TTL in seconds / only if absent); True when written."""
        ...

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        ...

    async def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add to an integer value."""
        ...

    async def expire(self, key: str, seconds: int) -> bool:
        """Set a TTL; False when the key does not exist."""
        ...

    async def ttl(self, key: str) -> int:
        """Seconds left (-1 no TTL, -2 missing)."""
        ...

    async def hset(self, key: str, mapping: Mapping[str, RedisValue]) -> int:
        """Set hash fields; return how many were new."""
        ...

    async def hgetall(self, key: str) -> dict[str, str]:
        """Return every field of a hash ({} when missing)."""
        ...

    async def hdel(self, key: str, *fields: str) -> int:
        """Delete hash fields; return how many existed."""
        ...

    async def sadd(self, key: str, *members: RedisValue) -> int:
        """Add set members; return how many were new."""
        ...

    async def srem(self, key: str, *members: RedisValue) -> int:
        """Remove set members; return how many existed."""
        ...

    async def smembers(self, key: str) -> builtins.set[str]:
        """Return every member of a set."""
        ...

    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        """Add or re-score sorted-set members; return how many were new."""
        ...

    async def zrem(self, key: str, *members: str) -> int:
        """Remove sorted-set members; return how many existed."""
        ...

    async def zrangebyscore(
        self,
        key: str,
        min_score: ScoreBound,
        max_score: ScoreBound,
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> list[str]:
        """Members with min_score <= score <= max_score, lowest first, optionally a page of them."""
        ...

    async def zrangebyscore_withscores(
        self,
        key: str,
        min_score: ScoreBound,
        max_score: ScoreBound,
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[str, float]]:
        """Like zrangebyscore, as (member, score) pairs."""
        ...

    async def zremrangebyscore(self, key: str, min_score: ScoreBound, max_score: ScoreBound) -> int:
        """Remove members within the score range; return how many."""
        ...

    async def eval(
        self, script: str | Script, keys: Sequence[str] = (), args: Sequence[RedisValue] = ()
    ) -> Any:
        """Run a Lua script atomically (a Script goes by EVALSHA); replies are decoded to str."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _arg(value: RedisValue) -> str:
    """Encode an argument once, identically for both backends."""
    if isinstance(value, bool):
        # Both clients would encode True differently ("True", "true" or an error): make callers choose.
        raise TypeError("pass booleans to Redis as 0/1 or a string")
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form; "inf"/"-inf" are valid scores
    return str(value)


def _bound(value: ScoreBound) -> str:
    return value if isinstance(value, str) else _arg(value)


def _range_args(
    key: str, min_score: ScoreBound, max_score: ScoreBound, offset: int, count: int | None
) -> list[str]:
    args = [key, _bound(min_score), _bound(max_score)]
    if offset or count is not None:
        # LIMIT needs both; a negative count means "to the end".
        args += ["LIMIT", str(offset), str(-1 if count is None else count)]
    return args


# Error replies meaning "the server cannot take this now" rather than "this command is wrong": the first
# word is Redis's error code (loading, failover, a busy script, credentials, out of memory); the prefixes
# are Upstash's quota errors, which all start with "ERR". ("Unauthorized" is older Upstash's 401 body.)
_UNAVAILABLE_CODES = frozenset(
    {
        "LOADING",
        "MASTERDOWN",
        "READONLY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "BUSY",
        "NOAUTH",
        "WRONGPASS",
        "OOM",
        "Unauthorized",
    }
)
_UNAVAILABLE_PREFIXES = (
    "ERR max requests limit exceeded",
    "ERR max daily request limit exceeded",
    "ERR max concurrent connections exceeded",
    "ERR max number of clients reached",
    "ERR DB capacity quota exceeded",
)


def _reply_error(reply: str) -> RedisUnavailable | RedisCommandError:
    """Classify an error reply from either backend."""
    if reply.split(" ", 1)[0] in _UNAVAILABLE_CODES or reply.startswith(_UNAVAILABLE_PREFIXES):
        return RedisUnavailable(f"Redis refused the request: {reply}")
    return RedisCommandError(reply)


class _CommandStore:
    """The KeyValueStore methods, written once over a backend's raw `_execute`."""

    async def _execute(self, *args: str) -> Any:
        """Send one command; return the reply decoded to str/int/list/None or raise our errors."""
        raise NotImplementedError

    async def ping(self) -> bool:
        """Return True when the server answers."""
        return await self._execute("PING") in ("PONG", True)

    async def get(self, key: str) -> str | None:
        """Return the value or None."""
        value = await self._execute("GET", key)
        return None if value is None else str(value)

    async def mget(self, *keys: str) -> list[str | None]:
        """Return the values of keys in order, None for missing ones."""
        if not keys:
            return []
        return [None if value is None else str(value) for value in await self._execute("MGET", *keys)]

    async def set(self, key: str, value: RedisValue, *, ex: int | None = None, nx: bool = False) -> bool:
        """Set a value (optionally with a TTL in seconds / only if absent); True when written."""
        args = ["SET", key, _arg(value)]
        if ex is not None:
            args += ["EX", str(ex)]
        if nx:
            args.append("NX")
        # redis-py hands back the raw "OK" (None when NX refused); the Upstash SDK turns it into a bool.
        reply = await self._execute(*args)
        return reply is True or reply == "OK"

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        return int(await self._execute("DEL", *keys)) if keys else 0

    async def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add to an integer value."""
        return int(await self._execute("INCRBY", key, str(amount)))

    async def expire(self, key: str, seconds: int) -> bool:
        """Set a TTL; False when the key does not exist."""
        return bool(await self._execute("EXPIRE", key, str(seconds)))

    async def ttl(self, key: str) -> int:
        """Seconds left (-1 no TTL, -2 missing)."""
        return int(await self._execute("TTL", key))

    async def hset(self, key: str, mapping: Mapping[str, RedisValue]) -> int:
        """Set hash fields; return how many were new."""
        if not mapping:
            return 0
        args = [part for name, value in mapping.items() for part in (name, _arg(value))]
        return int(await self._execute("HSET", key, *args))

    async def hgetall(self, key: str) -> dict[str, str]:
        """Return every field of a hash ({} when missing)."""
        reply = await self._execute("HGETALL", key)
        if isinstance(reply, dict):  # the Upstash SDK pairs the flat reply up itself
            return {str(name): str(value) for name, value in reply.items()}
        return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply), 2)}

    async def hdel(self, key: str, *fields: str) -> int:
        """Delete hash fields; return how many existed."""
        return int(await self._execute("HDEL", key, *fields)) if fields else 0

    async def sadd(self, key: str, *members: RedisValue) -> int:
        """Add set members; return how many were new."""
        return int(await self._execute("SADD", key, *map(_arg, members))) if members else 0

    async def srem(self, key: str, *members: RedisValue) -> int:
        """Remove set members; return how many existed."""
        return int(await self._execute("SREM", key, *map(_arg, members))) if members else 0

    async def smembers(self, key: str) -> builtins.set[str]:
        """Return every member of a set."""
        return {str(member) for member in await self._execute("SMEMBERS", key)}

    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        """Add or re-score sorted-set members; return how many were new."""
        if not mapping:
            return 0
        args = [part for member, score in mapping.items() for part in (_arg(score), member)]
        return int(await self._execute("ZADD", key, *args))

    async def zrem(self, key: str, *members: str) -> int:
        """Remove sorted-set members; return how many existed."""
        return int(await self._execute("ZREM", key, *members)) if members else 0

    async def zrangebyscore(
        self,
        key: str,
        min_score: ScoreBound,
        max_score: ScoreBound,
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> list[str]:
        """Members with min_score <= score <= max_score, lowest first, optionally a page of them."""
        reply = await self._execute("ZRANGEBYSCORE", *_range_args(key, min_score, max_score, offset, count))
        return [str(member) for member in reply]

    async def zrangebyscore_withscores(
        self,
        key: str,
        min_score: ScoreBound,
        max_score: ScoreBound,
        *,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[str, float]]:
        """Like zrangebyscore, as (member, score) pairs."""
        args = _range_args(key, min_score, max_score, offset, count)
        reply = await self._execute("ZRANGEBYSCORE", *args[:3], "WITHSCORES", *args[3:])
        if reply and isinstance(reply[0], tuple | list):  # the Upstash SDK pairs them up itself
            return [(str(member), float(score)) for member, score in reply]
        return [(str(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]

    async def zremrangebyscore(self, key: str, min_score: ScoreBound, max_score: ScoreBound) -> int:
        """Remove members within the score range; return how many."""
        return int(await self._execute("ZREMRANGEBYSCORE", key, _bound(min_score), _bound(max_score)))

    async def eval(
        self, script: str | Script, keys: Sequence[str] = (), args: Sequence[RedisValue] = ()
    ) -> Any:
        """Run a Lua script atomically (a Script goes by EVALSHA); replies are decoded to str."""
        tail = (str(len(keys)), *keys, *map(_arg, args))
        if isinstance(script, str):
            return await self._execute("EVAL", script, *tail)
        try:
            # 40 bytes instead of the whole script: matters per request over REST.
            return await self._execute("EVALSHA", script.sha, *tail)
        except RedisCommandError as error:
            if not error.reply.startswith("NOSCRIPT"):
                raise
        # Not cached (first use, restart, failover, SCRIPT FLUSH): EVAL runs it and caches it again.
        return await self._execute("EVAL", script.lua, *tail)

    async def close(self) -> None:
        """Release connections."""
        raise NotImplementedError


def _from_redis_py(error: Exception) -> RedisUnavailable | RedisCommandError:
    """Map a redis-py exception (imported here: only the error path needs the classes)."""
    from redis import exceptions

    if isinstance(error, exceptions.ResponseError):
        return _reply_error(_redis_py_reply(error))
    if isinstance(error, exceptions.ConnectionError | exceptions.TimeoutError):
        return RedisUnavailable(f"Redis is unreachable: {error}")
    # Protocol errors and the like: whatever answered is not a Redis we can talk to.
    return RedisUnavailable(f"Redis failed: {error!r}")


def _redis_py_reply(error: Exception) -> str:
    """The error reply as the server sent it: redis-py strips the code of the errors it knows."""
    from redis import exceptions

    message = str(error)
    for cls, code in (
        (exceptions.NoScriptError, "NOSCRIPT"),
        (exceptions.ExecAbortError, "EXECABORT"),
        (exceptions.ReadOnlyError, "READONLY"),
        (exceptions.NoPermissionError, "NOPERM"),
        (exceptions.OutOfMemoryError, "OOM"),
        (exceptions.MasterDownError, "MASTERDOWN"),
        (exceptions.TryAgainError, "TRYAGAIN"),
        (exceptions.ClusterDownError, "CLUSTERDOWN"),
        (exceptions.ClusterCrossSlotError, "CROSSSLOT"),
    ):
        if isinstance(error, cls):
            return f"{code} {message}"
    # A plain ResponseError lost "ERR " unless its reply had another code, which stays (all capitals);
    # an ERR message that itself starts with a capitalised word ("ERR EXEC without MULTI") is misread.
    first = message.split(" ", 1)[0]
    return message if len(first) > 1 and first.isalpha() and first.isupper() else f"ERR {message}"


class RedisPyStore(_CommandStore):
    """redis-py asyncio client for redis://, rediss:// and unix:// URLs."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        import redis.asyncio
        import redis.exceptions
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._redis_error: type[Exception] = redis.exceptions.RedisError
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url,
            decode_responses=True,
            # RESP2, as Upstash's REST API answers: RESP3 would bring maps, sets, doubles and booleans.
            protocol=2,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            # One immediate retry when the connection drops (typically a pooled socket that went stale
            # while the function was frozen, so the command never reached the server); none on timeouts,
            # which would double the wait and may repeat a write the server already applied.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )
        # Raw replies, as the Upstash backend gets them: _CommandStore does all conversions itself.
        self._client.response_callbacks.clear()

    async def _execute(self, *args: str) -> Any:
        try:
            # redis-py leaves execute_command unannotated.
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        except self._redis_error as error:
            raise _from_redis_py(error) from error
        except UnicodeDecodeError as error:
            raise RedisCommandError("reply is not UTF-8 text") from error

    async def close(self) -> None:
        """Release connections."""
        await self._client.aclose()


class UpstashStore(_CommandStore):
    """Upstash REST client: one HTTPS request per command, which survives serverless freezes."""

    def __init__(self, url: str, token: str, *, timeout: float = 3.0) -> None:
        import httpx
        from upstash_redis.asyncio import Redis
        from upstash_redis.errors import UpstashError

        self._transport_errors = (httpx.HTTPError, json.JSONDecodeError, KeyError)
        self._upstash_error = UpstashError
        # The SDK's HTTP client has no timeout; this bounds each call, retry included.
        self._timeout = timeout
        # Telemetry off: no headers about our runtime leave the platform; retries are ours to decide.
        # The URL loses any trailing slash, else the SDK posts to "//pipeline".
        self._client: upstash_redis.asyncio.Redis = Redis(
            url.rstrip("/"), token, allow_telemetry=False, rest_retries=1, rest_retry_interval=0.2
        )

    async def _execute(self, *args: str) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._client.execute(list(args))
        except self._upstash_error as error:
            raise _reply_error(str(error)) from error
        except UnicodeDecodeError as error:
            raise RedisCommandError("reply is not UTF-8 text") from error
        except TimeoutError as error:
            raise RedisUnavailable(f"Upstash did not answer within {self._timeout:g} s") from error
        except self._transport_errors as error:
            # Connection refused/reset, TLS, read errors; or an answer that is not Upstash's JSON
            # (a proxy's HTML error page, a wrong URL).
            raise RedisUnavailable(f"Upstash is unreachable: {error!r}") from error

    async def close(self) -> None:
        """Release connections."""
        await self._client.close()


def create_store(settings: Settings) -> KeyValueStore:
    """Pick the backend from settings: Upstash REST, REDIS_URL, else the embedded server."""
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        return UpstashStore(str(settings.upstash_redis_rest_url), settings.upstash_redis_rest_token)
    if settings.redis_url:
        return RedisPyStore(settings.redis_url)
    from shared.local.services import embedded_redis_url

    return RedisPyStore(embedded_redis_url(settings.data_dir))


async def _create() -> KeyValueStore:
    return create_store(get_settings())


_store: LoopLocal[KeyValueStore] = LoopLocal(_create)


async def get_redis() -> KeyValueStore:
    """The store of the running loop, created on first use."""
    return await _store.get()


async def close_redis() -> None:
    """Close this loop's store (tests and the CLI)."""
    store = _store.pop()
    if store is not None:
        await store.close()
