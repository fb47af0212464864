"""The watchdog: a job whose worker died goes back to the queue, or fails once out of attempts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.infra.loop_local import reset_all
from shared.transcoding.watchdog import requeue_stalled
from tests.transcoding.jobs_support import Db, history, job_row, make_source, queue_job


@pytest.fixture
async def stall_limit(settings_env: Any, db: Db) -> AsyncIterator[None]:
    settings_env(MEDIA_JOB_STALL_SECONDS="60", QUEUE_MAX_ATTEMPTS="3")
    await reset_all()
    yield
    # No worker runs here: the re-queued messages would only slow later tests' workers down.
    await db.execute(
        "update public.job_queue set state = 'done' where kind = 'transcode.run' and state = 'queued'"
        " and (payload->>'transcode_job_id')::uuid in"
        " (select id from public.transcode_jobs where stage_detail = 're-queued: worker lost')"
    )


async def running_job(
    db: Db, database_url: str, tmp_path: Path, *, attempts: int, beat_ago: int
) -> uuid.UUID:
    """A job that a worker claimed and then stopped beating `beat_ago` seconds ago."""
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, _ = await make_source(db, path)
    job_id = await queue_job(database_url, source_id)
    await db.execute(
        "update public.job_queue set state = 'done' where kind = 'transcode.run'"
        " and payload->>'transcode_job_id' = %s",
        (str(job_id),),
    )
    await db.execute(
        "update public.transcode_jobs set state = 'encoding', worker_id = 'host:1:dead', attempts = %s,"
        " heartbeat_at = now() - %s * interval '1 second' where id = %s",
        (attempts, beat_ago, job_id),
    )
    return job_id


async def queued_runs(db: Db, job_id: uuid.UUID) -> int:
    cursor = await db.execute(
        "select count(*) from public.job_queue where kind = 'transcode.run' and state = 'queued'"
        " and payload->>'transcode_job_id' = %s",
        (str(job_id),),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_stalled_job_is_requeued_and_a_live_one_left_alone(
    stall_limit: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    dead = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=600)
    alive = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=5)

    report = await requeue_stalled()

    assert report.requeued >= 1
    job = await job_row(db, dead)
    assert (job["state"], job["worker_id"], job["heartbeat_at"]) == ("queued", None, None)
    assert (await history(db, dead))[-1] == ("queued", "worker lost during encoding, re-queued")
    assert await queued_runs(db, dead) == 1
    assert (await job_row(db, alive))["state"] == "encoding" and await queued_runs(db, alive) == 0
    # A second pass finds nothing more to do for it.
    await requeue_stalled()
    assert await queued_runs(db, dead) == 1
    await db.execute(
        "update public.transcode_jobs set state = 'cancelled' where id = any(%s)", ([dead, alive],)
    )


async def test_a_stalled_job_out_of_attempts_fails_dead_lettered(
    stall_limit: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    job_id = await running_job(db, database_url, tmp_path, attempts=3, beat_ago=600)

    report = await requeue_stalled()

    assert report.failed >= 1
    job = await job_row(db, job_id)
    assert (job["state"], job["failure_code"], job["dead_lettered"]) == ("failed", "worker_lost", True)
    assert "last of 3 attempts" in job["failure_reason"]
    assert await queued_runs(db, job_id) == 0
    cursor = await db.execute(
        "select count(*) from public.domain_events where name = 'media.transcode.failed'"
        " and payload->>'job_id' = %s",
        (str(job_id),),
    )
    assert await cursor.fetchone() == (1,)


async def test_a_stalled_job_whose_cancel_was_requested_ends_cancelled(
    stall_limit: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    job_id = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=600)
    await db.execute("update public.transcode_jobs set cancel_requested = true where id = %s", (job_id,))

    report = await requeue_stalled()

    assert report.cancelled >= 1
    job = await job_row(db, job_id)
    assert job["state"] == "cancelled" and job["finished_at"] is not None
    assert await queued_runs(db, job_id) == 0  # not queued for a claim that would refuse it forever
    cursor = await db.execute("select state from public.media_assets where id = %s", (job["asset_id"],))
    assert await cursor.fetchone() == ("failed",)
    cursor = await db.execute(
        "select count(*) from public.domain_events where name = 'media.transcode.cancelled'"
        " and payload->>'job_id' = %s",
        (str(job_id),),
    )
    assert await cursor.fetchone() == (1,)


async def test_a_fanned_out_job_gets_the_queue_backoff_as_grace(
    stall_limit: None, settings_env: Any, db: Db, database_url: str, tmp_path: Path
) -> None:
    settings_env(QUEUE_BACKOFF_MAX_SECONDS="900")
    # Its chunks beat only while one runs; between a chunk's failed try and its retry the queue waits.
    waiting = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=600)
    silent = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=2000)
    await db.execute(
        "update public.transcode_jobs set worker_id = 'fanout:1' where id = any(%s)", ([waiting, silent],)
    )

    await requeue_stalled()

    assert (await job_row(db, waiting))["state"] == "encoding" and await queued_runs(db, waiting) == 0
    assert (await job_row(db, silent))["state"] == "queued" and await queued_runs(db, silent) == 1
    await db.execute(
        "update public.transcode_jobs set state = 'cancelled' where id = any(%s)", ([waiting, silent],)
    )


async def test_progress_never_moves_back_when_a_job_is_claimed_again(
    stall_limit: None, db: Db, database_url: str, tmp_path: Path
) -> None:
    from shared.transcoding import repository

    job_id = await running_job(db, database_url, tmp_path, attempts=1, beat_ago=600)
    await db.execute("update public.transcode_jobs set progress = 55 where id = %s", (job_id,))
    await requeue_stalled()
    await db.execute(
        "update public.job_queue set state = 'done' where kind = 'transcode.run'"
        " and payload->>'transcode_job_id' = %s",
        (str(job_id),),
    )

    claimed = await repository.claim_job(db, job_id, worker_id="host:2:new", stall_seconds=60)

    assert claimed is not None and claimed["attempts"] == 2
    assert float((await job_row(db, job_id))["progress"]) == 55  # shown before: never less afterwards
    # The new attempt's first stage (back at 3 %) does not lower it either.
    assert await repository.set_state(
        db, job_id, worker_id="host:2:new", state="probing", detail="probing", progress=3.0
    )
    assert float((await job_row(db, job_id))["progress"]) == 55
    await db.execute("update public.transcode_jobs set state = 'cancelled' where id = %s", (job_id,))
