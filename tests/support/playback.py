"""ONE real transcoded asset per test session, and cheap copies of it bound to the contents tests create.

The first call runs a tiny generated clip (4 s, 640x360 so the ladder has two video rungs, 240p and
360p, plus a trick-play track; two audio languages, eng and fra; two subtitle tracks, English and forced
French) through the real queue and the real transcode handler with MEDIA_X264_PRESET=ultrafast (about
1.5 s). Every later call reuses it. A test that needs its own title or episode calls `asset_for(...)`:
the published files are copied under a new asset id and the rows (asset, renditions, subtitles, content
keys re-wrapped for the new id) inserted as the content's current asset, so tokens, manifests and key
endpoints see a real, independent asset without another encode.

    from tests.support.playback import asset_for, transcoded_asset

    base = await transcoded_asset(database_url)            # the shared asset (its own title)
    mine = await asset_for(database_url, title_id=title_id)  # a playable copy for my title
    session fixture: `playback_asset` (import it into your test module or conftest).

The first call parks queued jobs left by earlier tests (as tests/transcoding does) and runs the worker
until the queue is empty: make it before queueing jobs of your own (a fixture is the natural place).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

CLIP_SECONDS = 4.0
CLIP_SIZE = (640, 360)
SUBTITLES = (("en", "English", False), ("fr", "French (forced)", True))  # language, label, forced
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n{text}\n\n00:00:02.500 --> 00:00:03.500\n{text} 2\n"
_lock = asyncio.Lock()
_base: dict[str, PlaybackAsset] = {}


@dataclass(frozen=True)
class PlaybackAsset:
    """A published, current asset and the content it plays for."""

    asset_id: str
    title_id: str
    episode_id: str | None
    prefix: str  # media/assets/<asset_id>/
    hls_master: str  # storage keys
    dash_manifest: str
    heights: tuple[int, ...]  # video rendition heights, lowest first
    audio_languages: tuple[str, ...]
    subtitle_languages: tuple[str, ...]
    duration_seconds: float

    @property
    def content_id(self) -> str:
        """The episode id, or the title id for a movie."""
        return self.episode_id or self.title_id


async def transcoded_asset(database_url: str) -> PlaybackAsset:
    """The session's one real asset (transcoded on the first call, for a title of its own)."""
    async with _lock:
        if database_url not in _base:
            _base[database_url] = await _transcode(database_url)
        return _base[database_url]


@pytest.fixture(scope="session")
async def playback_asset(database_url: str) -> PlaybackAsset:
    """Session fixture over transcoded_asset()."""
    return await transcoded_asset(database_url)


async def asset_for(
    database_url: str, *, title_id: uuid.UUID | str, episode_id: uuid.UUID | str | None = None
) -> PlaybackAsset:
    """A copy of the session's asset as the current, ready asset of this title (or episode)."""
    from shared.infra.storage import get_storage
    from shared.settings import get_settings
    from shared.transcoding.keys import load_keys, store_keys

    base = await transcoded_asset(database_url)
    new_id = uuid.uuid4()
    new_prefix = f"media/assets/{new_id}/"
    storage = await get_storage()
    for key in await storage.list_keys(base.prefix):
        info = await storage.head(key)
        await storage.put_bytes(
            new_prefix + key.removeprefix(base.prefix),
            await storage.get_bytes(key),
            content_type=info.content_type if info else None,
        )
    async with await _connect(database_url) as conn, conn.transaction():
        columns = await _columns(conn, "media_assets")
        overrides = {
            "id": "%(new)s::uuid",
            "title_id": "%(title)s::uuid",
            "episode_id": "%(episode)s::uuid",
            "source_id": "source_id",
            "is_current": "true",
            "created_at": "now()",
            "updated_at": "now()",
        }
        select = []
        for name, kind in columns:
            if name in overrides:
                select.append(overrides[name])
            elif kind in ("text", "jsonb"):
                # Prefixes and keys name the asset: storage_prefix, hls_master, images, packaging...
                select.append(f"replace({name}::text, %(old_text)s::text, %(new_text)s::text)::{kind}")
            else:
                select.append(name)
        params = {
            "new": str(new_id),
            "old": base.asset_id,
            "new_text": str(new_id),
            "old_text": base.asset_id,
            "title": str(title_id),
            "episode": str(episode_id) if episode_id else None,
        }
        await conn.execute(
            "update public.media_assets set is_current = false where title_id = %(title)s::uuid"
            " and episode_id is not distinct from %(episode)s::uuid and purpose = 'main' and is_current",
            params,
        )
        names = ", ".join(name for name, _ in columns)
        await conn.execute(
            f"insert into public.media_assets ({names}) select {', '.join(select)}"
            " from public.media_assets where id = %(old)s::uuid",
            params,
        )
        renditions = ", ".join(
            name for name, _ in await _columns(conn, "media_renditions") if name != "asset_id"
        )
        await conn.execute(
            f"insert into public.media_renditions (asset_id, {renditions})"
            f" select %(new)s::uuid, {renditions} from public.media_renditions"
            " where asset_id = %(old)s::uuid",
            params,
        )
        await conn.execute(
            "insert into public.media_subtitles (title_id, episode_id, language, label, forced, sdh,"
            " storage_key, cue_count) select %(title)s::uuid, %(episode)s::uuid, language, label, forced,"
            " sdh, storage_key, cue_count from public.media_subtitles where title_id = %(base_title)s::uuid"
            " and episode_id is null and deleted_at is null on conflict do nothing",
            params | {"base_title": base.title_id},
        )
        settings = get_settings()
        keys = await load_keys(conn, asset_id=uuid.UUID(base.asset_id), settings=settings)
        await store_keys(conn, asset_id=new_id, keys=keys, settings=settings)
    return PlaybackAsset(
        asset_id=str(new_id),
        title_id=str(title_id),
        episode_id=str(episode_id) if episode_id else None,
        prefix=new_prefix,
        hls_master=new_prefix + base.hls_master.removeprefix(base.prefix),
        dash_manifest=new_prefix + base.dash_manifest.removeprefix(base.prefix),
        heights=base.heights,
        audio_languages=base.audio_languages,
        subtitle_languages=base.subtitle_languages,
        duration_seconds=base.duration_seconds,
    )


