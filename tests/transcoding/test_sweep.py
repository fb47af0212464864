"""The daily sweep of media storage: files of long-failed or retired assets and of ended fan-outs go."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shared.maintenance.service import run_daily
from shared.settings import get_settings
from tests.transcoding.jobs_support import Db, make_source


async def asset(db: Db, source_id: uuid.UUID, title_id: uuid.UUID, state: str, age: str) -> uuid.UUID:
    """An asset row in `state` since `age` ago, with a couple of files under its prefix."""
    from shared.infra.storage import get_storage

    asset_id = uuid.uuid4()
    prefix = f"media/assets/{asset_id}/"
    await db.execute(
        """
        insert into public.media_assets (id, source_id, title_id, state, storage_prefix, hls_master,
                                         dash_manifest, updated_at)
        values (%s, %s, %s, %s, %s, %s, %s, now() - %s::interval)
        """,
        (
            asset_id,
            source_id,
            title_id,
            state,
            prefix,
            f"{prefix}hls/master.m3u8",
            f"{prefix}dash/x.mpd",
            age,
        ),
    )
    storage = await get_storage()
    for name in ("hls/master.m3u8", "hls/h264_240p/seg-00001.m4s"):
        await storage.put_bytes(prefix + name, b"x")
    return asset_id


async def fanned_out_job(db: Db, source_id: uuid.UUID, *, state: str, ended: str | None) -> uuid.UUID:
    """A job whose chunks left files under media/work/<job>/."""
    from shared.infra.storage import get_storage

    cursor = await db.execute(
        "insert into public.transcode_jobs (source_id, state, finished_at)"
        " values (%s, %s, now() - %s::interval) returning id",
        (source_id, state, ended),
    )
    row = await cursor.fetchone()
    assert row is not None
    job_id: uuid.UUID = row[0]
    prefix = f"media/work/{job_id}/1/00000/"
    await db.execute(
        "insert into public.transcode_chunks (job_id, attempt, chunk_index, start_seconds, duration_seconds,"
        " output_prefix) values (%s, 1, 0, 0, 12, %s)",
        (job_id, prefix),
    )
    await (await get_storage()).put_bytes(prefix + "h264_720p.mp4", b"x")
    return job_id


async def keys(prefix: str) -> list[str]:
    from shared.infra.storage import get_storage

    return await (await get_storage()).list_keys(prefix)


async def test_the_daily_run_sweeps_unused_media_files_once(db: Db, tmp_path: Path) -> None:
    path = tmp_path / "f.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, title_id = await make_source(db, path)
    failed_long_ago = await asset(db, source_id, title_id, "failed", "3 days")
    retired_long_ago = await asset(db, source_id, title_id, "retired", "50 hours")
    failed_recently = await asset(db, source_id, title_id, "failed", "1 day")
    ready = await asset(db, source_id, title_id, "ready", "30 days")
    ended = await fanned_out_job(db, source_id, state="failed", ended="2 hours")
    just_ended = await fanned_out_job(db, source_id, state="cancelled", ended="1 minute")
    running = await fanned_out_job(db, source_id, state="encoding", ended=None)

    report = await run_daily(settings=get_settings())

    assert report.swept_media_prefixes >= 3
    for gone in (failed_long_ago, retired_long_ago):
        assert await keys(f"media/assets/{gone}/") == []
    for kept in (failed_recently, ready):
        assert len(await keys(f"media/assets/{kept}/")) == 2
    assert await keys(f"media/work/{ended}/") == []
    assert await keys(f"media/work/{just_ended}/") and await keys(f"media/work/{running}/")
    # The rows stay, marked, so the next run does not list them again.
    cursor = await db.execute(
        "select id, state, hls_master, packaging ? 'purged_at' from public.media_assets where id = any(%s)"
        " order by id",
        ([failed_long_ago, retired_long_ago, failed_recently],),
    )
    rows: dict[Any, tuple[Any, ...]] = {row[0]: row[1:] for row in await cursor.fetchall()}
    assert rows[failed_long_ago] == ("failed", None, True)
    assert rows[retired_long_ago] == ("retired", None, True)
    assert rows[failed_recently][2] is False
    cursor = await db.execute(
        "select job_id, output_prefix is null from public.transcode_chunks where job_id = any(%s)",
        ([ended, running],),
    )
    assert dict(await cursor.fetchall()) == {ended: True, running: False}
    from shared.transcoding.service import sweep_storage

    assert await sweep_storage() == 0  # everything sweepable went in the first run
    await db.execute("update public.transcode_jobs set state = 'cancelled' where id = %s", (running,))
