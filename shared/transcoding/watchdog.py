"""The watchdog: jobs whose worker stopped beating go back to the queue, or fail when out of attempts.

A running job writes heartbeat_at every couple of seconds (tracking.Tracker). When it is older than
MEDIA_JOB_STALL_SECONDS the worker died (OOM, a killed Lambda, a lost machine): the job is queued
again with a fresh transcode.run message, and the run that claims it starts over (or resumes at the
remaining rungs when its asset is already playable). A job that used up QUEUE_MAX_ATTEMPTS fails,
dead-lettered, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.settings import Settings, get_settings
from shared.transcoding import repository

logger = logging.getLogger("cinema.transcoding")


@dataclass(frozen=True)
class WatchdogReport:
    """What one watchdog pass did."""

    requeued: int
    failed: int
    cancelled: int = 0


async def requeue_stalled(*, settings: Settings | None = None) -> WatchdogReport:
    """One pass over stalled jobs, in one transaction (concurrent passes skip each other's rows).

    A stalled job whose cancel was requested ends cancelled (re-queued it would wait forever: the claim
    refuses it). A fanned-out job gets the queue's longest backoff on top of the stall limit, as its
    chunks beat only while one of them runs.
    """
    from shared.infra.db import get_pool
    from shared.infra.queue.postgres import enqueue_in_transaction
    from shared.transcoding.service import RUN_KIND, end_job

    settings = settings or get_settings()
    pool = await get_pool()
    requeued = failed = cancelled = 0
    async with pool.connection() as conn, conn.transaction():
        stalled = await repository.stalled_jobs(
            conn,
            stall_seconds=settings.media_job_stall_seconds,
            fanout_grace_seconds=settings.queue_backoff_max_seconds,
        )
        for job in stalled:
            holder = job["worker_id"] or "unknown"
            if job["cancel_requested"]:
                await end_job(
                    conn,
                    job_id=job["id"],
                    asset_id=job["asset_id"],
                    outcome="cancelled",
                    reason=f"cancelled; its worker stopped during {job['state']} before it noticed",
                )
                cancelled += 1
                continue
            if job["attempts"] >= settings.queue_max_attempts:
                await end_job(
                    conn,
                    job_id=job["id"],
                    asset_id=job["asset_id"],
                    outcome="failed",
                    code="worker_lost",
                    reason=f"worker lost during {job['state']} on the last of {job['attempts']} attempts",
                    dead_lettered=True,
                )
                logger.warning(
                    "watchdog: job failed, worker lost", extra={"job_id": str(job["id"]), "holder": holder}
                )
                failed += 1
                continue
            await repository.requeue_job(conn, job["id"])
            await repository.add_event(
                conn, job["id"], "queued", f"worker lost during {job['state']}, re-queued"
            )
            queue_job_id = await enqueue_in_transaction(
                conn, RUN_KIND, {"transcode_job_id": str(job["id"])}, priority=job["priority"]
            )
            await repository.set_queue_job_id(conn, job["id"], queue_job_id)
            requeued += 1
    if requeued or failed or cancelled:
        logger.warning(
            "watchdog: stalled transcode jobs",
            extra={"requeued": requeued, "failed": failed, "cancelled": cancelled},
        )
    return WatchdogReport(requeued=requeued, failed=failed, cancelled=cancelled)
