"""Domain events: recorded in the emitting transaction, delivered once per subscriber through the queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from shared.events import DELIVER_KIND, DomainEvent, emit, subscribe, subscribers, unsubscribe
from shared.infra.loop_local import reset_all

Db = psycopg.AsyncConnection[Any]


@pytest.fixture
def name() -> Iterator[str]:
    event = f"test.event.{uuid.uuid4().hex[:8]}"
    yield event
    for subscriber_id in subscribers(event):
        unsubscribe(event, subscriber_id)


async def deliveries(db: Db, event_id: uuid.UUID) -> list[tuple[str, str]]:
    cursor = await db.execute(
        "select payload->>'subscriber', state from public.job_queue where kind = %s"
        " and payload->>'event_id' = %s order by payload->>'subscriber'",
        (DELIVER_KIND, str(event_id)),
    )
    return [(subscriber, state) for subscriber, state in await cursor.fetchall()]


async def park_other_jobs(db: Db, event_id: uuid.UUID) -> None:
    """Delay every other ready job (other tests' leftovers), so the receive loop below meets only ours.

    Receiving them and putting them back would charge their attempts (and with enough of them leave ours
    unreached within the loop's rounds): the outcome of this test must not depend on what ran before.
    """
    ours = "kind = %(kind)s and payload->>'event_id' = %(event)s"
    params = {"kind": DELIVER_KIND, "event": str(event_id)}
    await db.execute(
        "update public.job_queue set run_at = now() + interval '1 day' where state = 'queued'"
        f" and run_at <= now() + interval '1 minute' and not ({ours})",
        params,
    )
    # Abandoned leases (a worker killed mid-job) would be handed out again too.
    await db.execute(
        "update public.job_queue set locked_until = now() + interval '1 day' where state = 'running'"
        f" and locked_until < now() + interval '1 minute' and not ({ours})",
        params,
    )


async def run_deliveries(db: Db, event_id: uuid.UUID) -> list[str]:
    """Dispatch this event's queued deliveries with the real worker code; their outcomes."""
    from shared.infra.queue import get_queue
    from shared.infra.queue.worker import dispatch

    await park_other_jobs(db, event_id)
    queue = await get_queue()
    outcomes = []
    for _ in range(20):
        jobs = await queue.receive(max_jobs=1)
        if not jobs:
            break
        for job in jobs:
            if job.kind != DELIVER_KIND or job.payload.get("event_id") != str(event_id):
                continue  # not ours (queued meanwhile): leave it leased, it is delivered again later
            outcomes.append((await dispatch(queue, job)).value)
    return outcomes


async def test_emit_records_the_event_and_queues_one_delivery_per_subscriber(
    name: str, db: Db, database_url: str, settings_env: Any
) -> None:
    settings_env(QUEUE_BACKOFF_BASE_SECONDS="0", QUEUE_BACKOFF_MAX_SECONDS="0")
    await reset_all()
    seen: list[tuple[str, DomainEvent]] = []
    failures = {"flaky": 1}

    @subscribe(name, subscriber_id="tests.events.steady")
    async def steady(event: DomainEvent) -> None:
        seen.append(("steady", event))

    @subscribe(name, subscriber_id="tests.events.flaky")
    async def flaky(event: DomainEvent) -> None:
        if failures["flaky"]:
            failures["flaky"] -= 1
            raise ConnectionError("subscriber briefly away")
        seen.append(("flaky", event))

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        async with conn.transaction():
            event_id = await emit(conn, name, {"job_id": "j1"})
        async with conn.transaction():
            await emit(conn, name, {"job_id": "rolled back"})
            raise psycopg.Rollback
    cursor = await db.execute("select name, payload from public.domain_events where id = %s", (event_id,))
    assert await cursor.fetchall() == [(name, {"job_id": "j1"})]
    cursor = await db.execute(
        "select count(*) from public.domain_events where name = %s and payload->>'job_id' = 'rolled back'",
        (name,),
    )
    assert await cursor.fetchone() == (0,)
    assert await deliveries(db, event_id) == [
        ("tests.events.flaky", "queued"),
        ("tests.events.steady", "queued"),
    ]

    # The failing subscriber is retried alone; the other is not called twice.
    outcomes = await run_deliveries(db, event_id)
    assert sorted(outcomes) == ["done", "done", "retry"]
    assert sorted(who for who, _ in seen) == ["flaky", "steady"]
    assert all(event.id == event_id and event.payload == {"job_id": "j1"} for _, event in seen)
    assert await deliveries(db, event_id) == [("tests.events.flaky", "done"), ("tests.events.steady", "done")]


async def test_a_delivery_to_a_removed_subscriber_is_dropped(name: str, db: Db, database_url: str) -> None:
    @subscribe(name, subscriber_id="tests.events.gone")
    async def gone(event: DomainEvent) -> None:
        raise AssertionError("must not be called")

    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        event_id = await emit(conn, name, {})
    unsubscribe(name, "tests.events.gone")
    assert await run_deliveries(db, event_id) == ["done"]


def test_a_subscriber_id_cannot_be_taken_twice(name: str) -> None:
    async def one(event: DomainEvent) -> None: ...

    async def two(event: DomainEvent) -> None: ...

    subscribe(name, subscriber_id="tests.events.same")(one)
    subscribe(name, subscriber_id="tests.events.same")(one)  # the same function again is fine
    with pytest.raises(ValueError):
        subscribe(name, subscriber_id="tests.events.same")(two)


async def test_emit_refuses_a_payload_that_is_not_an_object(name: str, database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        with pytest.raises(ValueError):
            await emit(conn, name, ["not", "an", "object"])  # type: ignore[arg-type]
