"""SQL of the media domain: sources (uploads), subtitles, and the read side of assets and renditions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]
LIST_LIMIT = 500  # per title: far above any real count of uploads, a guard against a runaway answer


async def content_of(conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None) -> Row:
    """Whether the live title exists and which title the episode belongs to (read like search does)."""
    row = await fetch_one(
        conn,
        """select exists (select 1 from public.catalog_titles
                           where id = %(title)s and deleted_at is null) as title_found,
                  (select title_id from public.catalog_episodes where id = %(episode)s)
                    as episode_title_id""",
        {"title": title_id, "episode": episode_id},
    )
    assert row is not None
    return row


# --- sources ------------------------------------------------------------------------------------------


async def insert_source(
    conn: AsyncConnection[Any],
    *,
    source_id: uuid.UUID,
    title_id: uuid.UUID,
    episode_id: uuid.UUID | None,
    purpose: str,
    storage_key: str,
    filename: str,
    content_type: str,
    size_bytes: int,
    sha256: str,
    upload_id: str | None,
    part_size: int | None,
    created_by: uuid.UUID | None,
) -> Row:
    """A new source in state 'uploading'."""
    row = await fetch_one(
        conn,
        """insert into public.media_sources (id, title_id, episode_id, purpose, storage_key, filename,
                                             content_type, size_bytes, sha256, upload_id, part_size,
                                             created_by)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning *""",
        (
            source_id,
            title_id,
            episode_id,
            purpose,
            storage_key,
            filename,
            content_type,
            size_bytes,
            sha256,
            upload_id,
            part_size,
            created_by,
        ),
    )
    assert row is not None
    return row


async def get_source(conn: AsyncConnection[Any], source_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    """A source (locked FOR UPDATE when asked: completion and abort serialise on it)."""
    if lock:
        return await fetch_one(
            conn, "select * from public.media_sources where id = %s for update", (source_id,)
        )
    return await fetch_one(conn, "select * from public.media_sources where id = %s", (source_id,))


async def set_source_state(
    conn: AsyncConnection[Any],
    source_id: uuid.UUID,
    *,
    state: str,
    rejection_reason: str | None = None,
    etag: str | None = None,
) -> Row:
    """Move a source to 'uploaded' (stamping uploaded_at and the object's ETag), 'aborted' or 'rejected'."""
    row = await fetch_one(
        conn,
        """update public.media_sources
              set state = %(state)s,
                  rejection_reason = coalesce(%(reason)s, rejection_reason),
                  etag = coalesce(%(etag)s, etag),
                  uploaded_at = case when %(state)s = 'uploaded' then now() else uploaded_at end
            where id = %(id)s returning *""",
        {"state": state, "reason": rejection_reason, "etag": etag, "id": source_id},
    )
    assert row is not None
    return row


async def orphan_sources(conn: AsyncConnection[Any], *, older_than: timedelta, limit: int) -> list[Row]:
    """Aborted or rejected sources unchanged for `older_than` and not swept yet, locked (skip locked)."""
    return await fetch_all(
        conn,
        """select id, state, storage_key, upload_id from public.media_sources
            where state in ('aborted', 'rejected') and deleted_at is null
              and updated_at < now() - %(older_than)s
            order by updated_at limit %(limit)s
            for update skip locked""",
        {"older_than": older_than, "limit": limit},
    )


async def mark_sources_deleted(conn: AsyncConnection[Any], source_ids: list[uuid.UUID]) -> None:
    """Record that these sources' stored objects are gone."""
    if source_ids:
        await conn.execute(
            "update public.media_sources set deleted_at = now() where id = any(%s) and deleted_at is null",
            (source_ids,),
        )


async def list_sources(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[Row]:
    """Sources of a title (or of one of its episodes), newest first."""
    return await fetch_all(
        conn,
        """select * from public.media_sources
            where title_id = %(title)s and (%(episode)s::uuid is null or episode_id = %(episode)s)
            order by created_at desc, id limit %(limit)s""",
        {"title": title_id, "episode": episode_id, "limit": LIST_LIMIT},
    )


# --- assets (written by transcoding; read here for the media API) -------------------------------------


async def list_assets(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[Row]:
    """Assets of a title (or one episode), newest first, each with its renditions as a JSON list."""
    return await fetch_all(
        conn,
        """select a.id, a.source_id, a.title_id, a.episode_id, a.purpose, a.state, a.is_current,
                  a.storage_prefix, a.hls_master, a.dash_manifest, a.duration_seconds, a.images, a.drm,
                  a.created_at, a.updated_at, a.playable_at, a.ready_at,
                  coalesce((select jsonb_agg(to_jsonb(r) - 'asset_id' - 'created_at'
                                             order by r.kind, r.height nulls first, r.bandwidth, r.name)
                              from public.media_renditions r where r.asset_id = a.id), '[]'::jsonb)
                    as renditions
             from public.media_assets a
            where a.title_id = %(title)s and (%(episode)s::uuid is null or a.episode_id = %(episode)s)
            order by a.created_at desc, a.id limit %(limit)s""",
        {"title": title_id, "episode": episode_id, "limit": LIST_LIMIT},
    )


# --- subtitles ----------------------------------------------------------------------------------------


async def retire_subtitle_track(
    conn: AsyncConnection[Any],
    *,
    title_id: uuid.UUID,
    episode_id: uuid.UUID | None,
    language: str,
    forced: bool,
    sdh: bool,
) -> list[uuid.UUID]:
    """Soft-delete the live track with the same language and flags (a new file replaces it)."""
    rows = await fetch_all(
        conn,
        """update public.media_subtitles set deleted_at = now()
            where title_id = %(title)s and episode_id is not distinct from %(episode)s
              and language = %(language)s and forced = %(forced)s and sdh = %(sdh)s and deleted_at is null
            returning id""",
        {"title": title_id, "episode": episode_id, "language": language, "forced": forced, "sdh": sdh},
    )
    return [row["id"] for row in rows]


async def insert_subtitle(
    conn: AsyncConnection[Any],
    *,
    subtitle_id: uuid.UUID,
    title_id: uuid.UUID,
    episode_id: uuid.UUID | None,
    language: str,
    label: str,
    forced: bool,
    sdh: bool,
    storage_key: str,
    cue_count: int,
    created_by: uuid.UUID | None,
) -> Row | None:
    """A live subtitle track; None when a concurrent request created the same track first."""
    return await fetch_one(
        conn,
        """insert into public.media_subtitles (id, title_id, episode_id, language, label, forced, sdh,
                                               storage_key, cue_count, created_by)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (title_id, coalesce(episode_id, '00000000-0000-0000-0000-000000000000'::uuid),
                        language, forced, sdh) where deleted_at is null
           do nothing
           returning *""",
        (subtitle_id, title_id, episode_id, language, label, forced, sdh, storage_key, cue_count, created_by),
    )


async def get_live_subtitle(conn: AsyncConnection[Any], subtitle_id: uuid.UUID) -> Row | None:
    """A subtitle track that is not deleted, locked."""
    return await fetch_one(
        conn,
        "select * from public.media_subtitles where id = %s and deleted_at is null for update",
        (subtitle_id,),
    )


async def delete_subtitle(conn: AsyncConnection[Any], subtitle_id: uuid.UUID) -> None:
    """Soft-delete one track (the file stays for the history)."""
    await conn.execute("update public.media_subtitles set deleted_at = now() where id = %s", (subtitle_id,))


async def list_subtitles(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[Row]:
    """Live subtitle tracks of a title (or one episode)."""
    return await fetch_all(
        conn,
        """select * from public.media_subtitles
            where title_id = %(title)s and (%(episode)s::uuid is null or episode_id = %(episode)s)
              and deleted_at is null
            order by episode_id nulls first, language, forced, sdh limit %(limit)s""",
        {"title": title_id, "episode": episode_id, "limit": LIST_LIMIT},
    )
