"""All SQL of the profiles domain (public.profiles)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_one

if TYPE_CHECKING:  # psycopg loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

_COLUMNS = """id, user_id, name, avatar_url, avatar_key, language, maturity_level, is_kids, autoplay_next,
    autoplay_previews, pin_hash, created_at, updated_at"""
# The columns a caller may set through insert/update (never id, user_id or the timestamps).
WRITABLE = frozenset(
    {
        "name",
        "language",
        "maturity_level",
        "is_kids",
        "autoplay_next",
        "autoplay_previews",
        "avatar_url",
        "avatar_key",
        "pin_hash",
    }
)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not writable profile columns: {sorted(unknown)}")
    return fields


async def lock_user(conn: Conn, user_id: uuid.UUID) -> bool:
    """Lock the account row so that profile counts and checks of one account run one at a time."""
    cursor = await conn.execute("select 1 from public.users where id = %s for update", (user_id,))
    return await cursor.fetchone() is not None


async def count_profiles(conn: Conn, user_id: uuid.UUID) -> int:
    """How many profiles the account has."""
    cursor = await conn.execute("select count(*) from public.profiles where user_id = %s", (user_id,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def name_holder(
    conn: Conn, user_id: uuid.UUID, name: str, *, except_id: uuid.UUID | None = None
) -> str | None:
    """The name of another profile of the account that equals `name` as the unique index compares them."""
    cursor = await conn.execute(
        """select name from public.profiles
           where user_id = %s and lower(name) = lower(%s) and id is distinct from %s limit 1""",
        (user_id, name, except_id),
    )
    row = await cursor.fetchone()
    return str(row[0]) if row else None


async def oldest_profile(conn: Conn, user_id: uuid.UUID) -> Row | None:
    """The account's first profile, if any."""
    return await fetch_one(
        conn,
        f"""select {_COLUMNS} from public.profiles where user_id = %s
            order by created_at, id limit 1""",  # noqa: S608 - a constant column list
        (user_id,),
    )


async def list_profiles(conn: Conn, user_id: uuid.UUID) -> list[Row]:
    """The account's profiles, oldest first."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"""select {_COLUMNS} from public.profiles where user_id = %s
                order by created_at, id""",  # noqa: S608 - a constant column list
            (user_id,),
        )
        return await cursor.fetchall()


async def profile_of(
    conn: Conn, user_id: uuid.UUID, profile_id: uuid.UUID, *, for_update: bool = False
) -> Row | None:
    """One profile of the account (None when it does not exist or belongs to another account)."""
    lock = " for update" if for_update else ""
    return await fetch_one(
        conn,
        f"""select {_COLUMNS} from public.profiles
            where id = %s and user_id = %s{lock}""",  # noqa: S608 - constant column list and lock clause
        (profile_id, user_id),
    )


async def insert_profile(conn: Conn, user_id: uuid.UUID, fields: dict[str, Any]) -> Row:
    """Create a profile; the unique (user_id, lower(name)) index raises UniqueViolation on a clash."""
    from psycopg import sql

    fields = _checked(fields)
    names = ["user_id", *fields]
    query = sql.SQL("insert into public.profiles ({}) values ({}) returning {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
        sql.SQL(_COLUMNS),
    )
    row = await fetch_one(conn, query, [user_id, *fields.values()])
    assert row is not None
    return row


async def update_profile(conn: Conn, profile_id: uuid.UUID, fields: dict[str, Any]) -> Row | None:
    """Set some columns of a profile; return the new row (None when it is gone)."""
    from psycopg import sql

    fields = _checked(fields)
    if not fields:
        return await fetch_one(
            conn,
            f"select {_COLUMNS} from public.profiles where id = %s",  # noqa: S608 - a constant column list
            (profile_id,),
        )
    query = sql.SQL("update public.profiles set {} where id = %s returning {}").format(
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in fields),
        sql.SQL(_COLUMNS),
    )
    return await fetch_one(conn, query, [*fields.values(), profile_id])


async def delete_profile(conn: Conn, user_id: uuid.UUID, profile_id: uuid.UUID) -> Row | None:
    """Delete a profile of the account; sessions using it lose their active profile (FK set null)."""
    return await fetch_one(
        conn,
        f"""delete from public.profiles where id = %s and user_id = %s
            returning {_COLUMNS}""",  # noqa: S608 - a constant column list
        (profile_id, user_id),
    )
