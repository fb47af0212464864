"""All SQL of watching: positions (upsert ordered by acceptance time), continue watching, history, next."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.catalog.visibility import Viewer, visible_sql
from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[Any]
else:
    Conn = Any
Row = dict[str, Any]

VISIBLE = visible_sql("t")


def next_episode_id(episode: str) -> str:
    """SQL for the id of the episode after `episode` (an SQL expression), null after the last one.

    The same season's next number, else the first episode of the next season.
    """
    return f"""(select e2.id
        from public.catalog_episodes e0
        join public.catalog_seasons s0 on s0.id = e0.season_id
        join public.catalog_episodes e2 on e2.title_id = e0.title_id
        join public.catalog_seasons s2 on s2.id = e2.season_id
        where e0.id = {episode} and (s2.number, e2.number) > (s0.number, e0.number)
        order by s2.number, e2.number limit 1)"""  # noqa: S608 - built from constants only


# A position reaches Postgres only if it was accepted after the stored one: `updated_at` is the Redis
# acceptance time, strictly increasing per (profile, content) and consistent with the write order
# (session start, session id, sequence), so a late flush of an older state never overwrites a newer one and
# flushing the same write twice changes nothing. A write accepted after a history removal shows it again.
# Rows whose profile, title or episode was deleted meanwhile are skipped rather than failing the batch.
_UPSERT = """
insert into public.watch_positions as wp
    (profile_id, title_id, episode_id, content_id, position_seconds, duration_seconds, sequence, watched,
     updated_at)
select u.* from unnest(%(profiles)s::uuid[], %(titles)s::uuid[], %(episodes)s::uuid[], %(contents)s::uuid[],
                       %(positions)s::float8[], %(durations)s::float8[], %(sequences)s::int8[],
                       %(watched)s::bool[], %(at)s::timestamptz[])
    as u(profile_id, title_id, episode_id, content_id, position_seconds, duration_seconds, sequence, watched,
         updated_at)
where exists (select 1 from public.profiles p where p.id = u.profile_id)
  and exists (select 1 from public.catalog_titles ct where ct.id = u.title_id)
  and (u.episode_id is null or exists (select 1 from public.catalog_episodes ce where ce.id = u.episode_id))
on conflict (profile_id, content_id) do update set
    title_id = excluded.title_id,
    episode_id = excluded.episode_id,
    position_seconds = excluded.position_seconds,
    duration_seconds = coalesce(excluded.duration_seconds, wp.duration_seconds),
    sequence = excluded.sequence,
    watched = excluded.watched,
    updated_at = excluded.updated_at,
    hidden_at = case when wp.hidden_at < excluded.updated_at then null else wp.hidden_at end
