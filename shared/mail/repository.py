"""All SQL of the mail domain: the public.mail_outbox table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from psycopg import AsyncConnection

_COLUMNS = (
    "id, user_id, to_address, template, subject, text_body, html_body, state, provider_message_id,"
    " attempts, last_error, created_at, sent_at"
)
_MAX_ERROR_CHARS = 2000  # last_error is for people reading it, not for whole response bodies


async def insert_mail(
    conn: AsyncConnection[Any],
    *,
    user_id: UUID | None,
    to: str,
    template: str,
    subject: str,
    text_body: str,
    html_body: str | None,
) -> UUID:
    """Insert a queued message; return its id."""
    cursor = await conn.execute(
        "insert into public.mail_outbox (user_id, to_address, template, subject, text_body, html_body)"
        " values (%s, %s, %s, %s, %s, %s) returning id",
        (user_id, to, template, subject, text_body, html_body),
    )
    row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    mail_id: UUID = row[0]
    return mail_id


async def get_mail(conn: AsyncConnection[Any], mail_id: UUID) -> dict[str, Any] | None:
    """One message by id, or None."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"select {_COLUMNS} from public.mail_outbox where id = %s", (mail_id,))  # noqa: S608
        return await cursor.fetchone()


async def list_mail(conn: AsyncConnection[Any], *, to: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest messages first, optionally only those to one address (case-insensitive)."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"select {_COLUMNS} from public.mail_outbox"  # noqa: S608 - constant column list
            " where (%(to)s::text is null or lower(to_address) = lower(%(to)s::text))"
            " order by created_at desc, id desc limit %(limit)s",
            {"to": to, "limit": limit},
        )
        return await cursor.fetchall()


async def mark_sent(conn: AsyncConnection[Any], mail_id: UUID, *, provider_message_id: str | None) -> bool:
    """Record a successful send (counted as an attempt); False when it was already marked sent."""
    cursor = await conn.execute(
        "update public.mail_outbox set state = 'sent', provider_message_id = %s, sent_at = now(),"
        " attempts = attempts + 1, last_error = null where id = %s and state <> 'sent'",
        (provider_message_id, mail_id),
    )
    return cursor.rowcount == 1


async def record_failure(conn: AsyncConnection[Any], mail_id: UUID, *, error: str, final: bool) -> None:
    """Count a failed attempt with its reason; `final` marks the message failed (no more tries)."""
    await conn.execute(
        "update public.mail_outbox set attempts = attempts + 1, last_error = %s,"
        " state = case when %s then 'failed' else 'queued' end"
        " where id = %s and state <> 'sent'",
        (error[:_MAX_ERROR_CHARS], final, mail_id),
    )


async def purge_finished(conn: AsyncConnection[Any], *, older_than_days: int) -> int:
    """Delete sent or failed messages older than the retention (they hold addresses and links)."""
    cursor = await conn.execute(
        """delete from public.mail_outbox
           where state in ('sent', 'failed') and created_at < now() - make_interval(days => %s)""",
        (older_than_days,),
    )
    return cursor.rowcount
