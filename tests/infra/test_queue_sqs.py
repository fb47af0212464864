"""The SQS job queue through moto: a normal queue, a high-priority queue and a real DLQ with redrive."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.infra.queue.sqs import MALFORMED_KIND, SqsQueue
from shared.infra.queue.worker import HANDLERS, PermanentJobError, handle_sqs_batch, register

REGION = "us-east-1"


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

    def dead_letters(self) -> list[dict[str, Any]]:
        response = self.client.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        )
        return list(response.get("Messages", []))


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sqs]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
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


async def test_delay_is_capped_at_the_sqs_maximum(sqs: Sqs) -> None:
    queue = sqs.queue()
    await queue.enqueue("test.later", {}, delay_seconds=86_400)  # SQS would refuse > 900 s
    assert await queue.receive() == []
    assert (await queue.check()).extra["delayed"] == 1


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
