"""All SQL of the accounts domain: users, login sessions, refresh tokens, email tokens, identities."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:  # psycopg loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

_USER_COLUMNS = """id, email, email_verified_at, password_hash, password_changed_at, display_name, roles,
    status, disabled_reason, last_login_at, created_at, updated_at"""


# Users.


async def insert_user(
    conn: Conn,
    *,
    email: str,
    password_hash: str | None,
    display_name: str | None,
    verified: bool,
    roles: list[str] | None = None,
) -> Row | None:
    """Create a user; None when the email is taken (the caller answers the same either way)."""
    return await fetch_one(
        conn,
        f"""insert into public.users (email, password_hash, password_changed_at, display_name,
                email_verified_at, roles)
            values (%(email)s, %(hash)s, case when %(hash)s::text is null then null else now() end,
                %(name)s, case when %(verified)s then now() end, %(roles)s)
            on conflict ((lower(email))) do nothing
            returning {_USER_COLUMNS}""",  # noqa: S608 - a constant column list
        {
            "email": email,
            "hash": password_hash,
            "name": display_name,
            "verified": verified,
            "roles": roles or ["viewer"],
        },
    )


_SELECT_USER = f"select {_USER_COLUMNS} from public.users"  # noqa: S608 - a constant column list


async def user_by_email(conn: Conn, email: str) -> Row | None:
    """The user with this address (case-insensitive)."""
    return await fetch_one(conn, _SELECT_USER + " where lower(email) = lower(%s)", (email,))


async def user_by_id(conn: Conn, user_id: uuid.UUID, *, for_update: bool = False) -> Row | None:
    """The user with this id, optionally locked for the rest of the transaction."""
    lock = " for update" if for_update else ""
    return await fetch_one(conn, _SELECT_USER + " where id = %s" + lock, (user_id,))


async def set_password(conn: Conn, user_id: uuid.UUID, password_hash: str, *, changed: bool) -> None:
    """Store a new hash; `changed` marks a real change (a re-hash at new cost is not one)."""
    await conn.execute(
        """update public.users set password_hash = %s,
               password_changed_at = case when %s then now() else password_changed_at end
           where id = %s""",
        (password_hash, changed, user_id),
    )


async def clear_password(conn: Conn, user_id: uuid.UUID) -> None:
    """Remove the password (the account then signs in through its linked identities or a reset)."""
    await conn.execute(
        "update public.users set password_hash = null, password_changed_at = now() where id = %s", (user_id,)
    )


async def mark_verified(conn: Conn, user_id: uuid.UUID) -> None:
    """The user proved they own their address."""
    await conn.execute(
        "update public.users set email_verified_at = coalesce(email_verified_at, now()) where id = %s",
        (user_id,),
    )


async def set_email(conn: Conn, user_id: uuid.UUID, email: str) -> bool:
    """Switch to a verified new address; False when another account took it meanwhile."""
    from psycopg.errors import UniqueViolation

    try:
        # A savepoint: a sign-up committing the address between the check and the update trips the unique
        # index, which must end as "taken", not as an aborted transaction and a 500.
        async with conn.transaction():
            cursor = await conn.execute(
                """update public.users set email = %s, email_verified_at = now()
                   where id = %s and not exists (
                       select 1 from public.users other
                       where lower(other.email) = lower(%s) and other.id <> %s)""",
                (email, user_id, email, user_id),
            )
    except UniqueViolation:
        return False
    return cursor.rowcount == 1


async def set_display_name(conn: Conn, user_id: uuid.UUID, display_name: str | None) -> None:
    """Change the name shown for the account."""
    await conn.execute("update public.users set display_name = %s where id = %s", (display_name, user_id))


async def touch_login(conn: Conn, user_id: uuid.UUID) -> None:
    """Remember the last successful sign-in."""
    await conn.execute("update public.users set last_login_at = now() where id = %s", (user_id,))


async def delete_user(conn: Conn, user_id: uuid.UUID) -> None:
    """Remove the account; sessions, tokens, factors, identities, profiles and mail go with it (cascade)."""
    await conn.execute("delete from public.users where id = %s", (user_id,))


# Login sessions and refresh tokens.


async def insert_session(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    aal: str,
    amr: list[str],
    user_agent: str | None,
    ip: str | None,
    device_name: str | None,
    max_days: int,
) -> Row:
    """Open a login session (a refresh-token family)."""
    row = await fetch_one(
        conn,
        """insert into public.auth_sessions (user_id, aal, amr, user_agent, ip, device_name, expires_at)
           values (%s, %s, %s, %s, %s, %s, now() + make_interval(days => %s))
           returning *""",
        (user_id, aal, amr, user_agent, ip, device_name, max_days),
    )
    assert row is not None
    return row


async def session_by_id(conn: Conn, session_id: uuid.UUID) -> Row | None:
    """One login session."""
    return await fetch_one(conn, "select * from public.auth_sessions where id = %s", (session_id,))


async def insert_refresh_token(conn: Conn, *, session_id: uuid.UUID, token_hash: bytes) -> None:
    """Store the hash of a new refresh token of the family."""
    await conn.execute(
        "insert into public.auth_refresh_tokens (token_hash, session_id) values (%s, %s)",
        (token_hash, session_id),
    )


async def spend_refresh_token(conn: Conn, token_hash: bytes) -> Row | None:
    """Mark an unspent refresh token spent, atomically: of two parallel refreshes only one gets the row."""
    return await fetch_one(
        conn,
        """update public.auth_refresh_tokens set used_at = now()
           where token_hash = %s and used_at is null
           returning session_id, issued_at""",
        (token_hash,),
    )


async def drop_unspent_refresh_tokens(conn: Conn, session_id: uuid.UUID) -> None:
    """Forget the session's unspent refresh tokens (a re-issue hands out their replacement)."""
    await conn.execute(
        "delete from public.auth_refresh_tokens where session_id = %s and used_at is null", (session_id,)
    )


