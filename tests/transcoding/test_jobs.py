"""A transcode job through the real PostgreSQL queue and worker dispatch, on tiny generated clips."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import m3u8
import pytest

from shared.events import DomainEvent, subscribe, unsubscribe
from shared.infra.loop_local import reset_all
from tests.transcoding.jobs_support import (
    Db,
    clip,
    history,
    job_row,
    make_source,
    park_foreign_jobs,
    queue_job,
    wait_for,
    work,
)


@pytest.fixture
async def fast_media(settings_env: Any, monkeypatch: pytest.MonkeyPatch, db: Db) -> None:
    """Cheap encodes, quick progress ticks, retries without waiting; other tests' jobs out of the way."""
    from shared.transcoding import tracking

    settings_env(MEDIA_X264_PRESET="ultrafast", QUEUE_BACKOFF_BASE_SECONDS="0", QUEUE_BACKOFF_MAX_SECONDS="0")
    monkeypatch.setattr(tracking, "DEFAULT_INTERVAL", 0.2)
    await reset_all()
    await park_foreign_jobs(db)


@pytest.fixture
def received() -> Any:
    events: list[DomainEvent] = []

    @subscribe("media.transcode.ready", subscriber_id="tests.transcoding.ready")
    async def on_ready(event: DomainEvent) -> None:
        events.append(event)

    @subscribe("media.transcode.failed", subscriber_id="tests.transcoding.failed")
    async def on_failed(event: DomainEvent) -> None:
        events.append(event)

    yield events
    unsubscribe("media.transcode.ready", "tests.transcoding.ready")
    unsubscribe("media.transcode.failed", "tests.transcoding.failed")


async def stored(prefix: str) -> dict[str, Any]:
    """Every object under the prefix with its metadata (local storage)."""
    from shared.infra.storage import get_storage

    storage = await get_storage()
    objects = {}
    for key in await storage.list_keys(prefix):
        objects[key] = await storage.head(key)
    return objects


def mtime(key: str) -> int:
    from shared.settings import get_settings

    return (get_settings().data_dir / "storage" / key).stat().st_mtime_ns


