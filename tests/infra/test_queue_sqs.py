"""The SQS job queue through moto: a normal queue, a high-priority queue and a real DLQ with redrive."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg_pool import AsyncConnectionPool

from shared.infra.queue import Job
from shared.infra.queue.postgres import PostgresQueue, enqueue_in_transaction
from shared.infra.queue.relay import relay_outbox
from shared.infra.queue.sqs import MALFORMED_KIND, SqsQueue
from shared.infra.queue.worker import (
    HANDLERS,
    Outcome,
    PermanentJobError,
    dispatch,
    handle_sqs_batch,
    register,
)
from tests.support.aws import REGION

Db = psycopg.AsyncConnection[Any]


@dataclass
class Sqs:
    client: Any
    url: str
    high_url: str
    dlq_url: str

    def queue(self, **options: Any) -> SqsQueue:
        options.setdefault("max_attempts", 3)
        options.setdefault("backoff_base_seconds", 0.0)
        return SqsQueue(self.url, high_priority_queue_url=self.high_url, dlq_url=self.dlq_url, **options)

    def arn(self, url: str) -> str:
        attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def messages(self, url: str) -> list[dict[str, Any]]:
        """Every visible message of a queue, left visible afterwards (for counting what was sent)."""
        found: list[dict[str, Any]] = []
        while batch := self.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", []):
            found.extend(batch)
        for message in found:
            self.client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        response = self.client.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        )
        return list(response.get("Messages", []))


@pytest.fixture
def sqs(aws_env: None) -> Iterator[Sqs]:
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        suffix = uuid.uuid4().hex[:8]
        dlq_url = client.create_queue(QueueName=f"jobs-dlq-{suffix}")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # The safety net above our own max attempts, as in serverless.yml.
        attributes = {
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "10"}),
        }
        url = client.create_queue(QueueName=f"jobs-{suffix}", Attributes=attributes)["QueueUrl"]
        high_url = client.create_queue(QueueName=f"jobs-high-{suffix}", Attributes=attributes)["QueueUrl"]
        yield Sqs(client, url, high_url, dlq_url)


@pytest.fixture
def kinds() -> Iterator[str]:
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    yield prefix
    for kind in [kind for kind in HANDLERS if kind.startswith(prefix)]:
        del HANDLERS[kind]


async def test_enqueue_receive_ack(sqs: Sqs) -> None:
    queue = sqs.queue()
    job_id = await queue.enqueue("test.hello", {"video": "v1"})
    uuid.UUID(job_id)
    [job] = await queue.receive()
    assert (job.id, job.kind, job.payload, job.priority, job.attempts) == (
        job_id,
        "test.hello",
        {"video": "v1"},
        0,
        1,
    )
    assert job.receipt.startswith(f"{sqs.url}|")
    assert (await queue.check()).in_flight == 1
    await queue.ack(job)
    stats = await queue.check()
    assert (stats.queued, stats.in_flight, stats.dead) == (0, 0, 0)
    assert await queue.receive() == []
    message = sqs.client.receive_message(QueueUrl=sqs.url)  # really deleted, not just hidden
    assert "Messages" not in message


async def test_message_carries_the_job_envelope_and_attributes(sqs: Sqs) -> None:
    queue = sqs.queue()
    job_id = await queue.enqueue("test.envelope", {"a": 1}, dedup_key="video-7")
    [message] = sqs.client.receive_message(QueueUrl=sqs.url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"]) == {
        "id": job_id,
        "kind": "test.envelope",
        "payload": {"a": 1},
        "priority": 0,
    }
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"kind": "test.envelope", "dedup_key": "video-7"}
    # The same dedup key gives the same job id (standard SQS cannot look the first message up).
    assert await queue.enqueue("test.envelope", {"a": 2}, dedup_key="video-7") == job_id
    assert await queue.enqueue("test.envelope", {"a": 3}, dedup_key="video-8") != job_id


async def test_high_priority_queue_is_polled_first(sqs: Sqs) -> None:
    queue = sqs.queue()
    await queue.enqueue("test.low", {}, priority=0)
    await queue.enqueue("test.high", {}, priority=5)
    assert (
        sqs.client.get_queue_attributes(
            QueueUrl=sqs.high_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "1"
    )
    [first] = await queue.receive()
    assert (first.kind, first.priority) == ("test.high", 5)
    assert first.receipt.startswith(f"{sqs.high_url}|")
    [second] = await queue.receive()
    assert second.kind == "test.low"
    await queue.enqueue("test.low", {})
    await queue.enqueue("test.high", {}, priority=1)
    assert [job.kind for job in await queue.receive(max_jobs=5)] == ["test.high", "test.low"]


def send_early(sqs: Sqs, not_before: float, kind: str = "test.later") -> str:
    """A message as it surfaces 15 minutes after a longer delay: visible, but not due before not_before."""
    job_id = str(uuid.uuid4())
    body = {"id": job_id, "kind": kind, "payload": {}, "priority": 0, "not_before": not_before}
    sqs.client.send_message(QueueUrl=sqs.url, MessageBody=json.dumps(body))
    return job_id


async def test_a_delay_past_the_sqs_maximum_carries_its_not_before_time(sqs: Sqs) -> None:
    queue = sqs.queue()
    before = time.time()
    job_id = await queue.enqueue("test.later", {"n": 1}, delay_seconds=3600)  # SQS refuses > 900 s
    assert await queue.receive() == []
    assert (await queue.check()).extra["delayed"] == 1  # SQS's own 15 minutes come first
    # What the message will say when it surfaces after those 15 minutes (moto's clock cannot be moved
    # forward, so read it where moto keeps it); the receive side is tested below with such messages.
    envelope = json.loads(body_in_moto(job_id))
    assert before + 3600 - 0.001 <= envelope["not_before"] <= time.time() + 3600  # rounded to ms
    # Delays SQS can honour itself need nothing more: their envelope stays as it was.
    soon_id = await queue.enqueue("test.soon", {}, delay_seconds=900)
    assert "not_before" not in json.loads(body_in_moto(soon_id))


def body_in_moto(job_id: str) -> str:
    """The body of a (delayed, so unreceivable) message, from moto's in-memory SQS."""
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    for queue in get_backend("sqs")[DEFAULT_ACCOUNT_ID][REGION].queues.values():
        for message in queue._messages:
            if json.loads(message.body).get("id") == job_id:
                return str(message.body)
    raise AssertionError(f"no message for job {job_id}")


