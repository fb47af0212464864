"""Housekeeping: the outbox relay and the daily run, as the service and as the scheduled Lambdas, against
the run's PostgreSQL and SQS through moto."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from shared.infra.db import get_pool
from shared.infra.queue import close_queue
from shared.infra.queue.postgres import enqueue_in_transaction
from shared.maintenance.service import run_daily, run_relay
from shared.settings import get_settings
from tests.support.aws import REGION

Db = psycopg.AsyncConnection[Any]


@dataclass
class Sqs:
    client: Any
    url: str
    high_url: str

    def bodies(self) -> list[dict[str, Any]]:
        """The envelopes of every message on both queues (received, so hidden afterwards)."""
        found: list[dict[str, Any]] = []
        for url in (self.url, self.high_url):
            while batch := self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                found.extend(json.loads(message["Body"]) for message in batch)
        return found


@pytest.fixture
def sqs(aws_env: None) -> Iterator[Sqs]:
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        suffix = uuid.uuid4().hex[:8]
        url = client.create_queue(QueueName=f"jobs-{suffix}")["QueueUrl"]
        high_url = client.create_queue(QueueName=f"jobs-high-{suffix}")["QueueUrl"]
        yield Sqs(client, url, high_url)


@pytest.fixture
async def fresh_queue() -> AsyncIterator[None]:
    """Build the configured queue anew from the settings of the test, and forget it afterwards."""
    await close_queue()
    yield
    await close_queue()


@pytest.fixture
def sqs_backend(sqs: Sqs, settings_env: Any, fresh_queue: None) -> Sqs:
    settings_env(QUEUE_BACKEND="sqs", SQS_QUEUE_URL=sqs.url, SQS_HIGH_PRIORITY_QUEUE_URL=sqs.high_url)
    return sqs


@pytest.fixture
async def kind(db: Db) -> AsyncIterator[str]:
    """A job kind of this test only; its rows leave the shared default queue afterwards."""
    name = f"test.maintenance.{uuid.uuid4().hex[:8]}"
    yield name
    await db.execute("delete from public.job_queue where kind = %s", (name,))


async def write(kind: str, payload: dict[str, Any], **options: Any) -> str:
    """Queue a job on the default queue inside a committed transaction, as the API does."""
    async with (await get_pool()).connection() as conn, conn.transaction():
        return await enqueue_in_transaction(conn, kind, payload, **options)


async def state_of(db: Db, job_id: str) -> str | None:
    cursor = await db.execute("select state from public.job_queue where id = %s", (job_id,))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def test_relay_is_a_noop_with_the_postgres_backend(kind: str, db: Db, fresh_queue: None) -> None:
    assert get_settings().queue_backend == "postgres"
    job_id = await write(kind, {"n": 1})
    assert await run_relay(settings=get_settings()) == 0
    assert await state_of(db, job_id) == "queued"  # left for the worker, which reads the table itself


async def test_relay_forwards_outbox_jobs_to_sqs(sqs_backend: Sqs, kind: str, db: Db) -> None:
    job_id = await write(kind, {"video": "v1"}, dedup_key=f"{kind}-v1")
    urgent = await write(kind, {"video": "v2"}, priority=3)

    assert await run_relay(settings=get_settings()) >= 2

    ours = [body for body in sqs_backend.bodies() if body["kind"] == kind]
    assert sorted((body["payload"]["video"], body["priority"]) for body in ours) == [("v1", 0), ("v2", 3)]
    assert (await state_of(db, job_id), await state_of(db, urgent)) == ("done", "done")
    assert await run_relay(settings=get_settings()) == 0  # nothing twice
    assert sqs_backend.bodies() == []


async def test_daily_run_relays_and_purges_the_forwarded_rows_with_sqs(
    sqs_backend: Sqs, kind: str, db: Db
) -> None:
    old = await write(kind, {"n": 0})
    await db.execute(
        "update public.job_queue set state = 'done', finished_at = now() - interval '30 days' where id = %s",
        (old,),
    )
    pending = await write(kind, {"n": 1})

    report = await run_daily(settings=get_settings())

    assert report.queue_backend == "sqs"
    assert report.relayed_jobs >= 1 and report.purged_jobs >= 1
    assert [body["payload"] for body in sqs_backend.bodies() if body["kind"] == kind] == [{"n": 1}]
    assert await state_of(db, pending) == "done"  # forwarded; purged once past the retention
    assert await state_of(db, old) is None


async def test_daily_run_with_postgres_purges_and_relays_nothing(
    kind: str, db: Db, fresh_queue: None
) -> None:
    old = await write(kind, {"n": 0})
    await db.execute(
        "update public.job_queue set state = 'done', finished_at = now() - interval '30 days' where id = %s",
        (old,),
    )
    pending = await write(kind, {"n": 1})
    report = await run_daily(settings=get_settings())
    assert (report.queue_backend, report.relayed_jobs) == ("postgres", 0)
    assert report.purged_jobs >= 1
    assert (await state_of(db, old), await state_of(db, pending)) == (None, "queued")


async def test_daily_run_forgets_old_mail_but_keeps_recent_and_queued(db: Db, fresh_queue: None) -> None:
    ids = []
    for state, age in (("sent", "40 days"), ("failed", "40 days"), ("sent", "1 day"), ("queued", "40 days")):
        cursor = await db.execute(
            """insert into public.mail_outbox (to_address, template, subject, text_body, state, created_at)
               values ('old@example.com', 'verify_email', 's', 'b', %s, now() - %s::interval) returning id""",
            (state, age),
        )
        row = await cursor.fetchone()
        assert row is not None
        ids.append(row[0])
    report = await run_daily(settings=get_settings())
    assert report.purged_mail >= 2
    cursor = await db.execute("select id from public.mail_outbox where id = any(%s)", (ids,))
    assert {row[0] for row in await cursor.fetchall()} == {ids[2], ids[3]}


async def pg_connections(db: Db) -> int:
    cursor = await db.execute(
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def connections_settle_at(db: Db, baseline: int) -> int:
    """The connection count once back at the baseline (the server notices a closed socket a bit later)."""
    for _ in range(30):
        count = await pg_connections(db)
        if count <= baseline:
            break
        await asyncio.sleep(0.1)
    return count


@pytest.mark.parametrize("name", ["relay", "maintenance"])
async def test_scheduled_lambdas_report_and_close_their_connections(
    name: str, sqs_backend: Sqs, kind: str, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    entry = importlib.import_module(f"functions.scheduled.{name}")
    monkeypatch.setattr(entry, "configure_logging", lambda level: None)  # keep pytest's log capture
    await write(kind, {"n": 1})
    before = await pg_connections(db)  # after this loop's own pool is open
    # Lambda calls the handler with no loop running; a warm container calls it again on a new loop.
    first = await asyncio.to_thread(entry.handler, {}, None)
    second = await asyncio.to_thread(entry.handler, {}, None)
    assert first["relayed_jobs"] >= 1 and second["relayed_jobs"] == 0
    if name == "maintenance":
        assert set(first) == {
            "purged_jobs",
            "relayed_jobs",
            "purged_mail",
            "swept_media_prefixes",
            "swept_image_uploads",
            "swept_catalog_images",
            "swept_cloudinary_images",
            "queue_backend",
        }
    assert [body["payload"] for body in sqs_backend.bodies() if body["kind"] == kind] == [{"n": 1}]
    # Each invocation's loop closed its pool: nothing is left connected from the dead loops.
    assert await connections_settle_at(db, before) == before
