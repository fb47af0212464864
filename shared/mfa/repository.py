"""All SQL of two-factor authentication: the TOTP factor and the backup codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_one

if TYPE_CHECKING:  # the driver loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]


async def factor(conn: Conn, user_id: uuid.UUID) -> Row | None:
    """The account's TOTP factor (confirmed or pending), or None."""
    return await fetch_one(
        conn,
        """select user_id, secret_encrypted, confirmed_at, last_used_step, created_at
           from public.mfa_totp where user_id = %s""",
        (user_id,),
    )


async def has_confirmed_factor(conn: Conn, user_id: uuid.UUID) -> bool:
    """Whether the account has a confirmed TOTP factor."""
    row = await fetch_one(
        conn,
        "select 1 as one from public.mfa_totp where user_id = %s and confirmed_at is not null",
        (user_id,),
    )
    return row is not None


async def save_pending(conn: Conn, user_id: uuid.UUID, secret_encrypted: str) -> bool:
    """Store a new unconfirmed secret, replacing a pending one; False when a confirmed factor exists."""
    row = await fetch_one(
        conn,
        """insert into public.mfa_totp (user_id, secret_encrypted)
           values (%s, %s)
           on conflict (user_id) do update
             set secret_encrypted = excluded.secret_encrypted, last_used_step = null, created_at = now()
             where public.mfa_totp.confirmed_at is null
           returning user_id""",
        (user_id, secret_encrypted),
    )
    return row is not None


async def confirm(conn: Conn, user_id: uuid.UUID, *, secret_encrypted: str, step: int) -> datetime | None:
    """Confirm the pending secret that was checked (and spend the step); None if it changed or was confirmed.

    Matching on the ciphertext too means a concurrent restart of the enrolment (a new secret) is not
    confirmed by a code computed from the old one.
    """
    row = await fetch_one(
        conn,
        """update public.mfa_totp set confirmed_at = now(), last_used_step = %s
           where user_id = %s and confirmed_at is null and secret_encrypted = %s
           returning confirmed_at""",
        (step, user_id, secret_encrypted),
    )
    return row["confirmed_at"] if row else None


async def spend_step(conn: Conn, user_id: uuid.UUID, step: int) -> bool:
    """Record `step` as used if it is newer than the last used one: atomic, so a replay cannot pass."""
    row = await fetch_one(
        conn,
        """update public.mfa_totp set last_used_step = %s
           where user_id = %s and confirmed_at is not null
             and (last_used_step is null or last_used_step < %s)
           returning user_id""",
        (step, user_id, step),
    )
    return row is not None


async def delete_factor(conn: Conn, user_id: uuid.UUID) -> Row | None:
    """Remove the TOTP factor and every backup code; returns the removed factor (None if there was none)."""
    await conn.execute("delete from public.mfa_backup_codes where user_id = %s", (user_id,))
    return await fetch_one(
        conn, "delete from public.mfa_totp where user_id = %s returning confirmed_at", (user_id,)
    )


async def replace_backup_codes(conn: Conn, user_id: uuid.UUID, code_hashes: list[str]) -> None:
    """Drop the account's backup codes (used or not) and store a new set."""
    await conn.execute("delete from public.mfa_backup_codes where user_id = %s", (user_id,))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "insert into public.mfa_backup_codes (user_id, code_hash) values (%s, %s)",
            [(user_id, code_hash) for code_hash in code_hashes],
        )


async def spend_backup_code(conn: Conn, user_id: uuid.UUID, code_hash: str) -> uuid.UUID | None:
    """Mark an unused code as used; of two concurrent uses exactly one gets its id back."""
    row = await fetch_one(
        conn,
        """update public.mfa_backup_codes set used_at = now()
           where user_id = %s and code_hash = %s and used_at is null
           returning id""",
        (user_id, code_hash),
    )
    return row["id"] if row else None


async def status(conn: Conn, user_id: uuid.UUID) -> Row:
    """Confirmation time of the factor (None if not enabled) and the number of unused backup codes."""
    row = await fetch_one(
        conn,
        """select (select confirmed_at from public.mfa_totp where user_id = %(user)s) as confirmed_at,
                  (select count(*) from public.mfa_backup_codes
                   where user_id = %(user)s and used_at is null) as backup_codes_remaining""",
        {"user": user_id},
    )
    assert row is not None
    return row
