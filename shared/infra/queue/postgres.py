"""The default job queue: a PostgreSQL table claimed with FOR UPDATE SKIP LOCKED and leased for a while."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.infra.queue import backoff_seconds
from shared.infra.queue.base import Job, QueueStats

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from shared.settings import Settings

logger = logging.getLogger("cinema.queue")

DEFAULT_QUEUE = "default"
EXPIRED_TOO_OFTEN = "worker died / visibility expired too often"
_MAX_ERROR_CHARS = 4000  # last_error is for people reading it, not for whole tracebacks
_PRIORITY_RANGE = range(-32768, 32768)  # the column is a smallint

# One statement claims the jobs: the materialized CTE runs the locking SELECT exactly once, SKIP LOCKED
# makes concurrent workers pass over each other's rows, and READ COMMITTED rechecks the WHERE on rows
# changed since the snapshot, so a job just claimed elsewhere is skipped rather than claimed twice.
# A running job whose lease expired (its worker died or stalled) is claimable again, unless it has
# already used every attempt: then it is buried instead of delivered.
_RECEIVE = """
with picked as materialized (
    select id from public.job_queue
    where queue = %(queue)s
      and ((state = 'queued' and run_at <= now()) or (state = 'running' and locked_until < now()))
    order by priority desc, run_at, created_at
    limit %(limit)s
    for update skip locked
)
update public.job_queue j set
    state = case when j.state = 'running' and j.attempts >= j.max_attempts then 'dead' else 'running' end,
    attempts = case when j.state = 'running' and j.attempts >= j.max_attempts
                    then j.attempts else j.attempts + 1 end,
    locked_until = case when j.state = 'running' and j.attempts >= j.max_attempts
                        then null else now() + %(visibility)s * interval '1 second' end,
    locked_by = case when j.state = 'running' and j.attempts >= j.max_attempts then null else %(worker)s end,
    last_error = case when j.state = 'running' and j.attempts >= j.max_attempts
                      then %(expired)s else j.last_error end,
    finished_at = case when j.state = 'running' and j.attempts >= j.max_attempts then now() end
from picked
where j.id = picked.id
returning j.id::text, j.kind, j.payload, j.priority, j.attempts, j.state, j.run_at, j.created_at
"""

_INSERT = """
insert into public.job_queue (queue, kind, payload, priority, max_attempts, run_at, dedup_key)
values (%(queue)s, %(kind)s, %(payload)s, %(priority)s, %(max_attempts)s,
        now() + %(delay)s * interval '1 second', %(dedup_key)s)
on conflict (queue, dedup_key) where dedup_key is not null and state <> 'dead' do nothing
returning id::text
"""

_EXISTING = """
select id::text from public.job_queue where queue = %s and dedup_key = %s and state <> 'dead'
"""

# Literal states (not a parameter) so the planner can use the partial index on finished rows.
_PURGE_DONE = """
delete from public.job_queue where queue = %s and state = 'done' and finished_at < now() - %s
"""
_PURGE_FINISHED = """
delete from public.job_queue where queue = %s and state in ('done', 'dead') and finished_at < now() - %s
"""


def default_worker_id() -> str:
    """Who holds a lease, for people reading locked_by: host, process and a per-instance suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def parse_receipt(receipt: str) -> tuple[str, int]:
    """Split a "<id>:<attempts>" receipt; the attempt number pins it to one delivery."""
    job_id, _, attempts = receipt.rpartition(":")
    if not job_id or not attempts.isdigit():
        raise ValueError(f"not a job queue receipt: {receipt!r}")
    return job_id, int(attempts)


def _check_enqueue(kind: str, payload: dict[str, Any], priority: int, delay_seconds: int) -> None:
    if not kind:
        raise ValueError("a job needs a kind")
    if not isinstance(payload, dict):
        raise TypeError("a job payload must be a JSON object (dict)")
    if priority not in _PRIORITY_RANGE:
        raise ValueError(f"priority must fit a smallint, got {priority}")
    if delay_seconds < 0:
        raise ValueError(f"delay_seconds must not be negative, got {delay_seconds}")


