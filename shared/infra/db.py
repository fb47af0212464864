"""PostgreSQL through a psycopg 3 async pool, safe behind Supabase's transaction pooler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends

from shared.errors import ServiceUnavailable
from shared.infra.loop_local import LoopLocal
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server's URL when running locally without one."""
    if settings.database_url:
        return settings.database_url
    from shared.local.services import embedded_postgres_url

    return embedded_postgres_url(settings.data_dir)


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Options every connection needs."""
    # prepare_threshold=None: pgbouncer in transaction mode cannot keep server-side prepared statements.
    options = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return {"prepare_threshold": None, "options": options, "connect_timeout": settings.db_connect_timeout}


async def _open_pool() -> AsyncConnectionPool:
    from psycopg_pool import AsyncConnectionPool

    settings = get_settings()
    pool = AsyncConnectionPool(
        database_url(settings),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs=connection_kwargs(settings),
        timeout=settings.db_connect_timeout,
        max_idle=60,
        open=False,
        name="cinema",
    )
    await pool.open(wait=False)
    return pool


_pool: LoopLocal[AsyncConnectionPool] = LoopLocal(_open_pool)


async def get_pool() -> AsyncConnectionPool:
    """The pool of the running loop, opened on first use (never in lifespan: Mangum runs it per call)."""
    return await _pool.get()


async def close_pool() -> None:
    """Close this loop's pool (tests and the CLI)."""
    pool = _pool.pop()
    if pool is not None:
        await pool.close()


async def transaction() -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency: one transaction per request, committed before the response is sent."""
    from psycopg import OperationalError
    from psycopg_pool import PoolTimeout

    pool = await get_pool()
    try:
        connection_cm = pool.connection()
        connection = await connection_cm.__aenter__()
    except (PoolTimeout, OperationalError) as error:
        raise ServiceUnavailable("The database is unreachable; try again shortly.") from error
    try:
        yield connection
    except BaseException as error:
        await connection_cm.__aexit__(type(error), error, error.__traceback__)
        raise
    else:
        await connection_cm.__aexit__(None, None, None)


if TYPE_CHECKING:
    Tx = AsyncConnection[Any]
else:
    Tx = Annotated[Any, Depends(transaction, scope="function")]