async def test_an_early_message_is_hidden_until_due_not_run(
    sqs: Sqs, caplog: pytest.LogCaptureFixture
) -> None:
    queue = sqs.queue()
    send_early(sqs, time.time() + 3600)
    with caplog.at_level(logging.DEBUG, logger="cinema.queue"):
        assert await queue.receive(visibility_seconds=1) == []
    assert not [r for r in caplog.records if r.getMessage().startswith("could not defer")]
    stats = await queue.check()
    assert (stats.queued, stats.in_flight) == (0, 1)
    await asyncio.sleep(1.3)
    assert await queue.receive() == []  # hidden for the remaining hour, not the 1 s lease
    # Days away: hidden for the 12 h SQS allows per receive (moto refuses more), then again.
    send_early(sqs, time.time() + 3 * 86_400, kind="test.much-later")
    with caplog.at_level(logging.DEBUG, logger="cinema.queue"):
        assert await queue.receive() == []
    assert not [r for r in caplog.records if r.getMessage().startswith("could not defer")]
    assert (await queue.check()).in_flight == 2


async def test_an_early_message_runs_once_due_without_losing_an_attempt(sqs: Sqs) -> None:
    queue = sqs.queue()
    job_id = send_early(sqs, time.time() + 2.5)
    assert await queue.receive() == []
    await asyncio.sleep(1.5)
    assert await queue.receive() == []
    await asyncio.sleep(1.5)
    [job] = await queue.receive()
    # The early receive only deferred it: this is the job's first try.
    assert (job.id, job.kind, job.attempts) == (job_id, "test.later", 1)