async def enqueue_in_transaction(
    conn: AsyncConnection[Any],
    kind: str,
    payload: dict[str, Any],
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    delay_seconds: int = 0,
    dedup_key: str | None = None,
    max_attempts: int | None = None,
) -> str:
    """Queue a job on the caller's connection, inside its transaction (transactional outbox); never commits.

    The job exists only if the caller's transaction commits, so "row written" and "job queued" cannot
    disagree. It lands in the PostgreSQL table whatever QUEUE_BACKEND says: with the SQS backend the
    relay (shared.infra.queue.relay, every minute) forwards these rows. Returns the job id, or the
    existing job's id when dedup_key is taken; max_attempts defaults to QUEUE_MAX_ATTEMPTS.
    """
    from psycopg.types.json import Jsonb

    _check_enqueue(kind, payload, priority, delay_seconds)
    if max_attempts is None:
        from shared.settings import get_settings

        max_attempts = get_settings().queue_max_attempts
    params = {
        "queue": queue,
        "kind": kind,
        "payload": Jsonb(payload),
        "priority": priority,
        "max_attempts": max_attempts,
        "delay": float(delay_seconds),
        "dedup_key": dedup_key,
    }
    # The holder of the key can be dead-lettered between our INSERT and SELECT, freeing the key: retry then.
    for _ in range(5):
        cursor = await conn.execute(_INSERT, params)
        row = await cursor.fetchone()
        if row is not None:
            return str(row[0])
        cursor = await conn.execute(_EXISTING, (queue, dedup_key))
        row = await cursor.fetchone()
        if row is not None:
            return str(row[0])
    raise RuntimeError(
        f"could not enqueue {kind!r} with dedup_key {dedup_key!r}: the key keeps changing hands"
    )


