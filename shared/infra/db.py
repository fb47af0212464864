"""PostgreSQL through a psycopg 3 async pool, safe behind Supabase's transaction pooler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends

from shared.errors import Conflict, ServiceUnavailable, ValidationFailed
from shared.infra.loop_local import LoopLocal
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("cinema.db")


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
            # search_path: Supabase installs extensions (pg_trgm, unaccent) in schema "extensions".
            await conn.execute(
                "select set_config('statement_timeout', %s, true), set_config('search_path', %s, true)",
                (f"{timeout_ms}ms", "public, extensions"),
            )
        except OperationalError as error:
            await checkout.__aexit__(type(error), error, error.__traceback__)  # the pool discards it
            if attempt == 2:
                raise ServiceUnavailable(_UNREACHABLE) from error
            continue
        return checkout, conn
    raise AssertionError("unreachable")


Write = Callable[["AsyncConnection[Any]"], Awaitable[None]]
Action = Callable[[], Awaitable[None]]


@dataclass
class _Pending:
    """Work a request's transaction runs besides the request's own: kept writes and after-commit actions."""

    writes: list[Write] = field(default_factory=list)
    after_commit: list[Action] = field(default_factory=list)
    open: bool = True  # False once the transaction ends: later calls no longer have a request to join


# Set by transaction() for the request. The var holds a mutable object that is appended to, never
# re-set, so code running in a copy of the context (a sync endpoint in the threadpool, a task started by
# the endpoint) reaches the same lists.
_pending: ContextVar[_Pending | None] = ContextVar("cinema_db_pending", default=None)


def _joinable() -> _Pending | None:
    pending = _pending.get()
    return pending if pending is not None and pending.open else None


async def write_despite_rollback(write: Write) -> None:
    """Save `write` even if the current request fails (failed logins' audit); at once outside a request."""
    # Inside a request it runs on the request's own connection when the transaction ends: a second
    # pooled connection per failing request would let a burst of failures (wrong passwords) exhaust the
    # pool while each request holds its first one, stalling every request on the instance.
    pending = _joinable()
    if pending is not None:
        pending.writes.append(write)
        return
    pool = await get_pool()
    async with pool.connection() as conn:  # commits on exit
        await write(conn)


def in_transaction() -> bool:
    """Whether a request's (or standalone) transaction of ours is open in this context."""
    return _joinable() is not None


async def after_commit(action: Action) -> None:
    """Run `action` (object storage clean-up) once the request's transaction commits; at once outside one."""
    pending = _joinable()
    if pending is not None:
        pending.after_commit.append(action)
        return
    await _run_actions([action])


async def _run_writes(conn: AsyncConnection[Any], writes: list[Write]) -> None:
    # A savepoint each: a failing write is logged and undone alone, the others and the request's work stay.
    for write in writes:
        try:
            async with conn.transaction():
                await write(conn)
        except Exception:
            logger.exception("a write kept despite the rollback failed; it is lost")


async def _run_actions(actions: list[Action]) -> None:
    # The data is already committed: a failed clean-up must not turn the answer into an error.
    for action in actions:
        try:
            await action()
        except Exception:
            logger.exception("an after-commit action failed")


async def _keep_writes(
    conn: AsyncConnection[Any], pending: _Pending, error: BaseException, timeout_ms: int
) -> None:
    """After a failure: roll back the request's work, then commit its kept writes on the same connection."""
    from psycopg import OperationalError
    from psycopg.errors import QueryCanceled

    if not pending.writes:
        return
    lost = isinstance(error, OperationalError) and not isinstance(error, QueryCanceled)
    if lost or conn.broken or conn.closed:
        logger.error(
            "database connection lost: %d write(s) kept despite the rollback are lost", len(pending.writes)
        )
        return
    try:
        await conn.rollback()
        await conn.execute("select set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
        await _run_writes(conn, pending.writes)
        await conn.commit()
    except Exception:  # never masks the request's own error
        logger.exception("could not save %d write(s) kept despite the rollback", len(pending.writes))


def _forget(token: Token[_Pending | None]) -> None:
    try:
        _pending.reset(token)
    except ValueError:  # torn down in another context than it was set up in: nothing leaks there
        _pending.set(None)


async def transaction() -> AsyncIterator[AsyncConnection[Any]]:
    """FastAPI dependency: one transaction per request, committed before the response is sent."""
    from psycopg import DataError, IntegrityError, OperationalError
    from psycopg.errors import QueryCanceled

    timeout_ms = get_settings().db_statement_timeout_ms
    checkout, conn = await _begin(await get_pool(), timeout_ms)
    pending = _Pending()
    token = _pending.set(pending)
    try:
        try:
            yield conn
        except BaseException as error:
            pending.open = False
            try:
                await _keep_writes(conn, pending, error, timeout_ms)
            finally:
                await checkout.__aexit__(type(error), error, error.__traceback__)
            if isinstance(error, QueryCanceled):  # a subclass of OperationalError, but the server is fine
                raise DatabaseTimeout("The request took too long in the database and was stopped.") from error
            if isinstance(error, OperationalError):
                raise ServiceUnavailable(_UNREACHABLE) from error
            if isinstance(error, DataError):
                # SQLSTATE class 22: a value the database cannot take (a NUL byte in text, an out-of-range
                # number) came from the request. Bad input, answered as such rather than as a 500.
                logger.warning("request data refused by the database: %s", error)
                raise ValidationFailed(
                    "A value in the request cannot be stored or searched (e.g. it contains a NUL character).",
                    code="invalid_value",
                ) from error
            raise
        pending.open = False
        await _run_writes(conn, pending.writes)  # in the request's transaction, committed with it
        try:
            await checkout.__aexit__(None, None, None)  # commits and returns the connection
        except IntegrityError as error:  # a deferred constraint failed at COMMIT: nothing was saved
            raise Conflict("The change conflicts with data saved meanwhile; nothing was saved.") from error
        except OperationalError as error:
            raise ServiceUnavailable(
                "The database connection was lost; the change may not be saved."
            ) from error
        await _run_actions(pending.after_commit)
    finally:
        pending.open = False
        _forget(token)


if TYPE_CHECKING:
    Tx = AsyncConnection[Any]
else:
    Tx = Annotated[Any, Depends(transaction, scope="function")]


@asynccontextmanager
async def standalone() -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection in a transaction of its own, committed when the block ends (rolled back on error).

    For work outside a request (heartbeats open none, maintenance, workers) or that must not ride on the
    request's transaction, like audit.record_standalone: the same rules as the request's Tx (statement
    time limit, search_path, errors mapped to problems), and after_commit() inside the block runs once
    THIS transaction commits. Never use it to commit part of a request's own work early.
    """
    # The request dependency itself, driven as a context manager: one implementation of the rules.
    async with asynccontextmanager(transaction)() as conn:
        yield conn


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
