"""PostgreSQL through a psycopg 3 async pool, safe behind Supabase's transaction pooler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends

from shared.errors import Conflict, ServiceUnavailable
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
    # No startup "options" either: poolers drop or refuse them; the time limit is set per transaction.
    return {"prepare_threshold": None, "connect_timeout": settings.db_connect_timeout}


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


_UNREACHABLE = "The database is unreachable; try again shortly."


class DatabaseTimeout(ServiceUnavailable):
    """A statement ran past DB_STATEMENT_TIMEOUT_MS and was cancelled by the server."""

    code = "database_timeout"
    title = "Database timeout"


async def _begin(pool: AsyncConnectionPool, timeout_ms: int) -> tuple[Any, AsyncConnection[Any]]:
    """Check out a connection and open its transaction with the statement time limit."""
    from psycopg import OperationalError
    from psycopg_pool import PoolTimeout

    # SET LOCAL-style limit: the only kind a transaction pooler keeps. The same round trip proves the
    # pooled connection survived a serverless freeze; a dead one is dropped and replaced once.
    for attempt in (1, 2):
        checkout = pool.connection()
        try:
            conn: AsyncConnection[Any] = await checkout.__aenter__()
        except (PoolTimeout, OperationalError) as error:
            raise ServiceUnavailable(_UNREACHABLE) from error
        try:
            await conn.execute("select set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
        except OperationalError as error:
            await checkout.__aexit__(type(error), error, error.__traceback__)  # the pool discards it
            if attempt == 2:
                raise ServiceUnavailable(_UNREACHABLE) from error
            continue
        return checkout, conn
    raise AssertionError("unreachable")


async def transaction() -> AsyncIterator[AsyncConnection[Any]]:
    """FastAPI dependency: one transaction per request, committed before the response is sent."""
    from psycopg import IntegrityError, OperationalError
    from psycopg.errors import QueryCanceled

    checkout, conn = await _begin(await get_pool(), get_settings().db_statement_timeout_ms)
    try:
        yield conn
    except BaseException as error:
        await checkout.__aexit__(type(error), error, error.__traceback__)
        if isinstance(error, QueryCanceled):  # a subclass of OperationalError, but the server is fine
            raise DatabaseTimeout("The request took too long in the database and was stopped.") from error
        if isinstance(error, OperationalError):
            raise ServiceUnavailable(_UNREACHABLE) from error
        raise
    try:
        await checkout.__aexit__(None, None, None)  # commits
    except IntegrityError as error:  # a deferred constraint failed at COMMIT: nothing was saved
        raise Conflict("The change conflicts with data saved meanwhile; nothing was saved.") from error
    except OperationalError as error:
        raise ServiceUnavailable("The database connection was lost; the change may not be saved.") from error


if TYPE_CHECKING:
    Tx = AsyncConnection[Any]
else:
    Tx = Annotated[Any, Depends(transaction, scope="function")]


async def fetch_one(conn: AsyncConnection[Any], query: Any, params: Any = None) -> dict[str, Any] | None:
    """Run a query and return its first row as a dict (None when there is none)."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


async def fetch_all(conn: AsyncConnection[Any], query: Any, params: Any = None) -> list[dict[str, Any]]:
    """Run a query and return every row as a dict."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()