async def test_lambda_keeps_an_early_message_for_later(sqs: Sqs, kinds: str) -> None:
    ran: list[str] = []

    @register(f"{kinds}.later")
    async def later(payload: dict[str, Any], job: Any) -> None:
        ran.append(job.id)

    send_early(sqs, time.time() + 3600, kind=f"{kinds}.later")
    [message] = sqs.client.receive_message(
        QueueUrl=sqs.url, MessageSystemAttributeNames=["All"], VisibilityTimeout=1
    )["Messages"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "eventSourceARN": sqs.arn(sqs.url),
    }
    result = await handle_sqs_batch({"Records": [record]}, queue=sqs.queue())
    # Reported as failed so Lambda does not delete it; it stays hidden until due, not for the 1 s lease.
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert ran == []
    await asyncio.sleep(1.3)
    assert "Messages" not in sqs.client.receive_message(QueueUrl=sqs.url)


async def test_retry_hides_the_message_for_the_backoff(sqs: Sqs) -> None:
    queue = sqs.queue(backoff_base_seconds=120, backoff_max_seconds=120)
    await queue.enqueue("test.retry", {})
    [job] = await queue.receive(visibility_seconds=1)
    assert await queue.retry(job, error="busy") is True
    await asyncio.sleep(1.3)
    assert await queue.receive() == []  # the 120 s backoff replaced the 1 s lease
    stats = await queue.check()
    assert (stats.queued, stats.in_flight) == (0, 1)


async def test_retry_redelivers_then_dead_letters_past_max_attempts(sqs: Sqs) -> None:
    queue = sqs.queue(max_attempts=2)  # backoff 0: visible again at once
    await queue.enqueue("test.flaky", {"n": 1})
    [job] = await queue.receive()
    assert job.attempts == 1
    assert await queue.retry(job, error="timeout 1") is True
    [job] = await queue.receive()
    assert job.attempts == 2
    assert await queue.retry(job, error="timeout 2") is False
    assert await queue.receive() == []
    [dead] = sqs.dead_letters()
    assert json.loads(dead["Body"])["payload"] == {"n": 1}
    assert dead["MessageAttributes"]["error"]["StringValue"] == "timeout 2"
    assert dead["MessageAttributes"]["attempts"]["StringValue"] == "2"
    stats = await queue.check()
    assert (stats.queued, stats.in_flight) == (0, 0)


async def test_dead_letter_moves_the_job_to_the_dlq_with_the_reason(sqs: Sqs) -> None:
    queue = sqs.queue()
    job_id = await queue.enqueue("test.poison", {"bad": True}, priority=3)
    [job] = await queue.receive()
    await queue.dead_letter(job, error="unsupported codec")
    [dead] = sqs.dead_letters()
    assert json.loads(dead["Body"]) == {
        "id": job_id,
        "kind": "test.poison",
        "payload": {"bad": True},
        "priority": 3,
    }
    assert dead["MessageAttributes"]["error"]["StringValue"] == "unsupported codec"
    assert dead["MessageAttributes"]["source_queue"]["StringValue"] == sqs.high_url
    stats = await queue.check()
    assert (stats.queued, stats.in_flight, stats.dead) == (0, 0, 1)


async def test_a_foreign_message_becomes_a_dead_letterable_job(sqs: Sqs) -> None:
    queue = sqs.queue()
    sqs.client.send_message(QueueUrl=sqs.url, MessageBody="not json")
    [job] = await queue.receive()
    assert (job.kind, job.payload) == (MALFORMED_KIND, {"body": "not json"})


