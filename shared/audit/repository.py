"""All SQL of the audit log."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # psycopg loads on first query, not at import (cold start)
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any


async def insert_event(
    conn: Conn,
    *,
    event: str,
    actor_id: uuid.UUID | None,
    subject_id: uuid.UUID | None,
    ip: str | None,
    user_agent: str | None,
    details: dict[str, Any],
) -> int:
    """Append one event; returns its id."""
    from psycopg.types.json import Jsonb

    cursor = await conn.execute(
        """insert into public.audit_log (event, actor_id, subject_id, ip, user_agent, details)
           values (%s, %s, %s, %s, %s, %s) returning id""",
        (event, actor_id, subject_id, ip, user_agent, Jsonb(details)),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def list_events(
    conn: Conn,
    *,
    subject_id: uuid.UUID | None,
    event: str | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest events first, optionally for one account or one event type, keyset-paginated by id."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """select id, occurred_at, event, actor_id, subject_id, host(ip) as ip, user_agent, details
               from public.audit_log
               where (%(subject)s::uuid is null or subject_id = %(subject)s::uuid)
                 and (%(event)s::text is null or event = %(event)s::text)
                 and (%(before)s::bigint is null or id < %(before)s::bigint)
               order by id desc limit %(limit)s""",
            {"subject": subject_id, "event": event, "before": before_id, "limit": limit},
        )
        return await cursor.fetchall()


async def forget_subject(conn: Conn, user_id: uuid.UUID) -> None:
    """A deleted account's events stay (security record) without its personal data."""
    await conn.execute(
        """update public.audit_log set ip = null, user_agent = null, details = '{}'::jsonb
           where subject_id = %s or actor_id = %s""",
        (user_id, user_id),
    )
