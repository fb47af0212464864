"""All SQL of user administration.

The admin domain administers accounts, so it owns the SQL that searches public.users and changes an
account's roles and status. It also reads (never writes) the account's sessions, identities and 2FA
state for the detail view, in one round trip; revoking sessions goes through the accounts service.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:  # psycopg loads at the first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

_LIST_COLUMNS = """u.id, u.email, u.display_name, u.roles, u.status, u.disabled_reason,
    u.email_verified_at is not null as email_verified,
    exists (select 1 from public.mfa_totp m where m.user_id = u.id and m.confirmed_at is not null)
        as mfa_enabled,
    u.created_at, u.last_login_at"""


def like_pattern(text: str) -> str:
    """A case-folded LIKE pattern matching `text` anywhere, its own wildcards taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_users(
    conn: Conn,
    *,
    q: str | None,
    role: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """Newest accounts first, filtered; `q` is an email substring or an exact id."""
    query_id: uuid.UUID | None = None
    if q is not None:
        try:
            query_id = uuid.UUID(q)
        except ValueError:
            query_id = None
    return await fetch_all(
        conn,
        f"""select {_LIST_COLUMNS}
            from public.users u
            where (%(pattern)s::text is null or lower(u.email) like %(pattern)s::text escape '\\'
                   or u.id = %(id)s::uuid)
              and (%(role)s::text is null or %(role)s::text = any(u.roles))
              and (%(status)s::text is null or u.status = %(status)s::text)
              and (%(after_at)s::timestamptz is null
                   or (u.created_at, u.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
            order by u.created_at desc, u.id desc
            limit %(limit)s""",  # noqa: S608 - a constant column list
        {
            "pattern": like_pattern(q) if q is not None else None,
            "id": query_id,
            "role": role,
            "status": status,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def user_detail(conn: Conn, user_id: uuid.UUID) -> Row | None:
    """One account with its password/2FA state and live session count."""
    return await fetch_one(
        conn,
        f"""select {_LIST_COLUMNS}, u.updated_at, u.password_hash is not null as has_password,
                (select count(*) from public.auth_sessions s
                 where s.user_id = u.id and s.revoked_at is null and s.expires_at > now())::int
                    as live_sessions
            from public.users u where u.id = %s""",  # noqa: S608 - a constant column list
        (user_id,),
    )


async def identities_of(conn: Conn, user_id: uuid.UUID) -> list[Row]:
    """The account's linked sign-in providers, oldest first."""
    return await fetch_all(
        conn,
        """select provider, email, created_at, last_login_at from public.auth_identities
           where user_id = %s order by created_at, provider""",
        (user_id,),
    )


async def lock_user(conn: Conn, user_id: uuid.UUID) -> Row | None:
    """Id, email, roles and status of the account, locked until the transaction ends."""
    return await fetch_one(
        conn,
        "select id, email, roles, status, disabled_reason from public.users where id = %s for update",
        (user_id,),
    )


async def user_id_by_email(conn: Conn, email: str) -> uuid.UUID | None:
    """The id of the account with this address (case-insensitive)."""
    row = await fetch_one(conn, "select id from public.users where lower(email) = lower(%s)", (email,))
    return row["id"] if row else None


async def set_roles(conn: Conn, user_id: uuid.UUID, roles: list[str]) -> None:
    """Replace the account's roles."""
    await conn.execute("update public.users set roles = %s where id = %s", (roles, user_id))


async def set_status(conn: Conn, user_id: uuid.UUID, *, status: str, reason: str | None) -> None:
    """Disable (with a reason) or re-enable the account."""
    await conn.execute(
        "update public.users set status = %s, disabled_reason = %s where id = %s", (status, reason, user_id)
    )


async def insert_verified_user(
    conn: Conn, *, email: str, password_hash: str, roles: list[str]
) -> uuid.UUID | None:
    """Create an account whose address an operator vouches for; None when the address is taken."""
    row = await fetch_one(
        conn,
        """insert into public.users (email, password_hash, password_changed_at, email_verified_at, roles)
           values (%s, %s, now(), now(), %s)
           on conflict ((lower(email))) do nothing
           returning id""",
        (email, password_hash, roles),
    )
    return row["id"] if row else None
