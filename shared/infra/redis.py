"""One small async key-value interface over Redis, with a redis-py and an Upstash REST backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from shared.infra.loop_local import LoopLocal
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    import redis.asyncio
    import upstash_redis.asyncio

RedisValue = str | int | float


class KeyValueStore(Protocol):
    """What the platform needs from Redis; multi-key atomicity goes through `eval` (Lua)."""

    async def ping(self) -> bool:
        """Return True when the server answers."""
        ...

    async def get(self, key: str) -> str | None:
        """Return the value or None."""
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

    async def eval(self, script: str, keys: list[str], args: list[RedisValue]) -> Any:
        """Run a Lua script atomically; replies are decoded to str."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RedisPyStore:
    """redis-py asyncio client for redis://, rediss:// and unix:// URLs."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        import redis.asyncio

        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )

    async def ping(self) -> bool:
        """Return True when the server answers."""
        return bool(await self._client.ping())

    async def get(self, key: str) -> str | None:
        """Return the value or None."""
        value = await self._client.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: RedisValue, *, ex: int | None = None, nx: bool = False) -> bool:
        """Set a value; True when written."""
        return bool(await self._client.set(key, value, ex=ex, nx=nx))

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        return int(await self._client.delete(*keys)) if keys else 0

    async def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add to an integer value."""
        return int(await self._client.incrby(key, amount))

    async def expire(self, key: str, seconds: int) -> bool:
        """Set a TTL."""
        return bool(await self._client.expire(key, seconds))

    async def ttl(self, key: str) -> int:
        """Seconds left."""
        return int(await self._client.ttl(key))

    async def eval(self, script: str, keys: list[str], args: list[RedisValue]) -> Any:
        """Run a Lua script atomically."""
        return await self._client.eval(script, len(keys), *keys, *args)  # type: ignore[misc]

    async def close(self) -> None:
        """Release connections."""
        await self._client.aclose()


class UpstashStore:
    """Upstash REST client: one HTTPS request per command, which survives serverless freezes."""

    def __init__(self, url: str, token: str) -> None:
        from upstash_redis.asyncio import Redis

        # Telemetry off: no headers about our runtime leave the platform; retries are ours to decide.
        self._client: upstash_redis.asyncio.Redis = Redis(
            url, token, allow_telemetry=False, rest_retries=1, rest_retry_interval=0.2
        )

    async def ping(self) -> bool:
        """Return True when the server answers."""
        return str(await self._client.ping()) == "PONG"

    async def get(self, key: str) -> str | None:
        """Return the value or None."""
        value = await self._client.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: RedisValue, *, ex: int | None = None, nx: bool = False) -> bool:
        """Set a value; True when written."""
        return bool(await self._client.set(key, value, ex=ex, nx=nx))

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        return int(await self._client.delete(*keys)) if keys else 0

    async def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add to an integer value."""
        return int(await self._client.incrby(key, amount))

    async def expire(self, key: str, seconds: int) -> bool:
        """Set a TTL."""
        return bool(await self._client.expire(key, seconds))

    async def ttl(self, key: str) -> int:
        """Seconds left."""
        return int(await self._client.ttl(key))

    async def eval(self, script: str, keys: list[str], args: list[RedisValue]) -> Any:
        """Run a Lua script atomically (EVAL is one REST call)."""
        return await self._client.eval(script, keys=keys, args=[str(arg) for arg in args])

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