where excluded.updated_at > wp.updated_at
"""


async def upsert_positions(conn: Conn, rows: list[Row]) -> int:
    """Write positions (dicts with the column names); return how many rows changed."""
    if not rows:
        return 0
    columns = {
        "profiles": "profile_id",
        "titles": "title_id",
        "episodes": "episode_id",
        "contents": "content_id",
        "positions": "position_seconds",
        "durations": "duration_seconds",
        "sequences": "sequence",
        "watched": "watched",
        "at": "updated_at",
    }
    params = {name: [row[column] for row in rows] for name, column in columns.items()}
    async with conn.cursor() as cursor:
        await cursor.execute(_UPSERT, params)
        return cursor.rowcount


async def position(conn: Conn, profile_id: str, content_id: str) -> Row | None:
    """The stored position of a profile in a content item."""
    return await fetch_one(
        conn,
        """select position_seconds, duration_seconds, sequence, watched, updated_at, hidden_at
           from public.watch_positions where profile_id = %s and content_id = %s""",
        (profile_id, content_id),
    )


async def content_meta(conn: Conn, *, title_id: str, episode_id: str | None, asset_id: str | None) -> Row:
    """Where the credits start and how long the item is (the asset's duration, else the runtime)."""
    row = await fetch_one(
        conn,
        """select case when %(episode)s::uuid is null then t.credits_start_seconds
                       else e.credits_start_seconds end as credits_start_seconds,
                  coalesce(a.duration_seconds,
                           case when %(episode)s::uuid is null then t.runtime_minutes * 60
                                else e.runtime_minutes * 60 end) as duration_seconds
           from public.catalog_titles t
           left join public.catalog_episodes e on e.id = %(episode)s::uuid and e.title_id = t.id
           left join public.media_assets a on a.id = %(asset)s::uuid
           where t.id = %(title)s::uuid""",
        {"title": title_id, "episode": episode_id, "asset": asset_id},
    )
    return row or {"credits_start_seconds": None, "duration_seconds": None}


_EPISODE_COLUMNS = """{e}.id as {p}id, {s}.number as {p}season_number, {e}.number as {p}number,
    {e}.name as {p}name, {e}.runtime_minutes as {p}runtime_minutes, {e}.images as {p}images"""


def _episode_columns(episode: str, season: str, prefix: str) -> str:
    return _EPISODE_COLUMNS.format(e=episode, s=season, p=prefix)


async def continue_watching(
    conn: Conn, viewer: Viewer, profile_id: uuid.UUID, *, limit: int, title_id: uuid.UUID | None = None
) -> list[Row]:
    """Per visible title the item to resume, most recently watched first.

    The title's latest position decides: unfinished -> that item; a finished episode -> the next episode
    (with its own progress when it was started); a finished movie or last episode -> nothing.
    """
    query = f"""
    with latest as (
        select distinct on (wp.title_id) wp.*
        from public.watch_positions wp
        where wp.profile_id = %(profile)s and wp.hidden_at is null
          and (%(title)s::uuid is null or wp.title_id = %(title)s::uuid)
        order by wp.title_id, wp.updated_at desc, wp.content_id
    ), picked as (
        select l.*, case when l.watched and l.episode_id is not null
                         then {next_episode_id("l.episode_id")} else l.episode_id end as play_id
        from latest l
    )
    select p.title_id, p.updated_at,
           coalesce(p.play_id, p.content_id) as content_id,
           case when p.watched then coalesce(w2.position_seconds, 0) else p.position_seconds end
               as position_seconds,
           case when p.watched then coalesce(w2.duration_seconds, pe.runtime_minutes * 60.0)
                else p.duration_seconds end as duration_seconds,
           {_episode_columns("pe", "ps", "ep_")},
           {_episode_columns("ne", "ns", "next_")}
    from picked p
    join public.catalog_titles t on t.id = p.title_id
    left join public.catalog_episodes pe on pe.id = p.play_id
    left join public.catalog_seasons ps on ps.id = pe.season_id
    left join public.watch_positions w2
        on w2.profile_id = p.profile_id and w2.content_id = p.play_id and p.watched
           and not w2.watched and w2.hidden_at is null
    left join public.catalog_episodes ne on ne.id = {next_episode_id("p.play_id")}
    left join public.catalog_seasons ns on ns.id = ne.season_id
    where (not p.watched or p.play_id is not null) and {VISIBLE}
    order by p.updated_at desc, p.title_id
    limit %(limit)s"""  # noqa: S608 - built from constants only
    params = {"profile": profile_id, "title": title_id, "limit": limit, **viewer.params()}
    return await fetch_all(conn, query, params)


async def history(
    conn: Conn,
    viewer: Viewer,
    profile_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """Every item the profile played (finished or not, not removed), most recent first, keyset-paged."""
    query = f"""
    select wp.title_id, wp.content_id, wp.position_seconds, wp.duration_seconds, wp.watched, wp.updated_at,
           {_episode_columns("pe", "ps", "ep_")}
    from public.watch_positions wp
    join public.catalog_titles t on t.id = wp.title_id
    left join public.catalog_episodes pe on pe.id = wp.episode_id
    left join public.catalog_seasons ps on ps.id = pe.season_id
    where wp.profile_id = %(profile)s and wp.hidden_at is null and {VISIBLE}
      and (%(after_at)s::timestamptz is null
           or (wp.updated_at, wp.content_id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
    order by wp.updated_at desc, wp.content_id desc
    limit %(limit)s"""  # noqa: S608 - built from constants only
    params = {
        "profile": profile_id,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
        **viewer.params(),
    }
    return await fetch_all(conn, query, params)


async def hide(conn: Conn, profile_id: uuid.UUID, ref: uuid.UUID, *, at: datetime) -> list[uuid.UUID]:
    """Remove an item (or every episode of a series when `ref` is its title) from the profile's history."""
    rows = await fetch_all(
        conn,
        """update public.watch_positions set hidden_at = %(at)s
           where profile_id = %(profile)s and (content_id = %(ref)s or title_id = %(ref)s)
             and hidden_at is null
           returning content_id""",
        {"profile": profile_id, "ref": ref, "at": at},
    )
    return [row["content_id"] for row in rows]


async def content(conn: Conn, viewer: Viewer, ref: uuid.UUID) -> Row | None:
    """A visible movie, series or episode by id: its title id, kind and (for an episode) the next one."""
    query = f"""
    with target as (
        select coalesce((select title_id from public.catalog_episodes where id = %(ref)s), %(ref)s) as id
    )
    select t.id as title_id, t.kind, e.id as episode_id,
           {_episode_columns("ne", "ns", "next_")}
    from target x
    join public.catalog_titles t on t.id = x.id
    left join public.catalog_episodes e on e.id = %(ref)s
    left join public.catalog_episodes ne on ne.id = {next_episode_id("e.id")}
    left join public.catalog_seasons ns on ns.id = ne.season_id
    where {VISIBLE}"""  # noqa: S608 - built from constants only
    return await fetch_one(conn, query, {"ref": ref, **viewer.params()})


async def first_episode(conn: Conn, title_id: uuid.UUID) -> Row | None:
    """A series' first episode (specials, season 0, last)."""
    query = f"""
    select {_episode_columns("e", "s", "")}
    from public.catalog_episodes e join public.catalog_seasons s on s.id = e.season_id
    where e.title_id = %(title)s
    order by s.number = 0, s.number, e.number limit 1"""  # noqa: S608 - built from constants only
    return await fetch_one(conn, query, {"title": title_id})
