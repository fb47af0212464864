"""Health checks of every dependency, run concurrently, each bounded in time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shared.health import repository
from shared.health.schemas import CheckResult, HealthReport
from shared.settings import Settings

CHECK_TIMEOUT_SECONDS = 3.0
logger = logging.getLogger("cinema.health")


async def _database() -> dict[str, Any]:
    from shared.infra.db import get_pool

    pool = await get_pool()
    async with pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as conn:
        return await repository.database_facts(conn)


async def _redis() -> dict[str, Any]:
    from shared.infra.redis import get_redis

    store = await get_redis()
    if not await store.ping():
        raise RuntimeError("PING was not answered")
    return {}


async def _storage() -> dict[str, Any]:
    from shared.infra.storage import get_storage

    await (await get_storage()).check()
    return {}


async def _queue() -> dict[str, Any]:
    from shared.infra.queue import get_queue

    stats = await (await get_queue()).check()
    return {"queued": stats.queued, "in_flight": stats.in_flight, "dead": stats.dead}


async def _run(name: str, check: Callable[[], Awaitable[dict[str, Any]]], backend: str) -> CheckResult:
    started = time.perf_counter()
    try:
        info = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is a "down", reported, never raised
        # The endpoint is public: hosts, users and server replies go to the log, not to the client.
        logger.warning("health check failed: %s", name, exc_info=True, extra={"check": name})
        timed_out = isinstance(error, TimeoutError)
        detail = f"no answer within {CHECK_TIMEOUT_SECONDS:g} s" if timed_out else "unreachable or failing"
        return CheckResult(status="fail", latency_ms=_ms(started), backend=backend, detail=detail)
    return CheckResult(status="pass", latency_ms=_ms(started), backend=backend, info=info)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _backends(settings: Settings) -> dict[str, str]:
    redis = "upstash" if settings.upstash_redis_rest_url else "redis" if settings.redis_url else "embedded"
    return {
        "database": "postgres" if settings.database_url else "embedded-postgres",
        "redis": redis,
        "storage": settings.storage_backend,
        "queue": settings.queue_backend,
    }


async def check_health(*, settings: Settings) -> HealthReport:
    """Check database, redis, storage and queue; the report names every dependency that is down."""
    backends = _backends(settings)
    checks = {"database": _database, "redis": _redis, "storage": _storage, "queue": _queue}
    results = await asyncio.gather(*(_run(name, check, backends[name]) for name, check in checks.items()))
    by_name = dict(zip(checks, results, strict=True))
    down = [name for name, result in by_name.items() if result.status == "fail"]
    return HealthReport(
        status="fail" if down else "pass", version=settings.version, down=down, checks=by_name
    )