class PostgresQueue:
    """JobQueue over public.job_queue; each call takes a pooled connection and commits on its own."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        queue: str = DEFAULT_QUEUE,
        visibility_seconds: int = 900,
        max_attempts: int = 5,
        backoff_base_seconds: float = 5.0,
        backoff_max_seconds: float = 900.0,
        worker_id: str | None = None,
    ) -> None:
        if visibility_seconds < 1:
            raise ValueError("visibility_seconds must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._pool = pool
        self.queue = queue
        self.visibility_seconds = visibility_seconds
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.worker_id = worker_id or default_worker_id()

    @classmethod
    def from_settings(
        cls, pool: AsyncConnectionPool, settings: Settings, *, queue: str = DEFAULT_QUEUE
    ) -> PostgresQueue:
        """Build the queue with the QUEUE_* settings."""
        return cls(
            pool,
            queue=queue,
            visibility_seconds=settings.queue_visibility_seconds,
            max_attempts=settings.queue_max_attempts,
            backoff_base_seconds=settings.queue_backoff_base_seconds,
            backoff_max_seconds=settings.queue_backoff_max_seconds,
        )

    @property
    def pool(self) -> AsyncConnectionPool:
        """The connection pool the queue works on (the outbox relay claims rows through it)."""
        return self._pool

    async def close(self) -> None:
        """Nothing to release: the pool belongs to shared.infra.db."""

    async def check(self) -> QueueStats:
        """Count this queue's jobs by state (raises when the database or table is unusable)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                """
                select count(*) filter (where state = 'queued'),
                       count(*) filter (where state = 'running'),
                       count(*) filter (where state = 'dead'),
                       count(*) filter (where state = 'done'),
                       count(*) filter (where state = 'queued' and run_at > now()),
                       extract(epoch from now() - min(run_at)
                               filter (where state = 'queued' and run_at <= now()))
                from public.job_queue where queue = %s
                """,
                (self.queue,),
            )
            row = await cursor.fetchone()
        assert row is not None  # an aggregate always returns one row
        queued, running, dead, done, delayed, oldest = row
        extra: dict[str, Any] = {"done": done, "delayed": delayed, "queue": self.queue}
        extra["oldest_ready_age_seconds"] = round(float(oldest), 3) if oldest is not None else None
        return QueueStats(queued=queued, in_flight=running, dead=dead, extra=extra)

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        delay_seconds: int = 0,
        dedup_key: str | None = None,
    ) -> str:
        """Queue a job and commit; return its id (the existing id when dedup_key is already queued)."""
        async with self._pool.connection() as conn:
            return await self.enqueue_in(
                conn, kind, payload, priority=priority, delay_seconds=delay_seconds, dedup_key=dedup_key
            )

    async def enqueue_in(
        self,
        conn: AsyncConnection[Any],
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        delay_seconds: int = 0,
        dedup_key: str | None = None,
    ) -> str:
        """Queue a job inside the caller's transaction on conn (transactional outbox); never commits."""
        return await enqueue_in_transaction(
            conn,
            kind,
            payload,
            queue=self.queue,
            priority=priority,
            delay_seconds=delay_seconds,
            dedup_key=dedup_key,
            max_attempts=self.max_attempts,
        )

    async def receive(self, *, max_jobs: int = 1, visibility_seconds: int | None = None) -> list[Job]:
        """Claim up to max_jobs ready jobs, highest priority first, leased for the visibility timeout."""
        if max_jobs < 1:
            return []
        visibility = self.visibility_seconds if visibility_seconds is None else visibility_seconds
        if visibility < 1:
            raise ValueError("visibility_seconds must be at least 1")
        claimed: list[tuple[Any, ...]] = []
        # Buried jobs use up LIMIT slots without being delivered: ask again (bounded) to fill the batch.
        for _ in range(3):
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    _RECEIVE,
                    {
                        "queue": self.queue,
                        "limit": max_jobs - len(claimed),
                        "visibility": float(visibility),
                        "worker": self.worker_id,
                        "expired": EXPIRED_TOO_OFTEN,
                    },
                )
                rows = await cursor.fetchall()
            buried = [row for row in rows if row[5] == "dead"]
            for row in buried:
                logger.warning(
                    "job dead: lease expired on its last attempt",
                    extra={"job_id": row[0], "kind": row[1], "attempts": row[4], "queue": self.queue},
                )
            claimed.extend(row for row in rows if row[5] == "running")
            if not buried or len(claimed) >= max_jobs:
                break
        # UPDATE ... RETURNING does not keep the CTE's order: restore it.
        claimed.sort(key=lambda row: (-row[3], row[6], row[7]))
        return [
            Job(
                id=job_id,
                kind=kind,
                payload=payload,
                priority=priority,
                attempts=attempts,
                receipt=f"{job_id}:{attempts}",
                visibility_seconds=visibility,
            )
            for job_id, kind, payload, priority, attempts, *_ in claimed
        ]

    async def extend(self, job: Job, *, seconds: int) -> bool:
        """Move the lease's end to `seconds` from now; False when the receipt is stale (job lost)."""
        if seconds < 1:
            raise ValueError("seconds must be at least 1")
        job_id, attempts = parse_receipt(job.receipt)
        async with self._pool.connection() as conn:
            # The attempt number pins the lease to this delivery: once the job was claimed again (lease
            # lapsed) or settled, the row no longer matches and the caller learns it lost the job.
            cursor = await conn.execute(
                "update public.job_queue set locked_until = now() + %s * interval '1 second'"
                " where id = %s and attempts = %s and state = 'running'",
                (float(seconds), job_id, attempts),
            )
            updated = cursor.rowcount
        if not updated:
            self._stale("extend", job)
        return bool(updated)

    async def ack(self, job: Job) -> None:
        """Mark the job done (the row stays until purge_finished); a stale receipt changes nothing."""
        job_id, attempts = parse_receipt(job.receipt)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "update public.job_queue set state = 'done', finished_at = now(), locked_until = null,"
                " locked_by = null where id = %s and attempts = %s and state = 'running'",
                (job_id, attempts),
            )
            updated = cursor.rowcount
        if not updated:
            self._stale("ack", job)

    async def retry(self, job: Job, *, error: str) -> bool:
        """Requeue after exponential backoff with jitter; past max attempts mark it dead and return False."""
        job_id, attempts = parse_receipt(job.receipt)
        delay = backoff_seconds(attempts, base=self.backoff_base_seconds, cap=self.backoff_max_seconds)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                """
                update public.job_queue set
                    state = case when attempts >= max_attempts then 'dead' else 'queued' end,
                    run_at = case when attempts >= max_attempts
                                  then run_at else now() + %s * interval '1 second' end,
                    finished_at = case when attempts >= max_attempts then now() end,
                    locked_until = null, locked_by = null, last_error = %s
                where id = %s and attempts = %s and state = 'running'
                returning state
                """,
                (delay, error[:_MAX_ERROR_CHARS], job_id, attempts),
            )
            row = await cursor.fetchone()
            if row is None:
                cursor = await conn.execute("select state from public.job_queue where id = %s", (job_id,))
                current = await cursor.fetchone()
        if row is None:
            self._stale("retry", job)
            # Someone else owns the job now; report whether it is still alive.
            return current is not None and current[0] != "dead"
        if row[0] == "dead":
            logger.warning(
                "job dead: out of attempts",
                extra={"job_id": job.id, "kind": job.kind, "attempts": attempts, "queue": self.queue},
            )
            return False
        return True

    async def dead_letter(self, job: Job, *, error: str) -> None:
        """Mark the job dead with the reason, no retries; a stale receipt changes nothing."""
        job_id, attempts = parse_receipt(job.receipt)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "update public.job_queue set state = 'dead', last_error = %s, finished_at = now(),"
                " locked_until = null, locked_by = null"
                " where id = %s and attempts = %s and state = 'running'",
                (error[:_MAX_ERROR_CHARS], job_id, attempts),
            )
            updated = cursor.rowcount
        if not updated:
            self._stale("dead_letter", job)

    async def purge_finished(self, older_than: timedelta, *, include_dead: bool = False) -> int:
        """Delete this queue's done jobs (and dead ones if asked) finished longer ago than older_than."""
        query = _PURGE_FINISHED if include_dead else _PURGE_DONE
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, (self.queue, older_than))
            return cursor.rowcount

    def _stale(self, action: str, job: Job) -> None:
        # Expected after a lease expired and the job was redelivered: the newer delivery decides.
        logger.warning(
            "stale receipt: %s ignored",
            action,
            extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts, "queue": self.queue},
        )
