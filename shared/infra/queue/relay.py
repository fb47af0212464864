"""The transactional outbox's relay: forward jobs written to the PostgreSQL table onto another queue (SQS)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from shared.infra.queue.postgres import PostgresQueue

if TYPE_CHECKING:
    from shared.infra.queue.base import JobQueue

logger = logging.getLogger("cinema.queue")

# Forward a delayed job once it is due within SQS's own 15-minute delay, so the target delays it
# natively and far-future jobs wait in PostgreSQL rather than outliving the SQS message retention.
LOOKAHEAD_SECONDS = 900
# Consecutive failed sends after which a run gives up (the target is down, not one bad job).
_MAX_CONSECUTIVE_FAILURES = 3
_MAX_ERROR_CHARS = 4000

_CLAIM = """
select id::text, kind, payload, priority, dedup_key,
       greatest(0, extract(epoch from run_at - now()))::float8
from public.job_queue
where queue = %(queue)s and state = 'queued' and run_at <= now() + %(lookahead)s * interval '1 second'
order by priority desc, run_at, created_at
limit %(limit)s
for update skip locked
"""

_FORWARDED = """
update public.job_queue set state = 'done', finished_at = now(), last_error = null where id = %s
"""

_SEND_FAILED = "update public.job_queue set last_error = %s where id = %s"


def outbox_dedup_key(job_id: str, dedup_key: str | None) -> str:
    """The key a forwarded job is sent with: its own, else one derived from its outbox row id."""
    # A stable key gives the same target job id when a row is sent again (the commit after a send was
    # lost), so a redelivery is recognisable as the same job.
    return dedup_key or f"outbox:{job_id}"


async def relay_outbox(*, source: PostgresQueue, target: JobQueue, limit: int = 100) -> int:
    """Forward up to `limit` queued outbox rows of `source` to `target`; return how many were sent.

    Rows are claimed with FOR UPDATE SKIP LOCKED in one transaction (concurrent relays split the work)
    and marked done only after their send succeeded; a failed send leaves its row queued with the
    error, for the next run. Sends are at-least-once: if the commit is lost the rows go again, under
    the same dedup key, so the target sees the same job id.
    """
    if limit < 1:
        return 0
    if isinstance(target, PostgresQueue) and target.queue == source.queue:
        # The rows would be "forwarded" onto themselves: each run would copy every job once more.
        raise ValueError(f"cannot relay queue {source.queue!r} into itself")
    sent = 0
    failures = 0
    async with source.pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            _CLAIM, {"queue": source.queue, "lookahead": float(LOOKAHEAD_SECONDS), "limit": limit}
        )
        rows = await cursor.fetchall()
        for job_id, kind, payload, priority, dedup_key, due_in in rows:
            fields = {"job_id": job_id, "kind": kind, "queue": source.queue}
            try:
                await target.enqueue(
                    kind,
                    payload,
                    priority=priority,
                    delay_seconds=math.ceil(due_in),
                    dedup_key=outbox_dedup_key(job_id, dedup_key),
                )
            except Exception as error:  # any failure of the target: the row waits for the next run
                failures += 1
                logger.exception("outbox relay: send failed, the job stays queued", extra=fields)
                text = f"relay: {type(error).__name__}: {error}"[:_MAX_ERROR_CHARS]
                await conn.execute(_SEND_FAILED, (text, job_id))
                if failures >= _MAX_CONSECUTIVE_FAILURES:
                    break
                continue
            failures = 0
            await conn.execute(_FORWARDED, (job_id,))
            sent += 1
    if rows:
        logger.info("outbox relayed", extra={"relayed": sent, "claimed": len(rows), "queue": source.queue})
    return sent