async def refresh_token(conn: Conn, token_hash: bytes) -> Row | None:
    """A refresh token whatever its state (to tell reuse from garbage)."""
    return await fetch_one(
        conn,
        "select session_id, issued_at, used_at from public.auth_refresh_tokens where token_hash = %s",
        (token_hash,),
    )


async def touch_session(conn: Conn, session_id: uuid.UUID, *, ip: str | None, user_agent: str | None) -> None:
    """Record activity on a session at refresh."""
    await conn.execute(
        """update public.auth_sessions set last_seen_at = now(), ip = coalesce(%s, ip),
               user_agent = coalesce(%s, user_agent)
           where id = %s""",
        (ip, user_agent, session_id),
    )


async def update_session(
    conn: Conn,
    session_id: uuid.UUID,
    *,
    aal: str | None = None,
    amr: list[str] | None = None,
    profile_id: uuid.UUID | None = None,
    clear_profile: bool = False,
) -> None:
    """Raise the session's assurance level or change its active profile."""
    await conn.execute(
        """update public.auth_sessions set aal = coalesce(%s, aal), amr = coalesce(%s, amr),
               profile_id = case when %s then null else coalesce(%s, profile_id) end
           where id = %s""",
        (aal, amr, clear_profile, profile_id, session_id),
    )


async def revoke_session(conn: Conn, session_id: uuid.UUID, reason: str) -> bool:
    """Revoke one session; False when it was already revoked."""
    cursor = await conn.execute(
        """update public.auth_sessions set revoked_at = now(), revoked_reason = %s
           where id = %s and revoked_at is null""",
        (reason, session_id),
    )
    return cursor.rowcount == 1


