"""The Lambda path: transcode jobs relayed to SQS (moto) and run by the transcoder's own handler."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.infra.loop_local import reset_all
from tests.support.aws import REGION
from tests.transcoding.jobs_support import Db, clip, job_row, make_source, park_foreign_jobs, queue_job


@dataclass
class Queues:
    client: Any
    url: str
    high_url: str
    dlq_url: str

    def arn(self, url: str) -> str:
        return str(
            self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def batch(self, url: str) -> dict[str, Any]:
        """What Lambda's poller hands the function: the visible messages of one queue."""
        messages = self.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message["Attributes"],
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn(url),
                    "awsRegion": REGION,
                }
                for message in messages
            ]
        }

    def dead_letters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while batch := self.client.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", []):
            found.extend(batch)
        return found

    def visible(self, url: str) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def queues(aws_env: None) -> Iterator[Queues]:
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        suffix = uuid.uuid4().hex[:8]
        dlq_url = client.create_queue(QueueName=f"jobs-dlq-{suffix}")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {
            "VisibilityTimeout": "5400",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        }
        url = client.create_queue(QueueName=f"jobs-{suffix}", Attributes=attributes)["QueueUrl"]
        high_url = client.create_queue(QueueName=f"jobs-high-{suffix}", Attributes=attributes)["QueueUrl"]
        yield Queues(client, url, high_url, dlq_url)


@pytest.fixture
async def lambda_env(
    queues: Queues, settings_env: Any, monkeypatch: pytest.MonkeyPatch, db: Db, tmp_path: Path
) -> Path:
    """Settings as serverless.yml gives the transcoder; /tmp is a folder we can inspect."""
    from functions.transcoder import handler as entry

    monkeypatch.setattr(entry, "configure_logging", lambda level: None)  # keep pytest's log capture
    scratch = tmp_path / "lambda-tmp"
    settings_env(
        QUEUE_BACKEND="sqs",
        SQS_QUEUE_URL=queues.url,
        SQS_HIGH_PRIORITY_QUEUE_URL=queues.high_url,
        SQS_DLQ_URL=queues.dlq_url,
        QUEUE_MAX_ATTEMPTS="3",
        MEDIA_X264_PRESET="ultrafast",
        MEDIA_WORK_DIR=str(scratch),
        MEDIA_KEEP_SOURCES="false",
    )
    await reset_all()
    await park_foreign_jobs(db)
    return scratch


async def relay() -> int:
    from shared.maintenance.service import run_relay
    from shared.settings import get_settings

    return await run_relay(settings=get_settings())


async def invoke(queues: Queues, url: str) -> dict[str, Any]:
    """The Lambda entry point on one batch, in a thread of its own as Lambda runs it (no loop running)."""
    from functions.transcoder import handler as entry

    event = queues.batch(url)
    assert event["Records"], "nothing to deliver"
    result: dict[str, Any] = await asyncio.to_thread(entry.handler, event, None)
    return result


async def assets_of(db: Db, source_id: uuid.UUID) -> list[tuple[Any, ...]]:
    cursor = await db.execute("select id, state from public.media_assets where source_id = %s", (source_id,))
    return list(await cursor.fetchall())


@pytest.mark.slow
async def test_a_transcode_through_sqs_and_the_lambda_handler(
    lambda_env: Path, queues: Queues, db: Db, database_url: str, tmp_path: Path
) -> None:
    source_id, _ = await make_source(db, clip(tmp_path / "clip.mp4", seconds=2))
    job_id = await queue_job(database_url, source_id)
    assert await relay() == 1

    assert await invoke(queues, queues.url) == {"batchItemFailures": []}

    job = await job_row(db, job_id)
    assert (job["state"], job["progress"]) == ("ready", 100)
    [(asset_id, state)] = await assets_of(db, source_id)
    assert state == "ready" and queues.visible(queues.url) == 0
    # MEDIA_KEEP_SOURCES=false: the source object went once the asset was ready.
    cursor = await db.execute(
        "select storage_key, deleted_at from public.media_sources where id = %s", (source_id,)
    )
    [(source_key, deleted_at)] = await cursor.fetchall()
    from shared.infra.storage import get_storage

    assert deleted_at is not None and await (await get_storage()).head(source_key) is None
    assert (
        await asyncio.to_thread(lambda: list(lambda_env.iterdir())) == []
    )  # the scratch folder (Lambda's /tmp) is left clean

    # The same message again (SQS delivers at least once): acknowledged, nothing changes.
    storage = await get_storage()
    before = {key: (await storage.head(key)) for key in await storage.list_keys(f"media/assets/{asset_id}/")}
    body = json.dumps(
        {"id": "again", "kind": "transcode.run", "payload": {"transcode_job_id": str(job_id)}, "priority": 0}
    )
    queues.client.send_message(QueueUrl=queues.url, MessageBody=body)
    assert await invoke(queues, queues.url) == {"batchItemFailures": []}
    after = {key: (await storage.head(key)) for key in await storage.list_keys(f"media/assets/{asset_id}/")}
    assert after == before and await assets_of(db, source_id) == [(asset_id, "ready")]
    assert queues.dead_letters() == [] and queues.visible(queues.url) == 0


async def test_poisoned_messages_reach_the_dlq_and_a_refused_file_does_not(
    lambda_env: Path, queues: Queues, db: Db, database_url: str, tmp_path: Path
) -> None:
    hostile = tmp_path / "concat.mp4"
    hostile.write_text("ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://127.0.0.1:9/x'\n")
    source_id, _ = await make_source(db, hostile)
    job_id = await queue_job(database_url, source_id)
    assert await relay() == 1
    for payload in ({"transcode_job_id": "nope"}, {"transcode_job_id": str(uuid.uuid4())}, {}):
        body = json.dumps(
            {"id": uuid.uuid4().hex, "kind": "transcode.run", "payload": payload, "priority": 0}
        )
        queues.client.send_message(QueueUrl=queues.url, MessageBody=body)
    queues.client.send_message(QueueUrl=queues.url, MessageBody="{not json")

    assert await invoke(queues, queues.url) == {"batchItemFailures": []}  # none left for a retry storm

    # Poisoned messages (they can never run) are dead letters for operators, with their reason ...
    reasons = sorted(m["MessageAttributes"]["error"]["StringValue"] for m in queues.dead_letters())
    assert len(reasons) == 4, reasons
    assert sum("malformed payload" in reason for reason in reasons) == 2
    assert sum("unknown transcode job" in reason for reason in reasons) == 1
    assert sum("no handler for kind 'malformed-message'" in reason for reason in reasons) == 1
    assert queues.visible(queues.url) == 0
    # ... a refused file is the uploader's to fix: the job failed with the reason, its message deleted.
    job = await job_row(db, job_id)
    assert (job["state"], job["failure_code"], job["attempts"]) == ("failed", "not_media", 1)
    assert not job["dead_lettered"] and job["failure_reason"]
    assert await asyncio.to_thread(lambda: list(lambda_env.iterdir())) == []
