"""The sandbox's objects (rows of sandbox_payment_objects), written on a connection of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from shared.payments.providers.base import ObjectNotFound

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]

Obj = dict[str, Any]

# The events recorded inside the current external() block (None outside one).
emitted_events: ContextVar[list[str] | None] = ContextVar("sandbox_emitted", default=None)


@asynccontextmanager
async def external() -> AsyncIterator[Conn]:
    """A transaction on a connection of the sandbox's own, committed when the block ends.

    Not a pooled one: a request that holds a pooled connection while it waits on the sandbox must not
    also wait for a second one (parallel requests would starve the pool; Stripe never takes one). Once
    committed, the events it recorded are delivered after the calling request commits (at once outside
    a request), like webhooks following Stripe's answer.
    """
    import psycopg

    from shared.infra.db import after_commit, connection_kwargs, database_url, in_transaction
    from shared.settings import get_settings

    settings = get_settings()
    emitted: list[str] = []
    token = emitted_events.set(emitted)
    try:
        async with (
            await psycopg.AsyncConnection.connect(
                database_url(settings), **connection_kwargs(settings)
            ) as conn,
            conn.transaction(),
        ):
            yield conn
    finally:
        emitted_events.reset(token)
    if emitted and in_transaction():
        # Imported here: delivery needs the provider, which needs this module.
        from shared.payments.sandbox.delivery import deliver_after_commit

        await after_commit(deliver_after_commit)


async def load_object(conn: Conn, object_id: str, kind: str, *, lock: bool = False) -> Obj | None:
    """The object by id and kind, locked FOR UPDATE when asked (None when there is none)."""
    from shared.infra.db import fetch_one

    query = "select data from public.sandbox_payment_objects where id = %s and kind = %s"
    row = await fetch_one(conn, query + (" for update" if lock else ""), (object_id, kind))
    return None if row is None else dict(row["data"])


async def require_object(conn: Conn, object_id: str, kind: str, *, lock: bool = False) -> Obj:
    """The object, locked FOR UPDATE when asked; ObjectNotFound when there is none."""
    found = await load_object(conn, object_id, kind, lock=lock)
    if found is None:
        raise ObjectNotFound(f"The sandbox has no {kind.replace('_', ' ')} {object_id!r}.")
    return found


async def insert_object(conn: Conn, object_id: str, kind: str, data: Obj) -> Obj:
    """Store a new object of this kind."""
    from psycopg.types.json import Jsonb

    # clock_timestamp(), not now(): rows written in one transaction keep their order (events rely on it).
    await conn.execute(
        """insert into public.sandbox_payment_objects (id, kind, data, created_at)
           values (%s, %s, %s, clock_timestamp())""",
        (object_id, kind, Jsonb(data)),
    )
    return data


async def save_object(conn: Conn, data: Obj) -> Obj:
    """Store the object's new data under its id."""
    from psycopg.types.json import Jsonb

    await conn.execute(
        "update public.sandbox_payment_objects set data = %s where id = %s", (Jsonb(data), data["id"])
    )
    return data


async def read_object(object_id: str, kind: str) -> Obj:
    """An object read on a connection of the sandbox's own; ObjectNotFound when there is none."""
    async with external() as conn:
        return await require_object(conn, object_id, kind)
