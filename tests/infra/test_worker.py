"""The worker loop and dispatch over the real PostgreSQL queue: success, retry, dead-letter, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from shared.infra.queue import Job
from shared.infra.queue.postgres import PostgresQueue
from shared.infra.queue.worker import (
    HANDLERS,
    Outcome,
    PermanentJobError,
    dispatch,
    process,
    register,
    run_worker,
)

Db = psycopg.AsyncConnection[Any]


@pytest.fixture
def queue(pool: AsyncConnectionPool) -> PostgresQueue:
    return PostgresQueue(
        pool, queue=f"test-worker-{uuid.uuid4().hex[:8]}", max_attempts=3, backoff_base_seconds=60
    )


@pytest.fixture
def kinds() -> Iterator[str]:
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    yield prefix
    for kind in [kind for kind in HANDLERS if kind.startswith(prefix)]:
        del HANDLERS[kind]


async def states(db: Db, queue: PostgresQueue) -> list[tuple[str, str, int, str | None]]:
    cursor = await db.execute(
        "select kind, state, attempts, last_error from public.job_queue where queue = %s order by created_at",
        (queue.queue,),
    )
    return await cursor.fetchall()


async def test_run_worker_processes_jobs_until_stopped(queue: PostgresQueue, kinds: str, db: Db) -> None:
    stop = asyncio.Event()
    done: list[int] = []

    @register(f"{kinds}.count")
    async def count(payload: dict[str, Any], job: Job) -> None:
        await asyncio.sleep(0.01)
        done.append(payload["n"])
        if len(done) == 12:
            stop.set()

    for n in range(12):
        await queue.enqueue(f"{kinds}.count", {"n": n})
    await asyncio.wait_for(run_worker(stop=stop, concurrency=3, poll_interval=0.05, queue=queue), 20)
    assert sorted(done) == list(range(12))
    assert {state for _, state, _, _ in await states(db, queue)} == {"done"}


async def test_idle_worker_stops_promptly(queue: PostgresQueue) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(stop=stop, concurrency=2, poll_interval=30, queue=queue))
    await asyncio.sleep(0.2)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 2)  # does not sit out the 30 s poll interval


async def test_stop_lets_the_job_in_hand_finish(queue: PostgresQueue, kinds: str, db: Db) -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    release = asyncio.Event()

    @register(f"{kinds}.slow")
    async def slow(payload: dict[str, Any], job: Job) -> None:
        started.set()
        await release.wait()

    await queue.enqueue(f"{kinds}.slow", {})
    await queue.enqueue(f"{kinds}.slow", {})
    task = asyncio.create_task(run_worker(stop=stop, poll_interval=0.05, queue=queue))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()
    await asyncio.sleep(0.1)
    assert not task.done()  # still finishing the current job
    release.set()
    await asyncio.wait_for(task, 5)
    assert [state for _, state, _, _ in await states(db, queue)] == ["done", "queued"]  # took no new job


async def test_unknown_kind_is_dead_lettered(queue: PostgresQueue, kinds: str, db: Db) -> None:
    await queue.enqueue(f"{kinds}.nobody", {})
    [job] = await queue.receive()
    assert await process(queue, job) is False
    [(_, state, attempts, error)] = await states(db, queue)
    assert (state, attempts, error) == ("dead", 1, f"no handler for kind '{kinds}.nobody'")


async def test_unknown_kind_dies_in_the_worker_loop_too(queue: PostgresQueue, kinds: str, db: Db) -> None:
    await queue.enqueue(f"{kinds}.nobody", {})
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(stop=stop, poll_interval=0.05, queue=queue))
    for _ in range(100):
        if (await queue.check()).dead:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    [(_, state, _, error)] = await states(db, queue)
    assert state == "dead" and error is not None and error.startswith("no handler for kind")


async def test_permanent_error_dead_letters_without_retry(queue: PostgresQueue, kinds: str, db: Db) -> None:
    @register(f"{kinds}.bad")
    async def bad(payload: dict[str, Any], job: Job) -> None:
        raise PermanentJobError("not a video file")

    await queue.enqueue(f"{kinds}.bad", {})
    [job] = await queue.receive()
    assert await process(queue, job) is False
    [(_, state, attempts, error)] = await states(db, queue)
    assert (state, attempts, error) == ("dead", 1, "PermanentJobError: not a video file")


async def test_other_errors_are_retried_with_backoff(
    queue: PostgresQueue, kinds: str, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    @register(f"{kinds}.flaky")
    async def flaky(payload: dict[str, Any], job: Job) -> None:
        raise TimeoutError

    await queue.enqueue(f"{kinds}.flaky", {})
    [job] = await queue.receive()
    with caplog.at_level(logging.WARNING, logger="cinema.worker"):
        assert await process(queue, job) is False
    [(_, state, attempts, error)] = await states(db, queue)
    assert (state, attempts, error) == ("queued", 1, "TimeoutError")
    [record] = [r for r in caplog.records if r.name == "cinema.worker"]
    assert (record.job_id, record.kind, record.attempts) == (job.id, job.kind, 1)  # type: ignore[attr-defined]


async def test_success_is_acknowledged_and_logged(
    queue: PostgresQueue, kinds: str, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    @register(f"{kinds}.ok")
    async def ok(payload: dict[str, Any], job: Job) -> None:
        seen.append((payload, job.id))

    job_id = await queue.enqueue(f"{kinds}.ok", {"video": "v1"})
    [job] = await queue.receive()
    with caplog.at_level(logging.INFO, logger="cinema.worker"):
        assert await process(queue, job) is True
    assert seen == [({"video": "v1"}, job_id)]
    assert [state for _, state, _, _ in await states(db, queue)] == ["done"]
    [record] = [r for r in caplog.records if r.getMessage() == "job done"]
    assert record.job_id == job_id and record.duration_ms >= 0  # type: ignore[attr-defined]


def test_a_kind_cannot_be_registered_twice_by_accident(kinds: str) -> None:
    async def one(payload: dict[str, Any], job: Job) -> None:
        return None

    async def other(payload: dict[str, Any], job: Job) -> None:
        return None

    register(f"{kinds}.twice")(one)
    register(f"{kinds}.twice")(one)  # the same function again (a re-import) is fine
    with pytest.raises(ValueError, match="already registered"):
        register(f"{kinds}.twice")(other)
    register(f"{kinds}.twice", replace=True)(other)
    assert HANDLERS[f"{kinds}.twice"] is other


async def test_a_job_longer_than_its_lease_keeps_it_and_its_ack_counts(
    queue: PostgresQueue, kinds: str, db: Db
) -> None:
    short = PostgresQueue(queue.pool, queue=queue.queue, visibility_seconds=2, worker_id="worker-a")
    rival = PostgresQueue(queue.pool, queue=queue.queue, visibility_seconds=2, worker_id="worker-b")
    stolen: list[Job] = []

    @register(f"{kinds}.long")
    async def long(payload: dict[str, Any], job: Job) -> None:
        # Another worker keeps asking while this one works 2.5x past the 2 s visibility timeout.
        for _ in range(25):
            stolen.extend(await rival.receive())
            await asyncio.sleep(0.2)

    job_id = await short.enqueue(f"{kinds}.long", {})
    [job] = await short.receive()
    assert job.visibility_seconds == 2
    assert await dispatch(short, job) is Outcome.DONE
    assert stolen == []
    [(_, state, attempts, _)] = await states(db, queue)
    assert (state, attempts) == ("done", 1)  # acknowledged by its one and only delivery
    assert job.id == job_id


async def test_a_lost_lease_is_reported_and_renewal_stops(
    queue: PostgresQueue, kinds: str, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    short = PostgresQueue(queue.pool, queue=queue.queue, visibility_seconds=1, worker_id="worker-a")
    rival = PostgresQueue(queue.pool, queue=queue.queue, worker_id="worker-b")
    taken: list[Job] = []

    @register(f"{kinds}.stalled")
    async def stalled(payload: dict[str, Any], job: Job) -> None:
        # As if this worker stalled past its lease: the job is claimed again elsewhere meanwhile.
        await db.execute(
            "update public.job_queue set locked_until = now() - interval '1 second' where id = %s", (job.id,)
        )
        taken.extend(await rival.receive())
        await asyncio.sleep(1.0)  # three renewal intervals: the first finds the lease gone

    await short.enqueue(f"{kinds}.stalled", {})
    [job] = await short.receive()
    with caplog.at_level(logging.WARNING):
        assert await dispatch(short, job) is Outcome.DONE  # the handler finished; its ack is stale
    assert [t.attempts for t in taken] == [2]
    lost = [r for r in caplog.records if r.getMessage().startswith("lease lost")]
    assert len(lost) == 1  # renewal stopped at the first refusal
    [(_, state, attempts, _)] = await states(db, queue)
    assert (state, attempts) == ("running", 2)  # still the rival's


async def test_a_job_without_a_known_lease_runs_without_renewal(
    queue: PostgresQueue, kinds: str, db: Db
) -> None:
    ran: list[str] = []

    @register(f"{kinds}.plain")
    async def plain(payload: dict[str, Any], job: Job) -> None:
        ran.append(job.id)

    job_id = await queue.enqueue(f"{kinds}.plain", {})
    [received] = await queue.receive()
    job = Job(
        id=received.id,
        kind=received.kind,
        payload=received.payload,
        priority=received.priority,
        attempts=received.attempts,
        receipt=received.receipt,
    )
    assert job.visibility_seconds is None
    assert await dispatch(queue, job) is Outcome.DONE
    assert ran == [job_id]