async def _connect(database_url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None)


async def _columns(conn: psycopg.AsyncConnection[Any], table: str) -> list[tuple[str, str]]:
    cursor = await conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'public' and table_name = %s order by ordinal_position",
        (table,),
    )
    return [(name, kind) for name, kind in await cursor.fetchall()]


async def _transcode(database_url: str) -> PlaybackAsset:
    """Generate the clip, upload it as a title's source, queue the job and run the real worker on it."""
    from shared.settings import get_settings
    from tests.support.catalog_factory import title
    from tests.transcoding.jobs_support import clip, make_source, park_foreign_jobs, queue_job, work

    saved = {name: os.environ.get(name) for name in ("MEDIA_X264_PRESET", "MEDIA_FIRST_RUNGS")}
    os.environ.update(MEDIA_X264_PRESET="ultrafast", MEDIA_FIRST_RUNGS="2")
    get_settings.cache_clear()
    try:
        with tempfile.TemporaryDirectory(prefix="playback-clip-") as folder:
            path = clip(
                Path(folder) / "playback.mp4", seconds=CLIP_SECONDS, width=CLIP_SIZE[0], height=CLIP_SIZE[1]
            )
            async with await _connect(database_url) as conn:
                # Other tests' leftovers must not run inside this fixture (nor be run by it later).
                await park_foreign_jobs(conn)
                title_id = await title(conn, f"Playback {uuid.uuid4().hex[:6]}")
                await _add_subtitles(conn, title_id)
                source_id, _ = await make_source(conn, path, title_id=title_id)
            job_id = await queue_job(database_url, source_id)
            outcomes = await work(kinds=["transcode.run", "events.deliver"])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()  # the preset is read per job: no connection or client to recreate
    async with await _connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            "select a.id, a.state, a.storage_prefix, a.hls_master, a.dash_manifest, a.duration_seconds,"
            " j.state as job_state, j.failure_reason from public.transcode_jobs j"
            " join public.media_assets a on a.id = j.asset_id where j.id = %s",
            (job_id,),
        )
        row = await cursor.fetchone()
        if row is None or row["state"] != "ready":
            raise RuntimeError(f"the playback test asset did not transcode: {row!r}, outcomes {outcomes!r}")
        await cursor.execute(
            "select kind, height, language from public.media_renditions where asset_id = %s", (row["id"],)
        )
        renditions = await cursor.fetchall()
    return PlaybackAsset(
        asset_id=str(row["id"]),
        title_id=str(title_id),
        episode_id=None,
        prefix=row["storage_prefix"],
        hls_master=row["hls_master"],
        dash_manifest=row["dash_manifest"],
        heights=tuple(sorted(r["height"] for r in renditions if r["kind"] == "video")),
        audio_languages=tuple(sorted(r["language"] for r in renditions if r["kind"] == "audio")),
        subtitle_languages=tuple(language for language, _, _ in SUBTITLES),
        duration_seconds=float(row["duration_seconds"] or CLIP_SECONDS),
    )


async def _add_subtitles(conn: psycopg.AsyncConnection[Any], title_id: uuid.UUID) -> None:
    """Subtitle tracks of the title, in storage and in media_subtitles, before the transcode reads them."""
    from shared.infra.storage import get_storage

    storage = await get_storage()
    for language, label, forced in SUBTITLES:
        key = f"media/subtitles/{title_id}/{language}{'-forced' if forced else ''}.vtt"
        await storage.put_bytes(key, VTT.format(text=label).encode(), content_type="text/vtt")
        await conn.execute(
            "insert into public.media_subtitles (title_id, language, label, forced, storage_key, cue_count)"
            " values (%s, %s, %s, %s, %s, 2)",
            (title_id, language, label, forced, key),
        )
