"""Housekeeping shared by the Vercel cron and the scheduled Lambdas: the daily run and the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from shared.errors import Forbidden, Unauthenticated
from shared.maintenance.schemas import MaintenanceReport
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.infra.queue.postgres import PostgresQueue

logger = logging.getLogger("cinema.maintenance")

_RELAY_BATCH = 100
# 500 jobs a run, within the relay Lambda's timeout; the relay runs every minute, so a larger backlog
# simply drains over several runs.
_RELAY_MAX_BATCHES = 5


def authorize_cron(*, settings: Settings, authorization: str | None) -> None:
    """Only the scheduler (holding CRON_SECRET) may trigger housekeeping."""
    if not settings.cron_secret:
        raise Forbidden("Scheduled jobs are disabled: CRON_SECRET is not set.")
    expected = f"Bearer {settings.cron_secret}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Unauthenticated("A valid cron secret is required.")


async def _outbox(settings: Settings) -> PostgresQueue:
    """The PostgreSQL job table of the default queue: the queue itself, or the outbox in front of SQS."""
    from shared.infra.db import get_pool
    from shared.infra.queue.postgres import PostgresQueue

    return PostgresQueue.from_settings(await get_pool(), settings)


async def run_relay(*, settings: Settings) -> int:
    """Forward jobs written by enqueue_in_transaction to SQS; a no-op (0) with the PostgreSQL backend."""
    if settings.queue_backend != "sqs":
        return 0  # the worker claims the table's rows itself
    from shared.infra.queue import get_queue
    from shared.infra.queue.relay import relay_outbox

    source = await _outbox(settings)
    target = await get_queue()
    relayed = 0
    # Drain a backlog in batches, but bounded so one run ends well inside the Lambda's timeout.
    for _ in range(_RELAY_MAX_BATCHES):
        sent = await relay_outbox(source=source, target=target, limit=_RELAY_BATCH)
        relayed += sent
        if sent < _RELAY_BATCH:
            break
    return relayed


async def run_watchdog(*, settings: Settings) -> int:
    """Re-queue transcode jobs whose worker died (fail them when out of attempts); how many it touched."""
    from shared.transcoding.watchdog import requeue_stalled

    report = await requeue_stalled(settings=settings)
    return report.requeued + report.failed + report.cancelled


async def run_frequent(*, settings: Settings) -> dict[str, int]:
    """The every-minute housekeeping: the outbox relay, the transcode watchdog, buffered watch positions."""
    from shared.streaming.service import close_expired_sessions
    from shared.watch.service import flush_expired

    relayed = await run_relay(settings=settings)
    # After the relay: jobs the watchdog re-queues go out with the next run, a minute later.
    watched = await run_watchdog(settings=settings)
    # Positions of players that stopped without ending their session: Redis alone must not hold them.
    flushed = await flush_expired(settings=settings)
    # Their stream records too: a slot freed by a missed heartbeat leaves no open row behind.
    closed = await close_expired_sessions(settings=settings)
    sandbox_events = await run_sandbox(settings=settings)
    return {
        "relayed_jobs": relayed,
        "stalled_transcodes": watched,
        "flushed_positions": flushed,
        "closed_streams": closed,
        "sandbox_events": sandbox_events,
    }


async def frequent_loop(stop: asyncio.Event, *, interval: float = 60.0) -> None:
    """run_frequent every `interval` seconds until stop is set: the local worker's scheduler."""
    from shared.settings import get_settings

    while not stop.is_set():
        try:
            await run_frequent(settings=get_settings())
        except Exception:  # the database may be briefly away: try again next round
            logger.exception("frequent maintenance pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def run_sandbox(*, settings: Settings) -> int:
    """The local payment sandbox's clock: renewals and period ends that fell due, then their events.

    Stripe does this itself and tells us by webhook; the sandbox has no clock of its own. 0 elsewhere.
    """
    from shared.payments.providers import sandbox_allowed

    if not sandbox_allowed(settings):
        return 0
    from shared.infra.db import standalone
    from shared.payments.clock import now
    from shared.payments.providers import sandbox

    async with standalone() as conn:
        await sandbox.tick(conn, settings=settings, at=now())
    # After the tick committed: its events exist for deliver_pending, which a failure rolls back (retried
    # next minute) without undoing the renewals.
    async with standalone() as conn:
        return await sandbox.deliver_pending(conn, settings=settings)


async def _sweep_orphan_sources(settings: Settings) -> int:
    """Delete objects of aborted or refused uploads (a presigned URL may still have written one)."""
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage
    from shared.media.service import sweep_orphan_sources

    pool = await get_pool()
    async with pool.connection() as conn, conn.transaction():
        # Only once every URL handed out for them has expired: until then a PUT could still land.
        return await sweep_orphan_sources(
            conn,
            storage=await get_storage(),
            older_than=timedelta(seconds=settings.media_upload_url_ttl_seconds),
        )


async def _purge_idempotency_keys(settings: Settings) -> int:
    """Forget Idempotency-Key records past their retention (a retry after that is a new request)."""
    from shared.infra.db import standalone
    from shared.payments import idempotency
    from shared.payments.clock import now

    async with standalone() as conn:
        return await idempotency.purge(
            conn, older_than=now() - timedelta(hours=settings.idempotency_retention_hours)
        )


class SweptImages(NamedTuple):
    """What sweep_images deleted: staged uploads, catalog objects in storage, catalog images at Cloudinary."""

    uploads: int
    catalog: int
    cloudinary: int


async def sweep_images(*, settings: Settings | None = None, now: float | None = None) -> SweptImages:
    """Delete abandoned image uploads and unused catalog images (storage; Cloudinary when opted in).

    Never raises for Cloudinary's sake: an outage sweeps nothing there and the daily run goes on.
    """
    from shared.catalog_admin import image_sweep
    from shared.infra.db import standalone
    from shared.profiles import avatars
    from shared.settings import get_settings

    settings = settings or get_settings()
    staged = await image_sweep.sweep_staging(now=now) + await avatars.sweep_staging(now=now)
    # Listed before the connection is taken: paging through Cloudinary's Admin API may take a while.
    candidates = await image_sweep.cloudinary_candidates(settings=settings, now=now)
    async with standalone() as conn:  # read-only queries; the deletions are storage and Cloudinary calls
        unused = await image_sweep.sweep_unused(conn, now=now)
        at_cloudinary = await image_sweep.sweep_cloudinary(conn, settings=settings, candidates=candidates)
    return SweptImages(uploads=staged, catalog=unused, cloudinary=at_cloudinary)


async def run_daily(*, settings: Settings) -> MaintenanceReport:
    """Relay pending outbox jobs, purge finished job rows and old mail, sweep unused media and image files."""
    relayed = await run_relay(settings=settings)
    # A safety net where nothing runs the watchdog more often (it is cheap: one indexed query).
    stalled = await run_watchdog(settings=settings)
    # With SQS the table still holds the outbox's forwarded (done) rows; SQS deletes its own messages.
    outbox = await _outbox(settings)
    purged = await outbox.purge_finished(timedelta(days=settings.finished_job_retention_days))
    from shared.mail.service import purge_old_mail

    purged_mail = await purge_old_mail(settings=settings)
    purged_keys = await _purge_idempotency_keys(settings)
    from shared.transcoding.service import sweep_storage

    # Files of failed/retired assets and leftover chunk files: otherwise storage only ever grows.
    swept_media = await sweep_storage() + await _sweep_orphan_sources(settings)
    # Artwork and avatar uploads never confirmed, and catalog images no row refers to any more (in storage;
    # at Cloudinary only with CLOUDINARY_SWEEP_UNUSED, as other deployments may share the account).
    swept_uploads, swept_images, swept_cloudinary = await sweep_images(settings=settings)
    logger.info(
        "daily maintenance done",
        extra={
            "purged_jobs": purged,
            "relayed_jobs": relayed,
            "purged_mail": purged_mail,
            "stalled_transcodes": stalled,
            "swept_media_prefixes": swept_media,
            "purged_idempotency_keys": purged_keys,
            "swept_image_uploads": swept_uploads,
            "swept_catalog_images": swept_images,
            "swept_cloudinary_images": swept_cloudinary,
        },
    )
    return MaintenanceReport(
        purged_jobs=purged,
        relayed_jobs=relayed,
        purged_mail=purged_mail,
        swept_media_prefixes=swept_media,
        swept_image_uploads=swept_uploads,
        swept_catalog_images=swept_images,
        swept_cloudinary_images=swept_cloudinary,
        queue_backend=settings.queue_backend,
    )
