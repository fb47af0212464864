"""Daily housekeeping shared by the Vercel cron and the scheduled Lambda."""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from shared.errors import Forbidden, Unauthenticated
from shared.maintenance.schemas import MaintenanceReport
from shared.settings import Settings

logger = logging.getLogger("cinema.maintenance")


def authorize_cron(*, settings: Settings, authorization: str | None) -> None:
    """Only the scheduler (holding CRON_SECRET) may trigger housekeeping."""
    if not settings.cron_secret:
        raise Forbidden("Scheduled jobs are disabled: CRON_SECRET is not set.")
    expected = f"Bearer {settings.cron_secret}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Unauthenticated("A valid cron secret is required.")


async def run_daily(*, settings: Settings) -> MaintenanceReport:
    """Purge finished queue rows past their retention (SQS deletes its own messages)."""
    from shared.infra.queue import get_queue
    from shared.infra.queue.postgres import PostgresQueue

    queue = await get_queue()
    purged = 0
    if isinstance(queue, PostgresQueue):
        purged = await queue.purge_finished(timedelta(days=settings.finished_job_retention_days))
    logger.info("daily maintenance done", extra={"purged_jobs": purged})
    return MaintenanceReport(purged_jobs=purged, queue_backend=settings.queue_backend)
