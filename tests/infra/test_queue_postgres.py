"""The PostgreSQL job queue against this run's migrated database: each test on its own queue name."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from shared.infra.queue import Job, backoff_seconds, close_queue, get_queue
from shared.infra.queue.postgres import EXPIRED_TOO_OFTEN, PostgresQueue, enqueue_in_transaction
from shared.settings import get_settings
from tests.support.postgres import open_test_pool

Db = psycopg.AsyncConnection[Any]


def make_queue(pool: AsyncConnectionPool, **options: Any) -> PostgresQueue:
    options.setdefault("queue", f"test-{uuid.uuid4().hex[:10]}")
    return PostgresQueue(pool, **options)


async def row(db: Db, job_id: str) -> dict[str, Any]:
    cursor = await db.execute(
        "select state, attempts, max_attempts, last_error, locked_by, finished_at,"
        " extract(epoch from run_at - now()) as run_in, priority, dedup_key"
        " from public.job_queue where id = %s",
        (job_id,),
    )
    values = await cursor.fetchone()
    assert values is not None, f"job {job_id} does not exist"
    assert cursor.description is not None
    return dict(zip([column.name for column in cursor.description], values, strict=True))


async def expire_lease(db: Db, job_id: str) -> None:
    await db.execute(
        "update public.job_queue set locked_until = now() - interval '1 second' where id = %s", (job_id,)
    )


async def make_ready(db: Db, job_id: str) -> None:
    await db.execute("update public.job_queue set run_at = now() where id = %s", (job_id,))


async def test_receive_takes_highest_priority_first_then_oldest(pool: AsyncConnectionPool) -> None:
    queue = make_queue(pool)
    for name, priority in [("a", 0), ("b", 5), ("c", 1), ("d", 5), ("e", -3)]:
        await queue.enqueue("test.order", {"name": name}, priority=priority)
    first = await queue.receive()
    assert [job.payload["name"] for job in first] == ["b"]
    rest = await queue.receive(max_jobs=10)
    assert [job.payload["name"] for job in rest] == ["d", "c", "a", "e"]
    assert [job.priority for job in rest] == [5, 1, 0, -3]
    assert all(job.attempts == 1 and job.receipt == f"{job.id}:1" for job in first + rest)
    assert await queue.receive() == []


async def test_a_job_is_hidden_while_leased_and_from_other_queues(pool: AsyncConnectionPool) -> None:
    queue = make_queue(pool)
    other = make_queue(pool)
    await queue.enqueue("test.lease", {})
    assert await other.receive() == []
    assert len(await queue.receive()) == 1
    assert await queue.receive() == []
    stats = await queue.check()
    assert (stats.queued, stats.in_flight, stats.dead) == (0, 1, 0)


async def test_delay_holds_a_job_back_until_run_at(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    job_id = await queue.enqueue("test.delay", {"x": 1}, delay_seconds=60)
    assert await queue.receive() == []
    assert 55 < (await row(db, job_id))["run_in"] <= 60
    stats = await queue.check()
    assert stats.queued == 1 and stats.extra["delayed"] == 1
    await make_ready(db, job_id)
    [job] = await queue.receive()
    assert (job.id, job.payload) == (job_id, {"x": 1})


async def test_dedup_key_returns_the_existing_job(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    first = await queue.enqueue("test.dedup", {"n": 1}, dedup_key="video-1")
    again = await queue.enqueue("test.dedup", {"n": 2}, dedup_key="video-1")
    assert again == first
    assert await queue.enqueue("test.dedup", {"n": 3}, dedup_key="video-2") != first
    assert await make_queue(pool).enqueue("test.dedup", {}, dedup_key="video-1") != first  # per queue
    cursor = await db.execute("select count(*) from public.job_queue where queue = %s", (queue.queue,))
    assert await cursor.fetchone() == (2,)

    # Done still holds the key (the work happened); dead frees it so the work can be queued again.
    jobs = {job.id: job for job in await queue.receive(max_jobs=2)}
    await queue.ack(jobs[first])
    assert await queue.enqueue("test.dedup", {}, dedup_key="video-1") == first
    second = next(job_id for job_id in jobs if job_id != first)
    await queue.dead_letter(jobs[second], error="bad input")
    requeued = await queue.enqueue("test.dedup", {}, dedup_key="video-2")
    assert requeued != second
    assert (await row(db, requeued))["state"] == "queued"


async def test_expired_lease_redelivers_and_the_stale_receipt_cannot_settle(
    pool: AsyncConnectionPool, db: Db
) -> None:
    queue = make_queue(pool)
    worker_b = make_queue(pool, queue=queue.queue, worker_id="worker-b")
    job_id = await queue.enqueue("test.watchdog", {})
    [stale] = await queue.receive()
    await expire_lease(db, job_id)  # the first worker died or stalled past its visibility timeout
    [fresh] = await worker_b.receive()
    assert (fresh.id, fresh.attempts, stale.attempts) == (job_id, 2, 1)
    assert fresh.receipt != stale.receipt

    await queue.ack(stale)
    assert await queue.retry(stale, error="late") is True  # still alive, in worker B's hands
    await queue.dead_letter(stale, error="late")
    state = await row(db, job_id)
    assert (state["state"], state["attempts"], state["locked_by"], state["last_error"]) == (
        "running",
        2,
        "worker-b",
        None,
    )

    await worker_b.ack(fresh)
    state = await row(db, job_id)
    assert state["state"] == "done" and state["finished_at"] is not None and state["locked_by"] is None


async def test_visibility_timeout_expires_in_real_time(pool: AsyncConnectionPool) -> None:
    queue = make_queue(pool)
    await queue.enqueue("test.visibility", {})
    [first] = await queue.receive(visibility_seconds=1)
    assert await queue.receive() == []
    await asyncio.sleep(1.3)
    [again] = await queue.receive()
    assert (again.id, again.attempts) == (first.id, 2)


async def test_extend_moves_the_lease_end_for_this_delivery_only(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    worker_b = make_queue(pool, queue=queue.queue, worker_id="worker-b")
    job_id = await queue.enqueue("test.extend", {})
    [job] = await queue.receive(visibility_seconds=1)
    assert job.visibility_seconds == 1
    assert await queue.extend(job, seconds=60) is True
    cursor = await db.execute(
        "select extract(epoch from locked_until - now()) from public.job_queue where id = %s", (job_id,)
    )
    [(lease_left,)] = await cursor.fetchall()
    assert 55 < lease_left <= 60
    await asyncio.sleep(1.3)
    assert await worker_b.receive() == []  # the 1 s lease would have lapsed by now

    await expire_lease(db, job_id)
    [fresh] = await worker_b.receive()
    assert await queue.extend(job, seconds=60) is False  # redelivered: the old receipt holds nothing
    assert (await row(db, job_id))["locked_by"] == "worker-b"
    await worker_b.ack(fresh)
    assert await worker_b.extend(fresh, seconds=60) is False  # settled
    assert (await row(db, job_id))["state"] == "done"
    with pytest.raises(ValueError, match="at least 1"):
        await worker_b.extend(fresh, seconds=0)


async def test_a_job_whose_workers_keep_dying_goes_dead(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool, max_attempts=2)
    job_id = await queue.enqueue("test.crashy", {})
    for attempt in (1, 2):
        [job] = await queue.receive()
        assert job.attempts == attempt
        await expire_lease(db, job_id)
    assert await queue.receive() == []
    state = await row(db, job_id)
    assert (state["state"], state["attempts"], state["last_error"]) == ("dead", 2, EXPIRED_TOO_OFTEN)
    assert state["finished_at"] is not None
    assert (await queue.check()).dead == 1


async def test_buried_jobs_do_not_shrink_the_batch(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool, max_attempts=1)
    doomed = await queue.enqueue("test.doomed", {}, priority=9)
    [job] = await queue.receive()
    assert job.id == doomed
    await expire_lease(db, doomed)
    healthy = await queue.enqueue("test.healthy", {})
    [job] = await queue.receive(max_jobs=1)
    assert job.id == healthy
    assert (await row(db, doomed))["state"] == "dead"


async def test_retry_backs_off_exponentially_then_dead_after_max_attempts(
    pool: AsyncConnectionPool, db: Db
) -> None:
    queue = make_queue(pool, max_attempts=3, backoff_base_seconds=10, backoff_max_seconds=15)
    job_id = await queue.enqueue("test.flaky", {"n": 1})
    for attempt, ceiling in [(1, 10), (2, 15)]:
        [job] = await queue.receive()
        assert job.attempts == attempt
        assert await queue.retry(job, error=f"timeout {attempt}") is True
        state = await row(db, job_id)
        assert state["state"] == "queued" and state["last_error"] == f"timeout {attempt}"
        assert -1 <= state["run_in"] <= ceiling  # full jitter: anywhere from now to the capped backoff
        assert state["locked_by"] is None
        await make_ready(db, job_id)
    [job] = await queue.receive()
    assert job.attempts == 3
    assert await queue.retry(job, error="timeout 3") is False
    state = await row(db, job_id)
    assert (state["state"], state["attempts"], state["last_error"]) == ("dead", 3, "timeout 3")
    assert state["finished_at"] is not None
    assert await queue.receive() == []


def test_backoff_is_full_jitter_under_the_capped_exponential() -> None:
    for attempts in range(1, 12):
        ceiling = min(60.0, 2.0 * 2 ** (attempts - 1))
        samples = [backoff_seconds(attempts, base=2.0, cap=60.0) for _ in range(200)]
        assert all(0.0 <= sample <= ceiling for sample in samples)
        assert max(samples) > ceiling * 0.5  # spread over the range, not pinned at zero
    assert backoff_seconds(1000, base=5.0, cap=900.0) <= 900.0
    assert backoff_seconds(3, base=0.0, cap=900.0) == 0.0


async def test_dead_letter_is_final(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    job_id = await queue.enqueue("test.poison", {"bad": True})
    [job] = await queue.receive()
    await queue.dead_letter(job, error="unsupported codec")
    state = await row(db, job_id)
    assert (state["state"], state["last_error"], state["attempts"]) == ("dead", "unsupported codec", 1)
    await expire_lease(db, job_id)
    assert await queue.receive() == []
    await queue.ack(job)  # stale now: must not resurrect it as done
    assert (await row(db, job_id))["state"] == "dead"


async def test_two_workers_racing_process_every_job_exactly_once(database_url: str, db: Db) -> None:
    name = f"test-race-{uuid.uuid4().hex[:8]}"
    pools = [await open_test_pool(database_url, size=4) for _ in range(2)]
    try:
        queues = [PostgresQueue(pool, queue=name, worker_id=f"w{n}") for n, pool in enumerate(pools)]
        total = 80
        ids = set(await asyncio.gather(*(queues[0].enqueue("test.race", {"n": n}) for n in range(total))))
        assert len(ids) == total
        seen: list[tuple[str, str]] = []
        holding: set[str] = set()

        async def consume(queue: PostgresQueue) -> None:
            while True:
                jobs = await queue.receive(max_jobs=random.randint(1, 3))
                if not jobs:
                    return
                for job in jobs:
                    assert job.id not in holding, "a job was handed out twice while leased"
                    holding.add(job.id)
                    seen.append((job.id, queue.worker_id))
                await asyncio.sleep(0)
                for job in jobs:
                    holding.discard(job.id)
                    await queue.ack(job)

        await asyncio.gather(*(consume(queue) for queue in queues for _ in range(4)))
        counts = Counter(job_id for job_id, _ in seen)
        assert set(counts) == ids
        assert max(counts.values()) == 1
        assert {worker for _, worker in seen} == {"w0", "w1"}  # both really took part
        cursor = await db.execute(
            "select state, attempts, count(*) from public.job_queue where queue = %s group by 1, 2", (name,)
        )
        assert await cursor.fetchall() == [("done", 1, total)]
    finally:
        for pool in pools:
            await pool.close()


async def test_enqueue_in_follows_the_callers_transaction(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    async with pool.connection() as conn, conn.transaction():
        await queue.enqueue_in(conn, "test.outbox", {"n": 1})
        raise psycopg.Rollback
    cursor = await db.execute("select count(*) from public.job_queue where queue = %s", (queue.queue,))
    assert await cursor.fetchone() == (0,)

    async with pool.connection() as conn, conn.transaction():
        job_id = await enqueue_in_transaction(conn, "test.outbox", {"n": 2}, queue=queue.queue, priority=2)
        assert await queue.receive() == []  # not visible to workers before the commit
    [job] = await queue.receive()
    assert (job.id, job.payload, job.priority) == (job_id, {"n": 2}, 2)
    assert (await row(db, job_id))["max_attempts"] == get_settings().queue_max_attempts


async def test_purge_finished_removes_old_done_rows_only(pool: AsyncConnectionPool, db: Db) -> None:
    queue = make_queue(pool)
    ids = [await queue.enqueue("test.purge", {"n": n}) for n in range(4)]
    jobs = {job.id: job for job in await queue.receive(max_jobs=3)}
    old_done, new_done, old_dead = (jobs[job_id] for job_id in ids[:3])
    await queue.ack(old_done)
    await queue.ack(new_done)
    await queue.dead_letter(old_dead, error="x")
    await db.execute(
        "update public.job_queue set finished_at = now() - interval '3 days' where id = any(%s)",
        ([old_done.id, old_dead.id],),
    )
    assert await make_queue(pool).purge_finished(timedelta(days=1)) == 0  # other queues untouched
    assert await queue.purge_finished(timedelta(days=1)) == 1
    assert await queue.purge_finished(timedelta(days=1), include_dead=True) == 1
    cursor = await db.execute(
        "select id::text, state from public.job_queue where queue = %s order by created_at", (queue.queue,)
    )
    assert await cursor.fetchall() == [(new_done.id, "done"), (ids[3], "queued")]


async def test_check_counts_states(pool: AsyncConnectionPool) -> None:
    queue = make_queue(pool)
    for n in range(4):
        await queue.enqueue("test.stats", {"n": n})
    one, two, _ = await queue.receive(max_jobs=3)
    await queue.ack(one)
    await queue.dead_letter(two, error="x")
    stats = await queue.check()
    assert (stats.queued, stats.in_flight, stats.dead) == (1, 1, 1)
    assert stats.extra["done"] == 1 and stats.extra["delayed"] == 0
    assert stats.extra["oldest_ready_age_seconds"] >= 0


async def test_enqueue_refuses_what_the_table_cannot_hold(pool: AsyncConnectionPool) -> None:
    queue = make_queue(pool)
    with pytest.raises(ValueError, match="smallint"):
        await queue.enqueue("test.bad", {}, priority=40_000)
    with pytest.raises(ValueError, match="delay"):
        await queue.enqueue("test.bad", {}, delay_seconds=-1)
    with pytest.raises(TypeError):
        await queue.enqueue("test.bad", ["not", "an", "object"])  # type: ignore[arg-type]
    forged = Job(id="x", kind="k", payload={}, priority=0, attempts=1, receipt="garbage")
    with pytest.raises(ValueError, match="not a job queue receipt"):
        await queue.ack(forged)


async def test_get_queue_builds_the_configured_postgres_queue_once() -> None:
    await close_queue()
    try:
        queue = await get_queue()
        assert isinstance(queue, PostgresQueue)
        assert queue is await get_queue()
        assert queue.queue == "default" and queue.max_attempts == get_settings().queue_max_attempts
        await queue.check()
    finally:
        await close_queue()


def test_internal_table_is_closed_to_api_roles(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        secured = conn.execute("select relrowsecurity from pg_class where oid = 'public.job_queue'::regclass")
        assert secured.fetchone() == (True,)
        for role in ("anon", "authenticated"):
            with conn.transaction(force_rollback=True):
                conn.execute(f"set local role {role}")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("select count(*) from public.job_queue")