async def revoke_user_sessions(
    conn: Conn, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke every live session of the user except `keep`; returns the revoked ids."""
    rows = await fetch_all(
        conn,
        """update public.auth_sessions set revoked_at = now(), revoked_reason = %s
           where user_id = %s and revoked_at is null and (%s::uuid is null or id <> %s::uuid)
           returning id""",
        (reason, user_id, keep, keep),
    )
    return [row["id"] for row in rows]


async def list_sessions(conn: Conn, user_id: uuid.UUID) -> list[Row]:
    """The user's live sessions, most recently used first."""
    return await fetch_all(
        conn,
        """select id, aal, amr, user_agent, host(ip) as ip, device_name, created_at, last_seen_at,
                  expires_at, profile_id
           from public.auth_sessions
           where user_id = %s and revoked_at is null and expires_at > now()
           order by last_seen_at desc""",
        (user_id,),
    )


async def known_device(conn: Conn, user_id: uuid.UUID, user_agent: str | None) -> bool:
    """Whether this user signed in from this browser before (drives the new-device notice)."""
    row = await fetch_one(
        conn,
        "select 1 as seen from public.auth_sessions where user_id = %s and user_agent is not distinct from %s"
        " limit 1",
        (user_id, user_agent),
    )
    return row is not None


# Email tokens.


async def insert_email_token(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    purpose: str,
    email: str,
    token_hash: bytes,
    ttl_minutes: int,
    keep_earlier: bool = False,
) -> None:
    """Store a single-use link token; earlier unused tokens of the same purpose stop working (unless kept)."""
    if not keep_earlier:
        await conn.execute(
            """update public.auth_email_tokens set used_at = now()
               where user_id = %s and purpose = %s and used_at is null""",
            (user_id, purpose),
        )
    await conn.execute(
        """insert into public.auth_email_tokens (token_hash, user_id, purpose, email, expires_at)
           values (%s, %s, %s, %s, now() + make_interval(mins => %s))""",
        (token_hash, user_id, purpose, email, ttl_minutes),
    )


async def spend_email_tokens(conn: Conn, *, user_id: uuid.UUID, purpose: str) -> None:
    """Use up every outstanding link token of this purpose."""
    await conn.execute(
        """update public.auth_email_tokens set used_at = now()
           where user_id = %s and purpose = %s and used_at is null""",
        (user_id, purpose),
    )


async def spend_email_token(conn: Conn, *, token_hash: bytes, purpose: str) -> Row | None:
    """Use a link token once: only an unused, unexpired token of this purpose matches."""
    return await fetch_one(
        conn,
        """update public.auth_email_tokens set used_at = now()
           where token_hash = %s and purpose = %s and used_at is null and expires_at > now()
           returning user_id, email, created_at""",
        (token_hash, purpose),
    )


# Social and external identities.


async def identity(conn: Conn, provider: str, subject: str) -> Row | None:
    """The local user behind (provider, subject)."""
    return await fetch_one(
        conn,
        """select provider, subject, user_id, email from public.auth_identities
           where provider = %s and subject = %s""",
        (provider, subject),
    )


async def link_identity(
    conn: Conn, *, provider: str, subject: str, user_id: uuid.UUID, email: str | None
) -> None:
    """Attach (provider, subject) to the user; a no-op when it already is."""
    await conn.execute(
        """insert into public.auth_identities (provider, subject, user_id, email, last_login_at)
           values (%s, %s, %s, %s, now())
           on conflict (provider, subject) do update set last_login_at = now()
           where public.auth_identities.user_id = excluded.user_id""",
        (provider, subject, user_id, email),
    )


async def identities_of(conn: Conn, user_id: uuid.UUID) -> list[Row]:
    """The user's linked identities."""
    return await fetch_all(
        conn,
        """select provider, subject, email, created_at, last_login_at from public.auth_identities
           where user_id = %s order by created_at""",
        (user_id,),
    )


async def unlink_identity(conn: Conn, user_id: uuid.UUID, provider: str) -> int:
    """Detach the user's identity at a provider."""
    cursor = await conn.execute(
        "delete from public.auth_identities where user_id = %s and provider = %s", (user_id, provider)
    )
    return cursor.rowcount


async def unlink_all_identities(conn: Conn, user_id: uuid.UUID) -> list[str]:
    """Detach every identity of the user; returns the providers detached."""
    rows = await fetch_all(
        conn, "delete from public.auth_identities where user_id = %s returning provider", (user_id,)
    )
    return [row["provider"] for row in rows]


def timestamp(value: datetime | None) -> int | None:
    """Unix seconds of a timestamptz column."""
    return int(value.timestamp()) if value else None
