"""All SQL of stream sessions: what a start needs to know (one query), and the stream_sessions record.

The start query reads the catalog title through the catalog's one visibility rule (visible_sql) twice: for
the viewer as they are, and for the same viewer without a maturity limit, so one round trip tells "not
here" from "not for this profile". It also reads the content's current playable asset with its audio
renditions and subtitle tracks (media_assets / media_renditions / media_subtitles).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.streaming.sessions import StreamSession

Row = dict[str, Any]
_NO_EPISODE = "00000000-0000-0000-0000-000000000000"


def _visible_as(prefix: str) -> str:
    """visible_sql('t') with its parameters renamed, so one query can apply it for several viewers."""
    return visible_sql("t").replace("%(v_", f"%({prefix}_")


def _params_as(prefix: str, viewer: Viewer) -> dict[str, Any]:
    return {f"{prefix}_{name.removeprefix('v_')}": value for name, value in viewer.params().items()}


_CONTENT = f"""
select t.id as title_id, e.id as episode_id, t.kind, t.status, t.access, t.min_tier,
       t.country_allow, t.country_deny,
       {_visible_as("w")} as visible_any_rank,
       {_visible_as("p")} as visible,
       a.id as asset_id, a.storage_prefix, a.duration_seconds, a.images,
       coalesce((
         select json_agg(json_build_object('name', r.name, 'language', r.language, 'label', r.label,
                                           'default', r.is_default, 'codecs', r.codecs) order by r.name)
         from public.media_renditions r where r.asset_id = a.id and r.kind = 'audio'), '[]'::json) as audio,
       coalesce((
         select json_agg(json_build_object('language', s.language, 'label', s.label, 'forced', s.forced,
                                           'sdh', s.sdh)
                         order by s.language, s.forced, s.sdh, s.created_at)
         from public.media_subtitles s
         where s.title_id = t.id and s.episode_id is not distinct from e.id and s.deleted_at is null
           and a.id is not null), '[]'::json) as subtitles
from (select %(content)s::uuid as id) c
left join public.catalog_episodes e on e.id = c.id
join public.catalog_titles t on t.id = coalesce(e.title_id, c.id) and t.deleted_at is null
left join lateral (
  select a.id, a.storage_prefix, a.duration_seconds, a.images from public.media_assets a
  where a.title_id = t.id and a.purpose = 'main' and a.is_current and a.state in ('playable', 'ready')
    and coalesce(a.episode_id, '{_NO_EPISODE}'::uuid) = coalesce(e.id, '{_NO_EPISODE}'::uuid)
  limit 1
) a on true
"""  # noqa: S608 - built from constants only


async def content(
    conn: AsyncConnection[Any], *, content_id: uuid.UUID, viewer: Viewer, any_rank: Viewer
) -> Row | None:
    """The content (a movie's title id or an episode id) with both visibility verdicts and its asset."""
    return await fetch_one(
        conn,
        _CONTENT,
        {"content": content_id, **_params_as("p", viewer), **_params_as("w", any_rank)},
    )


async def visible_to(conn: AsyncConnection[Any], *, title_id: uuid.UUID, viewer: Viewer) -> bool:
    """Whether the title passes the catalog's visibility rule for this viewer."""
    row = await fetch_one(
        conn,
        f"select {visible_sql('t')} as visible from public.catalog_titles t where t.id = %(id)s",  # noqa: S608 - constants only
        {"id": title_id, **viewer.params()},
    )
    return bool(row and row["visible"])


async def insert_session(conn: AsyncConnection[Any], *, session: StreamSession, started_at: datetime) -> None:
    """The record of a started stream."""
    await conn.execute(
        """
        insert into public.stream_sessions (id, user_id, profile_id, device_id, device_name, device_class,
            title_id, episode_id, asset_id, entitlement_id, country, ads, max_height, started_at,
            last_heartbeat_at)
        values (%(id)s, %(user)s, %(profile)s, %(device)s, %(name)s, %(class)s, %(title)s, %(episode)s,
            %(asset)s, %(entitlement)s, %(country)s, %(ads)s, %(height)s, %(at)s, %(at)s)
        """,
        {
            "id": session.id,
            "user": session.user_id,
            "profile": session.profile_id,
            "device": session.device_id,
            "name": session.device_name,
            "class": session.device_class,
            "title": session.title_id,
            "episode": session.episode_id,
            "asset": session.asset_id,
            "entitlement": session.entitlement_id,
            "country": session.country,
            "ads": session.ads,
            "height": session.max_height,
            "at": started_at,
        },
    )


async def end_sessions(
    conn: AsyncConnection[Any], *, session_ids: list[str], reason: str, at: datetime
) -> None:
    """Close the records of ended streams (a record already closed keeps its first end)."""
    if not session_ids:
        return
    await conn.execute(
        """
        update public.stream_sessions set ended_at = greatest(%(at)s, started_at), end_reason = %(reason)s
        where id = any(%(ids)s::uuid[]) and ended_at is null
        """,
        {"ids": session_ids, "reason": reason, "at": at},
    )


async def record_playback(
    conn: AsyncConnection[Any], *, session_id: str, at: datetime, playback: dict[str, Any]
) -> None:
    """The last heartbeat time and reported playback quality of an open record."""
    from psycopg.types.json import Jsonb

    await conn.execute(
        """
        update public.stream_sessions set last_heartbeat_at = %(at)s, playback = playback || %(playback)s
        where id = %(id)s and ended_at is null
        """,
        {"id": session_id, "at": at, "playback": Jsonb(playback)},
    )


async def session_owner(conn: AsyncConnection[Any], *, session_id: uuid.UUID) -> Row | None:
    """user_id, profile_id and ended_at of a recorded session."""
    return await fetch_one(
        conn, "select user_id, profile_id, ended_at from public.stream_sessions where id = %s", (session_id,)
    )


async def title_access(conn: AsyncConnection[Any], *, title_id: str) -> Row | None:
    """A title's access model (id, access, min_tier); None once deleted."""
    return await fetch_one(
        conn,
        "select id, access, min_tier from public.catalog_titles where id = %s and deleted_at is null",
        (title_id,),
    )


async def lapsed_open_sessions(
    conn: AsyncConnection[Any], *, before: datetime, after: str | None, limit: int
) -> list[str]:
    """Ids of open records whose last recorded heartbeat is older than `before`, by id after `after`."""
    # stream_sessions_open_idx (migration 20261121001100): only open records are indexed.
    rows = await fetch_all(
        conn,
        """
        select id::text from public.stream_sessions
        where ended_at is null and last_heartbeat_at < %(before)s
          and (%(after)s::uuid is null or id > %(after)s::uuid)
        order by id limit %(limit)s
        """,
        {"before": before, "after": after, "limit": limit},
    )
    return [row["id"] for row in rows]


async def close_lapsed(
    conn: AsyncConnection[Any], *, session_ids: list[str], lapse_seconds: int, at: datetime
) -> int:
    """End open records as expired, at the latest instant they could have been alive; how many."""
    if not session_ids:
        return 0
    cursor = await conn.execute(
        """
        update public.stream_sessions
        set ended_at = greatest(
              started_at, least(%(at)s, last_heartbeat_at + make_interval(secs => %(lapse)s))),
            end_reason = 'expired'
        where id = any(%(ids)s::uuid[]) and ended_at is null
        """,
        {"ids": session_ids, "lapse": lapse_seconds, "at": at},
    )
    return cursor.rowcount
