"""Playable media for the demo catalog: generated clips stored as sources of demo titles, transcoded.

`cinema seed` calls seed_demo_media_url after the demo catalog: it generates a few short test-pattern
clips (different sizes, one with two audio languages and subtitles), stores them as uploaded sources
and queues their transcode jobs, which the `make dev` worker runs through the very same pipeline.
Idempotent: every demo source has a fixed id, so seeding again adds nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.infra.storage.base import Storage
    from shared.settings import Settings

_NAMESPACE = uuid.UUID("0b6f3c2e-7a51-4c1e-9d0e-5f1d2c3b4a69")
_LOCK_KEY = 0x0C1E_DE30_ED1A_5EED


@dataclass(frozen=True)
class DemoSubtitle:
    """A subtitle track of a demo clip (SRT, normalised to WebVTT when stored)."""

    language: str  # BCP 47
    label: str
    srt: str
    forced: bool = False


@dataclass(frozen=True)
class DemoClip:
    """One generated clip and the demo title it belongs to (the title_index'th demo title)."""

    name: str
    title_index: int
    seconds: float
    width: int
    height: int
    audio_languages: tuple[str, ...] = ("eng",)
    subtitles: tuple[DemoSubtitle, ...] = field(default_factory=tuple)
    # How the title is offered (catalog_titles.access), so `make dev` shows each way of watching: free,
    # with a subscription, or rented/bought at these prices (kind, currency, minor units).
    access: str = "free"
    offers: tuple[tuple[str, str, int], ...] = ()


_ENGLISH = """1
00:00:00,500 --> 00:00:03,000
Welcome to Cinema Online.

2
00:00:03,500 --> 00:00:06,500
This clip has two audio languages:
English at 440 Hz, French at 660 Hz.

3
00:00:07,000 --> 00:00:09,500
Switch tracks in the player to hear the difference.
"""

_FRENCH_FORCED = """1
00:00:03,500 --> 00:00:06,500
[Panneau] Bienvenue
"""

DEMO_CLIPS: tuple[DemoClip, ...] = (
    DemoClip("test-pattern-360p", 0, 8.0, 640, 360),
    DemoClip(
        "two-languages-720p",
        1,
        10.0,
        1280,
        720,
        access="subscription",
        audio_languages=("eng", "fra"),
        subtitles=(
            DemoSubtitle("en", "English", _ENGLISH),
            DemoSubtitle("fr", "Français (forced)", _FRENCH_FORCED, forced=True),
        ),
    ),
    DemoClip(
        "test-pattern-480p",
        2,
        6.0,
        854,
        480,
        access="transactional",
        offers=(
            ("rental", "USD", 399),
            ("rental", "EUR", 399),
            ("purchase", "USD", 1499),
            ("purchase", "EUR", 1299),
        ),
    ),
)


@dataclass(frozen=True)
class DemoMediaResult:
    """What one seeding did."""

    created: int
    existing: int
    skipped: int  # clips whose demo title does not exist (the demo catalog was not loaded)


def source_id_of(title_slug: str, clip: DemoClip) -> uuid.UUID:
    """The fixed id of a demo source: seeding again finds it."""
    return uuid.uuid5(_NAMESPACE, f"{title_slug}:{clip.name}")


def _generate(settings: Settings, clip: DemoClip, folder: Path) -> Path:
    from shared.infra.media import ffmpeg_binary
    from shared.transcoding.pipeline.testclips import generate_clip

    return generate_clip(
        ffmpeg_binary(settings),
        folder / f"{clip.name}.mp4",
        seconds=clip.seconds,
        width=clip.width,
        height=clip.height,
        audio_languages=clip.audio_languages,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _title_ids(conn: AsyncConnection[Any], slugs: list[str]) -> dict[str, uuid.UUID]:
    cursor = await conn.execute(
        "select slug, id from public.catalog_titles where slug = any(%s) and deleted_at is null", (slugs,)
    )
    return {slug: title_id for slug, title_id in await cursor.fetchall()}


async def seed_demo_media(
    conn: AsyncConnection[Any],
    *,
    storage: Storage,
    settings: Settings,
    title_slugs: list[str] | None = None,
    clips: tuple[DemoClip, ...] = DEMO_CLIPS,
) -> DemoMediaResult:
    """Store missing demo clips as sources of demo titles and queue their transcodes; `conn` autocommit."""
    from shared.media.subtitles import normalise_subtitles
    from shared.media.tracks import SUBTITLES_PREFIX, VTT_CONTENT_TYPE
    from shared.transcoding.service import queue_transcode

    if title_slugs is None:
        from shared.catalog.demo import title_slugs as demo_slugs

        title_slugs = demo_slugs()
    titles = await _title_ids(conn, title_slugs)
    created = existing = skipped = 0
    with tempfile.TemporaryDirectory(prefix="demo-media-") as scratch:
        for clip in clips:
            slug = title_slugs[clip.title_index] if clip.title_index < len(title_slugs) else None
            title_id = titles.get(slug) if slug else None
            if slug is None or title_id is None:
                skipped += 1
                continue
            source_id = source_id_of(slug, clip)
            cursor = await conn.execute("select 1 from public.media_sources where id = %s", (source_id,))
            if await cursor.fetchone():
                existing += 1
                continue
            path = await asyncio.to_thread(_generate, settings, clip, Path(scratch))
            key = f"media/sources/{source_id}/{path.name}"
            await storage.upload_file(key, path, content_type="video/mp4")
            subtitle_files = []
            for subtitle in clip.subtitles:
                text, cues = normalise_subtitles(subtitle.srt.encode(), filename="demo.srt")
                subtitle_id = uuid.uuid5(_NAMESPACE, f"{source_id}:{subtitle.language}:{subtitle.forced}")
                # The layout of uploaded tracks (shared.media.tracks): one file per track id.
                subtitle_key = f"{SUBTITLES_PREFIX}/{subtitle_id}.vtt"
                await storage.put_bytes(subtitle_key, text.encode(), content_type=VTT_CONTENT_TYPE)
                subtitle_files.append((subtitle, subtitle_id, subtitle_key, cues))
            async with conn.transaction():
                # Two seeders at once (make dev started twice): the second waits, then finds the row.
                await conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                cursor = await conn.execute(
                    """
                    insert into public.media_sources (
                        id, title_id, purpose, storage_key, filename, content_type, size_bytes, sha256, state,
                        uploaded_at)
                    values (%s, %s, 'main', %s, %s, 'video/mp4', %s, %s, 'uploaded', now())
                    on conflict (id) do nothing
                    """,
                    (
                        source_id,
                        title_id,
                        key,
                        path.name,
                        path.stat().st_size,
                        await asyncio.to_thread(_sha256, path),
                    ),
                )
                if cursor.rowcount == 0:
                    existing += 1
                    continue
                # Free: any signed-in profile; subscription: the Basic plan up; transactional: a rental.
                await conn.execute(
                    "update public.catalog_titles set access = %s, min_tier = 1 where id = %s",
                    (clip.access, title_id),
                )
                for kind, currency, amount in clip.offers:
                    await conn.execute(
                        """
                        insert into public.title_offers (title_id, kind, currency, amount_minor)
                        values (%s, %s, %s, %s) on conflict do nothing
                        """,
                        (title_id, kind, currency, amount),
                    )
                for subtitle, subtitle_id, subtitle_key, cues in subtitle_files:
                    await conn.execute(
                        """
                        insert into public.media_subtitles (
                            id, title_id, language, label, forced, storage_key, cue_count)
                        values (%s, %s, %s, %s, %s, %s, %s)
                        on conflict do nothing
                        """,
                        (
                            subtitle_id,
                            title_id,
                            subtitle.language,
                            subtitle.label,
                            subtitle.forced,
                            subtitle_key,
                            cues,
                        ),
                    )
                await queue_transcode(
                    conn, source_id=source_id, created_by=None, priority=-5, reason="upload"
                )
            created += 1
    return DemoMediaResult(created=created, existing=existing, skipped=skipped)


async def seed_demo_media_url(database_url: str) -> str:
    """For `cinema seed`: seed the demo media on its own connection; a one-line summary."""
    import psycopg

    from shared.infra.loop_local import reset_all
    from shared.infra.storage import get_storage
    from shared.settings import get_settings

    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, prepare_threshold=None
        ) as conn:
            result = await seed_demo_media(conn, storage=await get_storage(), settings=get_settings())
    finally:
        await reset_all()  # the storage client belongs to this event loop
    if not result.created:
        return "demo media already present" if result.existing else "demo media skipped: no demo titles"
    return (
        f"demo media: {result.created} clip(s) stored, transcodes queued (the worker of `make dev` runs them)"
    )