@pytest.mark.slow
async def test_a_job_runs_to_a_ready_protected_asset(
    fast_media: None, received: list[DomainEvent], db: Db, database_url: str, tmp_path: Path
) -> None:
    source_id, title_id = await make_source(db, clip(tmp_path / "two-languages.mp4", seconds=3))
    job_id = await queue_job(database_url, source_id)
    progress: list[float] = []

    async def watch() -> None:
        while True:
            row = await job_row(db, job_id)
            progress.append(float(row["progress"]))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        outcomes = await work()
    finally:
        watcher.cancel()
    assert ("transcode.run", "done") in outcomes
    assert ("events.deliver", "done") in outcomes

    job = await job_row(db, job_id)
    assert (job["state"], job["progress"], job["attempts"], job["failure_code"]) == ("ready", 100, 1, None)
    assert progress == sorted(progress) and len(set(progress)) >= 3  # increasing, seen on the way
    states = [state for state, _ in await history(db, job_id)]
    order = [
        "queued",
        "probing",
        "encoding",
        "packaging",
        "publishing",
        "encoding",
        "packaging",
        "publishing",
        "ready",
    ]
    compact = [state for index, state in enumerate(states) if index == 0 or states[index - 1] != state]
    assert compact == order, states
    messages = [message for _, message in await history(db, job_id)]
    assert any(message.startswith("playable:") for message in messages)

    cursor = await db.execute(
        "select id, state, is_current, playable_at, ready_at, hls_master, dash_manifest, storage_prefix,"
        " images, drm from public.media_assets where source_id = %s",
        (source_id,),
    )
    [
        (asset_id, state, current, playable_at, ready_at, hls_master, dash_manifest, prefix, images, drm)
    ] = await cursor.fetchall()
    assert (state, current) == ("ready", True)
    assert playable_at is not None and ready_at is not None and playable_at <= ready_at
    assert job["asset_id"] == asset_id and hls_master == f"{prefix}hls/master.m3u8"
    assert images["posters"] and images["thumbnails_vtt"].startswith(prefix)
    cursor = await db.execute(
        "select name, kind, codec, language from public.media_renditions where asset_id = %s order by name",
        (asset_id,),
    )
    renditions = await cursor.fetchall()
    kinds = {kind for _, kind, _, _ in renditions}
    assert kinds == {"video", "audio", "iframe"}
    assert {language for _, kind, _, language in renditions if kind == "audio"} == {"en", "fr"} or {
        language for _, kind, _, language in renditions if kind == "audio"
    } == {"eng", "fra"}
    assert sorted(job["renditions_done"]) == sorted(name for name, *_ in renditions)

    # Published: every file under the prefix, manifests written after the media they name.
    objects = await stored(prefix)
    assert hls_master in objects and dash_manifest in objects
    assert objects[hls_master].content_type == "application/vnd.apple.mpegurl"
    assert objects[dash_manifest].content_type == "application/dash+xml"
    segments = [key for key in objects if key.endswith(".m4s")]
    assert segments and all(objects[key].content_type == "video/iso.segment" for key in segments)
    assert not any("/." in key for key in objects)  # no scratch (clear segments) published
    newest_media = max(mtime(key) for key in objects if not key.endswith((".m3u8", ".mpd")))
    assert mtime(hls_master) >= newest_media and mtime(dash_manifest) >= newest_media
    from shared.infra.storage import get_storage

    master = m3u8.loads((await (await get_storage()).get_bytes(hls_master)).decode())
    assert master.is_variant and master.playlists

    # Keys: wrapped in the database, unwrapping to the ones the packager used.
    from shared.settings import get_settings
    from shared.transcoding.keys import load_keys

    cursor = await db.execute(
        "select key_id, wrapped_cenc_key, wrapped_hls_key from public.media_keys where asset_id = %s",
        (asset_id,),
    )
    [(key_id, wrapped_cenc, wrapped_hls)] = await cursor.fetchall()
    keys = await load_keys(db, asset_id=asset_id, settings=get_settings())
    assert keys.key_id.hex() == key_id == drm["key_id"]
    assert bytes(wrapped_cenc) != keys.cenc_key and keys.cenc_key not in bytes(wrapped_cenc)
    assert bytes(wrapped_hls) != keys.hls_key and keys.hls_key not in bytes(wrapped_hls)

    # The event, delivered to a subscriber; the probe kept on the source.
    [event] = [event for event in received if event.payload["job_id"] == str(job_id)]
    assert event.name == "media.transcode.ready"
    assert event.payload["asset_id"] == str(asset_id) and event.payload["title_id"] == str(title_id)
    cursor = await db.execute("select probe from public.media_sources where id = %s", (source_id,))
    [(probe,)] = await cursor.fetchall()
    assert probe["width"] == 320 and len(probe["audio"]) == 2

    # A redelivered message changes nothing: one asset, same files, same bytes.
    before = {key: (info.etag, info.size) for key, info in objects.items()}
    from shared.infra.queue import get_queue

    await (await get_queue()).enqueue("transcode.run", {"transcode_job_id": str(job_id)})
    assert await work() == [("transcode.run", "done")]
    after = {key: (info.etag, info.size) for key, info in (await stored(prefix)).items()}
    assert after == before
    cursor = await db.execute("select count(*) from public.media_assets where source_id = %s", (source_id,))
    assert (await cursor.fetchone()) == (1,)
    assert (await job_row(db, job_id))["attempts"] == 1


async def test_a_hostile_file_fails_at_once_with_its_reason(
    fast_media: None, received: list[DomainEvent], db: Db, database_url: str, tmp_path: Path
) -> None:
    playlist = tmp_path / "movie.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n")
    source_id, _ = await make_source(db, playlist)
    job_id = await queue_job(database_url, source_id)

    # The uploader's file, not our fault: failed with the reason, the message acknowledged (no retry,
    # nothing in the dead-letter state for operators to look into).
    assert await work() == [("transcode.run", "done"), ("events.deliver", "done")]

    job = await job_row(db, job_id)
    assert job["state"] == "failed" and job["failure_code"] == "not_media", job
    assert job["failure_reason"] and job["attempts"] == 1 and not job["dead_lettered"]
    cursor = await db.execute(
        "select state, attempts from public.job_queue where kind = 'transcode.run'"
        " and payload->>'transcode_job_id' = %s",
        (str(job_id),),
    )
    assert await cursor.fetchall() == [("done", 1)]
    cursor = await db.execute(
        "select state, rejection_reason from public.media_sources where id = %s", (source_id,)
    )
    [(source_state, rejection)] = await cursor.fetchall()
    assert source_state == "rejected" and rejection == job["failure_reason"]
    cursor = await db.execute("select state from public.media_assets where id = %s", (job["asset_id"],))
    assert (await cursor.fetchone()) == ("failed",)
    [event] = [event for event in received if event.payload["job_id"] == str(job_id)]
    assert event.name == "media.transcode.failed" and event.payload["failure_code"] == "not_media"


