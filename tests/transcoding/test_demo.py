"""Demo media: generated clips become sources of demo titles, transcoded by the pipeline; idempotent."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import m3u8
import pytest

from shared.infra.loop_local import reset_all
from shared.settings import get_settings
from shared.transcoding.demo import DEMO_CLIPS, DemoClip, DemoSubtitle, seed_demo_media
from tests.support.catalog_factory import title
from tests.transcoding.jobs_support import Db, job_row, park_foreign_jobs, work

SRT = "1\n00:00:00,200 --> 00:00:01,500\nHello.\n"
TINY = (
    DemoClip("tiny-one-language", 0, 2.0, 320, 180),
    DemoClip(
        "tiny-two-languages",
        1,
        2.0,
        320,
        180,
        audio_languages=("eng", "fra"),
        subtitles=(DemoSubtitle("en", "English", SRT), DemoSubtitle("fr", "Français", SRT, forced=True)),
    ),
    DemoClip("tiny-no-title", 5, 2.0, 320, 180),
)


def test_the_demo_clips_are_what_the_issue_asks_for() -> None:
    sizes = {(clip.width, clip.height) for clip in DEMO_CLIPS}
    assert len(sizes) == 3 and all(clip.seconds <= 10 for clip in DEMO_CLIPS)
    [multi] = [clip for clip in DEMO_CLIPS if len(clip.audio_languages) == 2]
    assert {subtitle.forced for subtitle in multi.subtitles} == {False, True}


async def sources_of(db: Db, title_ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    cursor = await db.execute(
        "select s.id, s.title_id, j.id, j.state from public.media_sources s"
        " join public.transcode_jobs j on j.source_id = s.id where s.title_id = any(%s) order by s.id",
        (title_ids,),
    )
    return list(await cursor.fetchall())


@pytest.mark.slow
async def test_seeding_demo_media_twice_then_transcoding_it(
    db: Db, settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.infra.storage import get_storage
    from shared.transcoding import tracking
    from shared.transcoding.service import queue_manifest_refresh

    settings_env(MEDIA_X264_PRESET="ultrafast")
    monkeypatch.setattr(tracking, "DEFAULT_INTERVAL", 0.2)
    await reset_all()
    await park_foreign_jobs(db)
    slugs = [f"demo-media-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    title_ids = [await title(db, f"Demo {slug}", slug=slug) for slug in slugs]
    storage = await get_storage()

    first = await seed_demo_media(db, storage=storage, settings=get_settings(), title_slugs=slugs, clips=TINY)
    again = await seed_demo_media(db, storage=storage, settings=get_settings(), title_slugs=slugs, clips=TINY)

    assert (first.created, first.existing, first.skipped) == (2, 0, 1)
    assert (again.created, again.existing, again.skipped) == (0, 2, 1)
    rows = await sources_of(db, title_ids)
    assert len(rows) == 2 and {state for *_, state in rows} == {"queued"}
    cursor = await db.execute(
        "select language, forced, id, storage_key from public.media_subtitles where title_id = %s"
        " order by language",
        (title_ids[1],),
    )
    tracks = await cursor.fetchall()
    assert [(language, forced) for language, forced, *_ in tracks] == [("en", False), ("fr", True)]
    # Stored where uploaded tracks are (shared.media.tracks): media/subtitles/<id>.vtt.
    assert all(key == f"media/subtitles/{track_id}.vtt" for *_, track_id, key in tracks)
    assert [await storage.head(key) is not None for *_, key in tracks] == [True, True]

    outcomes = await work(kinds=["transcode.run"])
    assert outcomes.count(("transcode.run", "done")) == 2
    for _, _, job_id, _ in rows:
        assert (await job_row(db, job_id))["state"] == "ready"

    # The two-language title: audio renditions and both subtitle tracks in the master playlist.
    cursor = await db.execute(
        "select id, hls_master from public.media_assets where title_id = %s and is_current", (title_ids[1],)
    )
    [(asset_id, master_key)] = await cursor.fetchall()
    master = m3u8.loads((await storage.get_bytes(master_key)).decode())
    kinds = sorted((media.type, media.language, media.forced) for media in master.media)
    assert ("SUBTITLES", "en", "NO") in kinds and ("SUBTITLES", "fr", "YES") in kinds
    assert len([kind for kind in kinds if kind[0] == "AUDIO"]) == 2

    # A subtitle added later reaches the manifests through media.manifests, without a re-encode.
    subtitle_id = uuid.uuid4()
    key = f"media/subtitles/{subtitle_id}.vtt"  # the layout of shared.media.tracks
    spanish = b"WEBVTT\n\n00:00.200 --> 00:01.500\nHola.\n"
    await storage.put_bytes(key, spanish, content_type="text/vtt")
    await db.execute(
        "insert into public.media_subtitles (id, title_id, language, label, storage_key, cue_count)"
        " values (%s, %s, 'es', 'Español', %s, 1)",
        (subtitle_id, title_ids[1], key),
    )
    async with db.transaction():
        await queue_manifest_refresh(db, title_id=title_ids[1], episode_id=None)
    # Only this title's job: other tests (a console subtitle upload) may have left one of theirs parked.
    await db.execute(
        "update public.job_queue set run_at = now() where kind = 'media.manifests' and state = 'queued'"
        " and payload->>'title_id' = %s",
        (str(title_ids[1]),),
    )
    assert await work(kinds=["media.manifests"]) == [("media.manifests", "done")]
    master = m3u8.loads((await storage.get_bytes(master_key)).decode())
    assert "es" in {media.language for media in master.media if media.type == "SUBTITLES"}
    digest = hashlib.sha256(spanish).hexdigest()[:8]
    assert await storage.head(f"media/assets/{asset_id}/hls/subtitles/es-{digest}.vtt") is not None
