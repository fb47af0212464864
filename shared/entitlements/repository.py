"""All SQL of entitlements: the playback path's one indexed read, a rental's first play, commerce's writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]


async def live_for_title(conn: AsyncConnection[Any], *, user_id: uuid.UUID, title_id: uuid.UUID) -> list[Row]:
    """The user's entitlements that are not revoked and count for the title: subscriptions and its own."""
    # entitlements_user_idx (user_id, title_id) where revoked_at is null: one index range per user.
    # Expired rows come back too: the time rules are applied in Python against the caller's clock, so
    # the cached rows stay valid whatever the time (and an expired rental can be told apart).
    return await fetch_all(
        conn,
        """
        select id, kind, title_id, plan_code, tier, max_streams, max_height, ad_free, starts_at, ends_at,
               play_window_seconds, first_played_at
        from public.entitlements
        where user_id = %(user)s and revoked_at is null and (title_id is null or title_id = %(title)s)
        """,
        {"user": user_id, "title": title_id},
    )


async def mark_first_play(
    conn: AsyncConnection[Any], *, entitlement_id: uuid.UUID, at: datetime
) -> uuid.UUID | None:
    """Set first_played_at once (a later call keeps the first); the owner's id, None if no such row."""
    row = await fetch_one(
        conn,
        """
        update public.entitlements set first_played_at = coalesce(first_played_at, %(at)s)
        where id = %(id)s returning user_id
        """,
        {"id": entitlement_id, "at": at},
    )
    return row["user_id"] if row else None


async def upsert(conn: AsyncConnection[Any], *, values: Row) -> uuid.UUID | None:
    """Insert, or update the terms of the row with the same (source, source_ref); its id.

    None when that row belongs to another user, kind or title. revoked_at and first_played_at are never
    touched by a replay; starts_at None means `now` on insert and "unchanged" on update.
    """
    row = await fetch_one(
        conn,
        """
        insert into public.entitlements as e (user_id, kind, title_id, plan_code, tier, max_streams,
            max_height, ad_free, starts_at, ends_at, play_window_seconds, source, source_ref)
        values (%(user_id)s, %(kind)s, %(title_id)s, %(plan_code)s, %(tier)s, %(max_streams)s,
            %(max_height)s, %(ad_free)s, coalesce(%(starts_at)s, %(now)s), %(ends_at)s,
            %(play_window_seconds)s, %(source)s, %(source_ref)s)
        on conflict (source, source_ref) where source_ref is not null do update
        set plan_code = excluded.plan_code, tier = excluded.tier, max_streams = excluded.max_streams,
            max_height = excluded.max_height, ad_free = excluded.ad_free,
            starts_at = coalesce(%(starts_at)s, e.starts_at), ends_at = excluded.ends_at,
            play_window_seconds = excluded.play_window_seconds
        where e.user_id = excluded.user_id and e.kind = excluded.kind
          and e.title_id is not distinct from excluded.title_id
        returning id
        """,
        values,
    )
    return row["id"] if row else None


async def revoke(
    conn: AsyncConnection[Any], *, source: str, source_ref: str, at: datetime
) -> uuid.UUID | None:
    """Set revoked_at on the live row with this provider id; its owner, None when there is none."""
    row = await fetch_one(
        conn,
        """
        update public.entitlements set revoked_at = %(at)s
        where source = %(source)s and source_ref = %(ref)s and revoked_at is null
        returning user_id
        """,
        {"source": source, "ref": source_ref, "at": at},
    )
    return row["user_id"] if row else None


async def extend(
    conn: AsyncConnection[Any], *, source: str, source_ref: str, ends_at: datetime | None
) -> uuid.UUID | None:
    """Set ends_at of the live row with this provider id; its owner, None when there is none."""
    row = await fetch_one(
        conn,
        """
        update public.entitlements set ends_at = %(ends_at)s
        where source = %(source)s and source_ref = %(ref)s and revoked_at is null
        returning user_id
        """,
        {"source": source, "ref": source_ref, "ends_at": ends_at},
    )
    return row["user_id"] if row else None
