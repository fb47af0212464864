"""A run's pulse and its guards: the whole-job ETA, publish fencing, and the source drop after ready."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.transcoding.tracking import JobLost, Tracker
from tests.transcoding.jobs_support import Db, job_row, make_source, queue_job


class Clock:
    """A hand-moved clock for the tracker's rate."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_eta_is_for_the_whole_job_not_the_current_step() -> None:
    clock = Clock()
    tracker = Tracker(uuid.uuid4(), worker_id="w", clock=clock)
    tracker.stage(0.0, 5.0, "probing")
    assert tracker.eta_seconds is None  # nothing measured yet
    clock.now = 5.0
    tracker.stage(5.0, 30.0, "encoding")  # 5 points in 5 s: 1 point a second
    assert tracker.eta_seconds == 95  # not null between stages: the rest of the scale at that rate
    clock.now = 17.5
    # ffmpeg: half of this step done, 12.5 s left of it. The job has 70 more points after it.
    await tracker.on_progress(0.5, 12.5)
    assert tracker.progress == 17.5
    assert tracker.eta_seconds == 82  # 12.5 s + 70 points at 1 point a second (82.5, half to even)

    # A resumed run jumps over phase 1: the jump is not speed.
    resumed = Tracker(uuid.uuid4(), worker_id="w", clock=clock)
    clock.now = 100.0
    resumed.stage(0.0, 5.0)
    clock.now = 110.0
    resumed.stage(30.0, 90.0)  # 5 points worked in 10 s, 25 skipped
    assert resumed.progress == 30.0 and resumed.rate() == pytest.approx(0.5)
    assert resumed.eta_seconds == 140  # 70 points at half a point a second


async def test_a_worker_that_lost_the_job_publishes_nothing(
    db: Db, database_url: str, tmp_path: Path
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
    claimed = await repository.claim_job(db, job_id, worker_id="old", stall_seconds=300)
    assert claimed is not None
    # The watchdog gave the job to another worker meanwhile.
    await db.execute("update public.transcode_jobs set worker_id = 'new' where id = %s", (job_id,))
    run = Run(
        job_id=job_id,
        claimed=claimed,
        queue_attempts=1,
        worker_id="old",
        settings=get_settings(),
        pool=await get_pool(),
        storage=await get_storage(),
    )
    run.asset = {"id": (await job_row(db, job_id))["asset_id"]}

    with pytest.raises(JobLost):
        await run.ensure_held()
    async with db.transaction():
        assert not await repository.hold_job(db, job_id, worker_id="old")
        assert await repository.hold_job(db, job_id, worker_id="new")
    await db.execute("update public.transcode_jobs set state = 'cancelled' where id = %s", (job_id,))


async def test_a_failed_source_drop_is_logged_and_does_not_fail_the_job(
    settings_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage
    from shared.settings import get_settings
    from shared.transcoding.orchestrate import Run

    settings_env(MEDIA_KEEP_SOURCES="false")
    job_id = uuid.uuid4()
    run = Run(
        job_id=job_id,
        claimed={"attempts": 1},
        queue_attempts=1,
        worker_id="w",
        settings=get_settings(),
        pool=await get_pool(),
        storage=await get_storage(),
    )
    run.source = {"id": uuid.uuid4(), "storage_key": "../not/a/key"}  # the storage refuses to delete it

    with caplog.at_level(logging.WARNING, logger="cinema.transcoding"):
        await run.drop_source()

    [record] = [r for r in caplog.records if "dropping the source" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.job_id == str(job_id)  # type: ignore[attr-defined]
    assert record.exc_info is not None