async def test_handle_sqs_batch_reports_only_transient_failures(sqs: Sqs, kinds: str) -> None:
    calls: list[str] = []

    @register(f"{kinds}.ok")
    async def ok(payload: dict[str, Any], job: Any) -> None:
        calls.append(payload["name"])

    @register(f"{kinds}.transient")
    async def transient(payload: dict[str, Any], job: Any) -> None:
        raise ConnectionError("storage timed out")

    @register(f"{kinds}.permanent")
    async def permanent(payload: dict[str, Any], job: Any) -> None:
        raise PermanentJobError("not a video")

    queue = sqs.queue(backoff_base_seconds=300, backoff_max_seconds=300)
    for kind in ("ok", "transient", "permanent", "unknown"):
        await queue.enqueue(f"{kinds}.{kind}", {"name": kind})
    # What Lambda's poller would hand the function.
    response = sqs.client.receive_message(
        QueueUrl=sqs.url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = response["Messages"]
    assert len(messages) == 4
    arn = sqs.arn(sqs.url)
    event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message["Attributes"],
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }
    by_kind = {json.loads(m["Body"])["kind"].rsplit(".", 1)[-1]: m["MessageId"] for m in messages}

    result = await handle_sqs_batch(event, queue=queue)

    assert result == {"batchItemFailures": [{"itemIdentifier": by_kind["transient"]}]}
    assert calls == ["ok"]
    reasons = sorted(m["MessageAttributes"]["error"]["StringValue"] for m in sqs.dead_letters())
    assert reasons == ["PermanentJobError: not a video", f"no handler for kind '{kinds}.unknown'"]
    # Only the transient one is left, hidden for its backoff; ok/permanent/unknown were deleted.
    stats = await queue.check()
    assert (stats.queued, stats.in_flight) == (0, 1)


async def test_a_stale_receipt_is_ignored(sqs: Sqs) -> None:
    queue = sqs.queue()
    await queue.enqueue("test.stale", {})
    [job] = await queue.receive()
    await queue.ack(job)
    await queue.ack(job)  # deleting twice is harmless


def test_region_and_endpoint_come_from_the_queue_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SQS",
    ):
        monkeypatch.delenv(name, raising=False)
    queue = SqsQueue("https://sqs.eu-west-3.amazonaws.com/123456789012/jobs", client=object())
    assert queue.queue_url.endswith("/jobs")
    from shared.infra.queue.sqs import _client_for

    aws = _client_for("https://sqs.eu-west-3.amazonaws.com/123456789012/jobs")
    assert aws.meta.region_name == "eu-west-3"
    local = _client_for("http://127.0.0.1:4566/000000000000/jobs")
    assert local.meta.endpoint_url == "http://127.0.0.1:4566"
    assert local.meta.region_name == "us-east-1"


