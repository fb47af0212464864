"""Helpers for the transcode job tests: sources in real storage, and a worker loop on the real queue."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

from tests.support.catalog_factory import title

Db = psycopg.AsyncConnection[Any]


def clip(path: Path, *, seconds: float = 3.0, width: int = 320, height: int = 180, **options: Any) -> Path:
    """A generated test-pattern clip (two audio languages by default)."""
    from shared.infra.media import ffmpeg_binary
    from shared.settings import get_settings
    from shared.transcoding.pipeline.testclips import generate_clip

    options.setdefault("audio_languages", ("eng", "fra"))
    return generate_clip(
        ffmpeg_binary(get_settings()), path, seconds=seconds, width=width, height=height, **options
    )


async def make_source(
    db: Db,
    file: Path,
    *,
    title_id: uuid.UUID | None = None,
    state: str = "uploaded",
    purpose: str = "main",
) -> tuple[uuid.UUID, uuid.UUID]:
    """Store the file as an uploaded source of a (new) title; (source_id, title_id)."""
    from shared.infra.storage import get_storage

    title_id = title_id or await title(db, f"Transcode {uuid.uuid4().hex[:6]}")
    source_id = uuid.uuid4()
    key = f"media/sources/{source_id}/{file.name}"
    data = await asyncio.to_thread(file.read_bytes)
    storage = await get_storage()
    await storage.upload_file(key, file, content_type="video/mp4")
    await db.execute(
        """
        insert into public.media_sources (id, title_id, purpose, storage_key, filename, content_type,
                                          size_bytes, sha256, state, uploaded_at)
        values (%s, %s, %s, %s, %s, 'video/mp4', %s, %s, %s, now())
        """,
        (source_id, title_id, purpose, key, file.name, len(data), hashlib.sha256(data).hexdigest(), state),
    )
    return source_id, title_id


async def queue_job(database_url: str, source_id: uuid.UUID, **options: Any) -> uuid.UUID:
    """queue_transcode in a committed transaction of its own, as the API or the upload flow does."""
    from shared.transcoding.service import queue_transcode

    connect = psycopg.AsyncConnection.connect(database_url, prepare_threshold=None)
    async with await connect as conn, conn.transaction():
        job = await queue_transcode(conn, source_id=source_id, created_by=None, **options)
    return job.id


async def park_foreign_jobs(db: Db) -> None:
    """Delay jobs other tests left queued, so this test's worker loop runs only its own."""
    await db.execute(
        "update public.job_queue set run_at = now() + interval '1 day' where state = 'queued'"
        " and run_at <= now() + interval '1 minute'"
    )


async def work(*, kinds: Iterable[str] | None = None, rounds: int = 50) -> list[tuple[str, str]]:
    """Run the real worker dispatch on the default queue until nothing is ready; (kind, outcome)."""
    from shared.infra.queue import get_queue
    from shared.infra.queue.worker import dispatch
    from shared.jobs import load_handlers

    load_handlers()
    queue = await get_queue()
    done: list[tuple[str, str]] = []
    wanted = set(kinds) if kinds else None
    for _ in range(rounds):
        jobs = await queue.receive(max_jobs=1)
        if not jobs:
            break
        for job in jobs:
            if wanted is not None and job.kind not in wanted:
                await _park(job.id)
                continue
            done.append((job.kind, (await dispatch(queue, job)).value))
    return done


async def _park(queue_job_id: str) -> None:
    """Put a received job of another kind back, a day later and uncharged.

    A retry would count an attempt and, with no backoff, come straight back until it is dead-lettered.
    """
    from shared.infra.db import get_pool

    async with (await get_pool()).connection() as conn:
        await conn.execute(
            "update public.job_queue set state = 'queued', run_at = now() + interval '1 day',"
            " attempts = greatest(attempts - 1, 0), locked_by = null, locked_until = null"
            " where id = %s and state = 'running'",
            (queue_job_id,),
        )


async def job_row(db: Db, job_id: uuid.UUID) -> dict[str, Any]:
    """The transcode_jobs row."""
    from psycopg.rows import dict_row

    async with db.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("select * from public.transcode_jobs where id = %s", (job_id,))
        row = await cursor.fetchone()
    assert row is not None
    return row


async def history(db: Db, job_id: uuid.UUID) -> list[tuple[str, str]]:
    """The job's (state, message) history."""
    cursor = await db.execute(
        "select state, message from public.transcode_job_events where job_id = %s order by id", (job_id,)
    )
    return [(state, message) for state, message in await cursor.fetchall()]


async def wait_for(predicate: Any, *, within: float = 30.0, every: float = 0.05) -> None:
    """Poll an async predicate until it is true (TimeoutError after `within` seconds)."""
    async with asyncio.timeout(within):
        while True:
            if await predicate():
                return
            await asyncio.sleep(every)