async def test_transient_failures_retry_then_dead_letter_with_the_reason(
    fast_media: None, settings_env: Any, db: Db, database_url: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the scratch folder should be")
    settings_env(MEDIA_WORK_DIR=str(blocker / "work"), QUEUE_MAX_ATTEMPTS="2")
    await reset_all()
    source_id, _ = await make_source(db, clip(tmp_path / "a.mp4", seconds=2, audio_languages=()))
    job_id = await queue_job(database_url, source_id)

    outcomes = await work(kinds=["transcode.run"])

    assert outcomes == [("transcode.run", "retry"), ("transcode.run", "dead")]
    job = await job_row(db, job_id)
    assert (job["state"], job["attempts"], job["dead_lettered"]) == ("failed", 2, True)
    assert job["failure_code"] == "internal_error"
    assert job["failure_reason"].startswith("An internal error stopped the job; it was retried 1 time ")
    messages = [message for _, message in await history(db, job_id)]
    assert "attempt 1 failed: An internal error interrupted attempt 1; the job will be retried." in messages
    # What went wrong inside (here: a path that is a file) is for the log, never for the API.
    assert not any("not-a-folder" in text or "Error" in text for text in [*messages, job["failure_reason"]])


@pytest.mark.slow
async def test_cancelling_a_running_job_stops_ffmpeg(
    fast_media: None, settings_env: Any, db: Db, database_url: str, tmp_path: Path
) -> None:
    from shared.transcoding.service import cancel_job

    # A slow preset so the encode is surely running when the cancel lands.
    scratch = tmp_path / "work"
    settings_env(MEDIA_X264_PRESET="veryslow", MEDIA_FIRST_RUNGS="4", MEDIA_WORK_DIR=str(scratch))
    await reset_all()
    source_id, _ = await make_source(db, clip(tmp_path / "long.mp4", seconds=8, width=640, height=360))
    job_id = await queue_job(database_url, source_id)
    worker = asyncio.create_task(work(kinds=["transcode.run"]))

    async def encoding() -> bool:
        return (await job_row(db, job_id))["state"] == "encoding"

    await wait_for(encoding)
    await asyncio.sleep(0.3)
    async with db.transaction():
        cancelled = await cancel_job(db, job_id=job_id)
    assert cancelled.cancel_requested and cancelled.state == "encoding"
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(worker, 30) == [("transcode.run", "done")]
    assert asyncio.get_running_loop().time() - started < 5  # not the whole encode

    job = await job_row(db, job_id)
    assert job["state"] == "cancelled" and job["finished_at"] is not None
    assert [state for state, _ in await history(db, job_id)][-1] == "cancelled"
    assert await asyncio.to_thread(_encoders_writing_to, scratch) == []
    assert await asyncio.to_thread(lambda: list(scratch.iterdir())) == []  # the work folder is gone


def _encoders_writing_to(folder: Path) -> list[str]:
    """Command lines of ffmpeg processes writing under the folder."""
    found = []
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "ffmpeg" in command and str(folder) in command:
            found.append(command)
    return found


async def test_a_delivery_for_a_job_held_by_a_live_worker_is_a_no_op(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    source_id, _ = await make_source(db, tmp_path.joinpath("x.mp4").write_bytes(b"x") and tmp_path / "x.mp4")
    job_id = await queue_job(database_url, source_id)
    await db.execute(
        "update public.transcode_jobs set state = 'encoding', worker_id = 'elsewhere', heartbeat_at = now(),"
        " attempts = 1 where id = %s",
        (job_id,),
    )

    assert await work(kinds=["transcode.run"]) == [("transcode.run", "done")]

    job = await job_row(db, job_id)
    assert (job["state"], job["worker_id"], job["attempts"]) == ("encoding", "elsewhere", 1)
    await db.execute("update public.transcode_jobs set state = 'cancelled' where id = %s", (job_id,))


async def test_an_unknown_or_malformed_job_is_dead_lettered(fast_media: None, db: Db) -> None:
    from shared.infra.queue import get_queue

    queue = await get_queue()
    await queue.enqueue("transcode.run", {"transcode_job_id": str(uuid.uuid4())})
    await queue.enqueue("transcode.run", {"transcode_job_id": "not-a-uuid"})
    assert await work() == [("transcode.run", "dead"), ("transcode.run", "dead")]
    cursor = await db.execute(
        "select last_error from public.job_queue where kind = 'transcode.run' and state = 'dead'"
        " order by finished_at desc limit 2"
    )
    errors = sorted(json.dumps(row[0]) for row in await cursor.fetchall())
    assert any("unknown transcode job" in error for error in errors)
    assert any("malformed payload" in error for error in errors)


@pytest.mark.slow
@pytest.mark.parametrize("fanout", [True, False], ids=["queue-fan-out", "local-pool"])
async def test_a_long_source_is_encoded_in_chunks(
    fanout: bool, fast_media: None, settings_env: Any, db: Db, database_url: str, tmp_path: Path
) -> None:
    settings_env(
        MEDIA_CHUNK_FANOUT=str(fanout).lower(),
        MEDIA_CHUNK_WORKERS="2",
        MEDIA_CHUNK_MIN_SECONDS="5",
        MEDIA_CHUNK_SECONDS="12",
        MEDIA_SEGMENT_SECONDS="2",
        MEDIA_FIRST_RUNGS="1",
    )
    await reset_all()
    source_id, _ = await make_source(db, clip(tmp_path / "long.mp4", seconds=14, width=640, height=360))
    job_id = await queue_job(database_url, source_id)

    outcomes = await work()

    kinds = [kind for kind, _ in outcomes]
    assert kinds.count("transcode.chunk") == (2 if fanout else 0), outcomes
    assert kinds.count("transcode.join") == (1 if fanout else 0), outcomes
    assert all(outcome == "done" for _, outcome in outcomes)
    job = await job_row(db, job_id)
    assert (job["state"], job["progress"]) == ("ready", 100), job
    cursor = await db.execute(
        "select chunk_index, start_seconds, duration_seconds, state from public.transcode_chunks"
        " where job_id = %s order by chunk_index",
        (job_id,),
    )
    expected = [(0, 0.0, 12.0, "done"), (1, 12.0, 2.0, "done")] if fanout else []
    assert await cursor.fetchall() == expected
    from shared.infra.storage import get_storage

    storage = await get_storage()
    assert await storage.list_keys(f"media/work/{job_id}/") == []  # chunk files removed once joined
    cursor = await db.execute(
        "select r.name, r.kind from public.media_renditions r join public.media_assets a on a.id = r.asset_id"
        " where a.source_id = %s order by r.name",
        (source_id,),
    )
    names = [name for name, _ in await cursor.fetchall()]
    # One rung published first, the others (and trick play) encoded in chunks and joined.
    assert "trickplay" in names and len([name for name in names if name.startswith("h264_")]) >= 2, names
    # The joined renditions cover the whole clip: their HLS playlists add up to its 14 s.
    cursor = await db.execute(
        "select storage_prefix from public.media_assets where source_id = %s", (source_id,)
    )
    [(prefix,)] = await cursor.fetchall()
    for name in names:
        if name.startswith("h264_"):
            playlist = m3u8.loads((await storage.get_bytes(f"{prefix}hls/{name}/playlist.m3u8")).decode())
            assert abs(sum(segment.duration for segment in playlist.segments) - 14.0) < 0.2


@pytest.mark.slow
async def test_a_reencode_replaces_the_current_asset_only_once_ready(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    source_id, title_id = await make_source(db, clip(tmp_path / "a.mp4", seconds=2, audio_languages=("eng",)))
    first = await queue_job(database_url, source_id)
    await work(kinds=["transcode.run"])
    second = await queue_job(database_url, source_id, reason="reencode", priority=3)
    await work(kinds=["transcode.run"])

    old, new = (await job_row(db, first))["asset_id"], (await job_row(db, second))["asset_id"]
    assert old != new and (await job_row(db, second))["state"] == "ready"
    cursor = await db.execute(
        "select id, state, is_current from public.media_assets where title_id = %s order by created_at",
        (title_id,),
    )
    assert await cursor.fetchall() == [(old, "retired", False), (new, "ready", True)]
    messages = [message for _, message in await history(db, second)]
    assert any(
        message.startswith("playable:") and message.endswith("(not current yet)") for message in messages
    )
    assert any(message.startswith("ready:") and message.endswith("(current)") for message in messages)


async def test_a_queued_job_whose_cancel_was_requested_ends_cancelled_on_delivery(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, _ = await make_source(db, path)
    job_id = await queue_job(database_url, source_id)
    # As after a failed attempt: queued for its retry, and a cancel requested meanwhile.
    await db.execute(
        "update public.transcode_jobs set cancel_requested = true, attempts = 1 where id = %s", (job_id,)
    )

    assert ("transcode.run", "done") in await work()

    job = await job_row(db, job_id)
    assert (job["state"], job["attempts"]) == ("cancelled", 1) and job["finished_at"] is not None
    assert (await history(db, job_id))[-1] == ("cancelled", "cancelled before it was retried")
    cursor = await db.execute("select state from public.media_assets where id = %s", (job["asset_id"],))
    assert await cursor.fetchone() == ("failed",)
    cursor = await db.execute(
        "select count(*) from public.domain_events where name = 'media.transcode.cancelled'"
        " and payload->>'job_id' = %s",
        (str(job_id),),
    )
    assert await cursor.fetchone() == (1,)


async def test_a_failed_attempt_of_a_job_being_cancelled_is_not_retried(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage
    from shared.settings import get_settings
    from shared.transcoding import repository
    from shared.transcoding.orchestrate import Run

    path = tmp_path / "x.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, _ = await make_source(db, path)
    job_id = await queue_job(database_url, source_id)
    await db.execute(
        "update public.job_queue set state = 'done' where payload->>'transcode_job_id' = %s", (str(job_id),)
    )
    claimed = await repository.claim_job(db, job_id, worker_id="w1", stall_seconds=300)
    assert claimed is not None
    await db.execute("update public.transcode_jobs set cancel_requested = true where id = %s", (job_id,))
    run = Run(
        job_id=job_id,
        claimed=claimed,
        queue_attempts=1,
        worker_id="w1",
        settings=get_settings(),
        pool=await get_pool(),
        storage=await get_storage(),
    )

    assert await run.retry_later("An internal error interrupted attempt 1.") is False

    job = await job_row(db, job_id)
    assert job["state"] == "cancelled" and job["finished_at"] is not None
    assert (await history(db, job_id))[-1] == ("cancelled", "cancelled after attempt 1 failed")


async def test_a_source_too_large_for_the_worker_disk_fails_before_downloading(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, _ = await make_source(db, path)
    # An exabyte announced: no scratch disk holds that (the check comes before any byte is fetched).
    await db.execute("update public.media_sources set size_bytes = %s where id = %s", (10**18, source_id))
    job_id = await queue_job(database_url, source_id)

    assert await work(kinds=["transcode.run"]) == [("transcode.run", "done")]

    job = await job_row(db, job_id)
    assert (job["state"], job["failure_code"], job["attempts"], job["dead_lettered"]) == (
        "failed",
        "source_too_large_for_worker",
        1,
        False,
    )
    assert "scratch space" in job["failure_reason"]


async def test_keys_wrapped_by_an_unknown_master_key_fail_the_job_without_retries(
    fast_media: None, settings_env: Any, db: Db, database_url: str, tmp_path: Path
) -> None:
    import base64
    import os

    from shared.settings import get_settings
    from shared.transcoding.keys import new_content_keys, store_keys

    source_id, _ = await make_source(db, clip(tmp_path / "k.mp4", seconds=2, audio_languages=()))
    job_id = await queue_job(database_url, source_id)
    settings_env(MEDIA_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    asset_id = (await job_row(db, job_id))["asset_id"]
    await store_keys(db, asset_id=asset_id, keys=new_content_keys(), settings=get_settings())
    settings_env(MEDIA_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())  # the old one is lost
    await reset_all()

    assert await work(kinds=["transcode.run"]) == [("transcode.run", "done")]

    job = await job_row(db, job_id)
    assert (job["state"], job["failure_code"], job["attempts"], job["dead_lettered"]) == (
        "failed",
        "keys_unavailable",
        1,
        False,
    )
    assert "MEDIA_PREVIOUS_MASTER_KEYS" in job["failure_reason"]


@pytest.mark.slow
async def test_an_older_encode_finishing_last_leaves_the_newer_one_current(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    source_id, title_id = await make_source(db, clip(tmp_path / "a.mp4", seconds=2, audio_languages=("eng",)))
    older = await queue_job(database_url, source_id)
    older_asset = (await job_row(db, older))["asset_id"]
    # A newer upload of the same content, queued later, finished first: ready and current.
    newer_asset = uuid.uuid4()
    await db.execute(
        "insert into public.media_assets (id, source_id, title_id, state, is_current, storage_prefix)"
        " values (%s, %s, %s, 'ready', true, %s)",
        (newer_asset, source_id, title_id, f"media/assets/{newer_asset}/"),
    )

    await work(kinds=["transcode.run"])

    assert (await job_row(db, older))["state"] == "ready"
    cursor = await db.execute(
        "select id, state, is_current from public.media_assets where title_id = %s order by created_at",
        (title_id,),
    )
    assert await cursor.fetchall() == [(older_asset, "ready", False), (newer_asset, "ready", True)]
    messages = [message for _, message in await history(db, older)]
    assert any(message.startswith("ready:") and message.endswith("(not current yet)") for message in messages)


async def test_a_job_whose_asset_was_retired_stops_without_publishing(
    fast_media: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    from shared.infra.storage import get_storage

    path = tmp_path / "x.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, _ = await make_source(db, path)
    job_id = await queue_job(database_url, source_id)
    asset_id = (await job_row(db, job_id))["asset_id"]
    # What a newer encode's finish does to an older asset (here before this one even started; once
    # running, the same check guards the uploads and, under lock, the manifests and rows).
    await db.execute("update public.media_assets set state = 'retired' where id = %s", (asset_id,))

    assert ("transcode.run", "done") in await work()

    job = await job_row(db, job_id)
    assert (job["state"], job["failure_code"]) == ("cancelled", "asset_superseded")
    cursor = await db.execute(
        "select state, is_current, hls_master from public.media_assets where id = %s", (asset_id,)
    )
    assert await cursor.fetchone() == ("retired", False, None)
    storage = await get_storage()
    assert await storage.list_keys(f"media/assets/{asset_id}/") == []


async def test_the_newest_ready_asset_wins_and_a_retired_one_never_returns(db: Db, tmp_path: Path) -> None:
    from shared.transcoding import repository

    path = tmp_path / "x.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, title_id = await make_source(db, path)

    async def new_asset(state: str, *, current: bool = False) -> uuid.UUID:
        asset_id = uuid.uuid4()
        await db.execute(
            "insert into public.media_assets (id, source_id, title_id, state, is_current, storage_prefix)"
            " values (%s, %s, %s, %s, %s, %s)",
            (asset_id, source_id, title_id, state, current, f"media/assets/{asset_id}/"),
        )
        return asset_id

    async def publish(asset_id: uuid.UUID, state: str) -> bool:
        return await repository.publish_asset(
            db,
            asset_id,
            state=state,
            hls_master="m",
            dash_manifest="d",
            duration_seconds=1.0,
            packaging={},
            images=None,
            drm={},
        )

    async def states() -> list[tuple[Any, ...]]:
        cursor = await db.execute(
            "select id, state, is_current from public.media_assets where title_id = %s order by created_at",
            (title_id,),
        )
        return list(await cursor.fetchall())

    # A: playable and current, in its phase 2. B (uploaded later) finishes first: it replaces A.
    a = await new_asset("playable", current=True)
    b = await new_asset("processing")
    assert await publish(b, "ready") and await repository.make_current(db, b)
    assert await states() == [(a, "retired", False), (b, "ready", True)]
    # Then A finishes: its asset is no longer publishable, and it never becomes current again.
    assert not await publish(a, "ready")
    assert not await repository.make_current(db, a)
    assert await states() == [(a, "retired", False), (b, "ready", True)]
    # An older asset still playable (not retired) that becomes ready later stays behind the newer one.
    c = await new_asset("ready")
    await db.execute(
        "update public.media_assets set created_at = now() - interval '1 hour' where id = %s", (c,)
    )
    assert not await repository.make_current(db, c)
    cursor = await db.execute(
        "select id from public.media_assets where title_id = %s and is_current", (title_id,)
    )
    assert await cursor.fetchall() == [(b,)]