async def test_lambda_entry_point_runs_the_batch_with_the_configured_queue(
    sqs: Sqs, kinds: str, settings_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.transcoder import handler as entry

    monkeypatch.setattr(entry, "configure_logging", lambda level: None)  # keep pytest's log capture
    settings_env(
        QUEUE_BACKEND="sqs",
        SQS_QUEUE_URL=sqs.url,
        SQS_HIGH_PRIORITY_QUEUE_URL=sqs.high_url,
        SQS_DLQ_URL=sqs.dlq_url,
    )
    ran: list[str] = []

    @register(f"{kinds}.lambda")
    async def work(payload: dict[str, Any], job: Any) -> None:
        ran.append(job.id)

    job_id = await sqs.queue().enqueue(f"{kinds}.lambda", {}, priority=1)
    [message] = sqs.client.receive_message(QueueUrl=sqs.high_url, MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "eventSourceARN": sqs.arn(sqs.high_url),
    }
    # Lambda calls the handler with no loop running; its asyncio.run must not disturb this thread's loop.
    result = await asyncio.to_thread(entry.handler, {"Records": [record]}, None)
    assert result == {"batchItemFailures": []}
    assert ran == [job_id]
    assert "Messages" not in sqs.client.receive_message(QueueUrl=sqs.high_url, VisibilityTimeout=0)


async def pg_connections(db: Db) -> int:
    cursor = await db.execute(
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def redis_clients(redis_url: str) -> int:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        return len(client.client_list()) - 1  # not counting this one


async def settled(probe: Any, baseline: int) -> int:
    """The probe's value once it is back at the baseline (closing a socket takes the server a moment)."""
    for _ in range(30):
        value = int(await probe())
        if value <= baseline:
            return value
        await asyncio.sleep(0.1)
    return value


async def test_lambda_entry_point_closes_every_client_its_loop_opened(
    sqs: Sqs, kinds: str, settings_env: Any, monkeypatch: pytest.MonkeyPatch, db: Db, redis_url: str
) -> None:
    from functions.transcoder import handler as entry
    from shared.infra.db import get_pool
    from shared.infra.redis import get_redis

    monkeypatch.setattr(entry, "configure_logging", lambda level: None)
    settings_env(QUEUE_BACKEND="sqs", SQS_QUEUE_URL=sqs.url, SQS_DLQ_URL=sqs.dlq_url, REDIS_URL=redis_url)

    @register(f"{kinds}.touch")
    async def touch(payload: dict[str, Any], job: Any) -> None:
        # What real handlers do: the database and Redis, through the loop-local clients.
        async with (await get_pool()).connection() as conn:
            await conn.execute("select 1")
        assert await (await get_redis()).ping()

    pg_before, redis_before = await pg_connections(db), redis_clients(redis_url)
    for _ in range(2):  # a warm container runs invocation after invocation, each on a new loop
        await sqs.queue().enqueue(f"{kinds}.touch", {})
        [message] = sqs.client.receive_message(QueueUrl=sqs.url, MessageSystemAttributeNames=["All"])[
            "Messages"
        ]
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "eventSourceARN": sqs.arn(sqs.url),
        }
        result = await asyncio.to_thread(entry.handler, {"Records": [record]}, None)
        assert result == {"batchItemFailures": []}
    assert await settled(lambda: pg_connections(db), pg_before) == pg_before

    async def redis_now() -> int:
        return redis_clients(redis_url)

    assert await settled(redis_now, redis_before) == redis_before


# --- lease renewal ---------------------------------------------------------------------------------


async def test_extend_keeps_the_message_hidden_while_the_receipt_is_current(sqs: Sqs) -> None:
    queue = sqs.queue()
    await queue.enqueue("test.extend", {})
    [job] = await queue.receive(visibility_seconds=1)
    assert job.visibility_seconds == 1
    assert await queue.extend(job, seconds=60) is True
    await asyncio.sleep(1.3)
    assert await queue.receive() == []  # the 1 s lease would have lapsed by now
    await queue.ack(job)
    assert await queue.extend(job, seconds=60) is False  # deleted: nothing left to extend
    with pytest.raises(ValueError, match="at least 1"):
        await queue.extend(job, seconds=0)


async def test_a_job_longer_than_its_lease_is_not_redelivered_on_sqs(sqs: Sqs, kinds: str) -> None:
    queue = sqs.queue(visibility_seconds=2)
    rival = sqs.queue(visibility_seconds=2)
    stolen: list[Job] = []

    @register(f"{kinds}.long")
    async def long(payload: dict[str, Any], job: Job) -> None:
        for _ in range(20):  # 4 s of work against a 2 s visibility timeout
            stolen.extend(await rival.receive())
            await asyncio.sleep(0.2)

    await queue.enqueue(f"{kinds}.long", {})
    [job] = await queue.receive()
    assert await dispatch(queue, job) is Outcome.DONE
    assert stolen == []
    assert sqs.messages(sqs.url) == []  # the ack deleted it: the receipt was still the current one
    stats = await queue.check()
    assert (stats.queued, stats.in_flight) == (0, 0)


# --- the transactional outbox's relay --------------------------------------------------------------


@pytest.fixture
def outbox(pool: AsyncConnectionPool) -> PostgresQueue:
    return PostgresQueue(pool, queue=f"test-outbox-{uuid.uuid4().hex[:8]}")


async def write(outbox: PostgresQueue, kind: str, payload: dict[str, Any], **options: Any) -> str:
    """Queue a job the way the API does: inside a committed transaction of its own."""
    async with outbox.pool.connection() as conn, conn.transaction():
        return await enqueue_in_transaction(conn, kind, payload, queue=outbox.queue, **options)


async def outbox_rows(db: Db, outbox: PostgresQueue) -> dict[str, tuple[str, str | None]]:
    cursor = await db.execute(
        "select id::text, state, last_error from public.job_queue where queue = %s", (outbox.queue,)
    )
    return {job_id: (state, error) for job_id, state, error in await cursor.fetchall()}


async def test_relay_forwards_committed_outbox_rows_to_sqs(sqs: Sqs, outbox: PostgresQueue, db: Db) -> None:
    target = sqs.queue()
    keyed = await write(outbox, "test.transcode", {"video": "v1"}, dedup_key="video-v1")
    urgent = await write(outbox, "test.urgent", {"video": "v2"}, priority=2)
    soon = await write(outbox, "test.soon", {}, delay_seconds=60)
    later = await write(outbox, "test.later", {}, delay_seconds=3600)
    async with outbox.pool.connection() as conn, conn.transaction():
        await enqueue_in_transaction(conn, "test.rolled-back", {}, queue=outbox.queue)
        raise psycopg.Rollback

    assert await relay_outbox(source=outbox, target=target) == 3

    [normal] = sqs.messages(sqs.url)
    body = json.loads(normal["Body"])
    assert (body["kind"], body["payload"], body["priority"]) == ("test.transcode", {"video": "v1"}, 0)
    # The dedup key travels along, so the job id is the one a direct SQS enqueue with that key gets.
    assert normal["MessageAttributes"]["dedup_key"]["StringValue"] == "video-v1"
    assert body["id"] == await sqs.queue().enqueue("test.transcode", {}, dedup_key="video-v1")
    [high] = sqs.messages(sqs.high_url)
    assert (json.loads(high["Body"])["kind"], json.loads(high["Body"])["priority"]) == ("test.urgent", 2)
    # Due within SQS's own delay: sent delayed by what is left of it, not run at once.
    assert (await target.check()).extra["delayed"] >= 1
    rows = await outbox_rows(db, outbox)
    assert {job_id: state for job_id, (state, _) in rows.items()} == {
        keyed: "done",
        urgent: "done",
        soon: "done",
        later: "queued",  # an hour away: it waits in PostgreSQL until it is within 15 minutes
    }


async def test_a_failed_send_leaves_the_row_queued_for_the_next_run(
    sqs: Sqs, outbox: PostgresQueue, db: Db
) -> None:
    job_id = await write(outbox, "test.transcode", {"video": "v1"})
    missing = SqsQueue(f"{sqs.url}-missing")  # a real SQS error: the queue does not exist

    assert await relay_outbox(source=outbox, target=missing) == 0

    [(state, error)] = (await outbox_rows(db, outbox)).values()
    assert state == "queued" and error is not None and error.startswith("relay: ")
    assert sqs.messages(sqs.url) == []
    assert await relay_outbox(source=outbox, target=sqs.queue()) == 1  # the next run delivers it
    assert (await outbox_rows(db, outbox))[job_id] == ("done", None)
    assert len(sqs.messages(sqs.url)) == 1


async def test_relaying_again_sends_nothing_twice_and_a_resend_keeps_the_job_id(
    sqs: Sqs, outbox: PostgresQueue, db: Db
) -> None:
    target = sqs.queue()
    job_id = await write(outbox, "test.once", {"n": 1})
    assert await relay_outbox(source=outbox, target=target) == 1
    assert await relay_outbox(source=outbox, target=target) == 0
    [first] = sqs.messages(sqs.url)
    # A relay that sent but lost its commit leaves the row queued: it is sent again, as the same job.
    await db.execute(
        "update public.job_queue set state = 'queued', finished_at = null where id = %s", (job_id,)
    )
    assert await relay_outbox(source=outbox, target=target) == 1
    copies = sqs.messages(sqs.url)
    assert len(copies) == 2
    assert {json.loads(m["Body"])["id"] for m in copies} == {json.loads(first["Body"])["id"]}


async def test_concurrent_relays_split_the_rows(sqs: Sqs, outbox: PostgresQueue, db: Db) -> None:
    target = sqs.queue()
    for n in range(30):
        await write(outbox, "test.many", {"n": n})
    counts = await asyncio.gather(*(relay_outbox(source=outbox, target=target, limit=10) for _ in range(3)))
    assert sum(counts) == 30
    sent = [json.loads(m["Body"])["payload"]["n"] for m in sqs.messages(sqs.url)]
    assert sorted(sent) == list(range(30))
    assert {state for state, _ in (await outbox_rows(db, outbox)).values()} == {"done"}


async def test_relay_refuses_to_forward_a_queue_into_itself(outbox: PostgresQueue) -> None:
    with pytest.raises(ValueError, match="into itself"):
        await relay_outbox(source=outbox, target=PostgresQueue(outbox.pool, queue=outbox.queue))
