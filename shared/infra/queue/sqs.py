"""The production job queue: Amazon SQS (a normal and an optional high-priority queue) plus a DLQ."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.infra.queue import backoff_seconds
from shared.infra.queue.base import Job, QueueStats

if TYPE_CHECKING:
    from shared.settings import Settings

logger = logging.getLogger("cinema.queue")

MAX_DELAY_SECONDS = 900  # SQS refuses a longer DelaySeconds: longer delays also carry a not-before time
MAX_VISIBILITY_SECONDS = 43_200  # 12 h, the SQS ceiling for a visibility timeout
# A message received before its not-before time is hidden again for at most this long: SQS refuses a
# visibility ending more than 12 h after the receive, and the call lands a moment after it.
MAX_DEFER_SECONDS = MAX_VISIBILITY_SECONDS - 60
# Sender and receiver clocks differ a little: a job this close to its not-before time counts as due.
_DUE_SLACK_SECONDS = 1.0
MALFORMED_KIND = "malformed-message"  # no handler has this kind, so such messages are dead-lettered
_MAX_ERROR_CHARS = 4000
_RECEIVE_BATCH = 10  # SQS hands out at most 10 messages per call
_STALE_CODES = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"}
# Jobs queued with a dedup key get an id derived from it, so enqueueing the same key again returns the
# same id even though standard SQS cannot look the earlier message up.
_DEDUP_NAMESPACE = uuid.UUID("8c2d6f1e-5b0a-4b8e-9a57-2f0c4d6c9e31")


def _client_for(queue_url: str) -> Any:
    import boto3
    from botocore.config import Config

    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    region = None
    endpoint = None
    if host.endswith(".amazonaws.com") and len(parts) >= 4:
        # sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com
        region = parts[1] if parts[0] == "sqs" else parts[0]
    else:
        # LocalStack, ElasticMQ and friends: the queue URL's origin is the endpoint.
        scheme, netloc = urlsplit(queue_url)[:2]
        endpoint = f"{scheme}://{netloc}"
    # read_timeout above the 20 s long-poll ceiling; standard retries absorb SQS throttling.
    config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
    session = boto3.session.Session()
    # Local emulators accept any region, but botocore insists on one.
    region = region or session.region_name or "us-east-1"
    return session.client("sqs", region_name=region, endpoint_url=endpoint, config=config)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _split_receipt(receipt: str) -> tuple[str, str]:
    url, sep, handle = receipt.partition("|")
    if not sep or not url or not handle:
        raise ValueError("not an SQS receipt (expected '<queue url>|<receipt handle>')")
    return url, handle


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _envelope(
    job_id: str, kind: str, payload: dict[str, Any], priority: int, *, not_before: float | None = None
) -> str:
    envelope: dict[str, Any] = {"id": job_id, "kind": kind, "payload": payload, "priority": priority}
    if not_before is not None:
        envelope["not_before"] = round(not_before, 3)  # epoch seconds (UTC)
    return json.dumps(envelope, separators=(",", ":"))


def _not_before(envelope: dict[str, Any]) -> float | None:
    value = envelope.get("not_before")
    # bool is an int subclass: refuse it rather than read True as 1970-01-01T00:00:01.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _attempts(attributes: dict[str, Any], not_before: float | None) -> int:
    """The attempt number of a delivery: the receive count minus the receives that only deferred it."""
    count = int(attributes.get("ApproximateReceiveCount", "1"))
    first = attributes.get("ApproximateFirstReceiveTimestamp")
    if not_before is None or first is None:
        return count
    early_span = not_before - int(first) / 1000 - _DUE_SLACK_SECONDS
    if early_span <= 0:
        return count
    # Receives before the not-before time each hid the message again for up to MAX_DEFER_SECONDS,
    # starting with the first one; they were not tries of the job, so they do not use up attempts.
    return max(1, count - math.ceil(early_span / MAX_DEFER_SECONDS))


class SqsQueue:
    """JobQueue over SQS; boto3 is blocking, so every call runs in a worker thread."""

    def __init__(
        self,
        queue_url: str,
        *,
        high_priority_queue_url: str | None = None,
        dlq_url: str | None = None,
        visibility_seconds: int = 900,
        max_attempts: int = 5,
        backoff_base_seconds: float = 5.0,
        backoff_max_seconds: float = 900.0,
        wait_seconds: int = 0,
        client: Any = None,
    ) -> None:
        if not 0 <= wait_seconds <= 20:
            raise ValueError("wait_seconds must be between 0 and 20 (the SQS long-poll limit)")
        self.queue_url = queue_url
        self.high_priority_queue_url = high_priority_queue_url
        self.dlq_url = dlq_url
        self.visibility_seconds = visibility_seconds
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.wait_seconds = wait_seconds
        self._client = client if client is not None else _client_for(queue_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsQueue:
        """Build the queue from SQS_* and QUEUE_* settings."""
        if settings.sqs_queue_url is None:
            raise ValueError("SQS_QUEUE_URL is required when QUEUE_BACKEND=sqs")
        high = settings.sqs_high_priority_queue_url
        dlq = settings.sqs_dlq_url
        return cls(
            str(settings.sqs_queue_url),
            high_priority_queue_url=str(high) if high else None,
            dlq_url=str(dlq) if dlq else None,
            visibility_seconds=settings.queue_visibility_seconds,
            max_attempts=settings.queue_max_attempts,
            backoff_base_seconds=settings.queue_backoff_base_seconds,
            backoff_max_seconds=settings.queue_backoff_max_seconds,
        )

    async def close(self) -> None:
        """Release the client's HTTP connections."""
        self._client.close()

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.to_thread(getattr(self._client, method), **kwargs)
        return result

    async def _attributes(self, url: str, names: list[str]) -> dict[str, int]:
        response = await self._call("get_queue_attributes", QueueUrl=url, AttributeNames=names)
        return {name: int(value) for name, value in response.get("Attributes", {}).items()}

    async def check(self) -> QueueStats:
        """Approximate depths of the queues and the DLQ (raises when SQS or a queue is unreachable)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        urls = [url for url in (self.queue_url, self.high_priority_queue_url) if url]
        depths = await asyncio.gather(*(self._attributes(url, names) for url in urls))
        dead = 0
        if self.dlq_url:
            dlq = await self._attributes(self.dlq_url, ["ApproximateNumberOfMessages"])
            dead = dlq.get("ApproximateNumberOfMessages", 0)
        extra: dict[str, Any] = {
            "delayed": sum(d.get("ApproximateNumberOfMessagesDelayed", 0) for d in depths),
            "approximate": True,
        }
        if self.high_priority_queue_url:
            extra["high_priority_queued"] = depths[1].get("ApproximateNumberOfMessages", 0)
        return QueueStats(
            queued=sum(d.get("ApproximateNumberOfMessages", 0) for d in depths),
            in_flight=sum(d.get("ApproximateNumberOfMessagesNotVisible", 0) for d in depths),
            dead=dead,
            extra=extra,
        )

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        delay_seconds: int = 0,
        dedup_key: str | None = None,
    ) -> str:
        """Send a job (priority > 0 to the high-priority queue when configured); return its id.

        Standard SQS keeps no index of dedup keys: the same key yields the same id, but a second
        message may still be delivered, so handlers must be idempotent (SQS is at-least-once anyway).
        A delay past SQS's 15 minutes rides in the message as a not-before time: receivers hide an
        early message again until then. Keep such delays well inside the queue's retention (4 days).
        """
        if not kind:
            raise ValueError("a job needs a kind")
        if not isinstance(payload, dict):
            raise TypeError("a job payload must be a JSON object (dict)")
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must not be negative, got {delay_seconds}")
        if dedup_key:
            job_id = str(uuid.uuid5(_DEDUP_NAMESPACE, f"{self.queue_url}#{dedup_key}"))
        else:
            job_id = str(uuid.uuid4())
        url = (
            self.high_priority_queue_url if priority > 0 and self.high_priority_queue_url else self.queue_url
        )
        attributes = {"kind": _string(kind)}
        if dedup_key:
            attributes["dedup_key"] = _string(dedup_key)
        # SQS delays at most 15 minutes: a longer delay also records when the job may run, so the
        # message surfacing after 15 minutes is hidden again instead of running early.
        not_before = time.time() + delay_seconds if delay_seconds > MAX_DELAY_SECONDS else None
        await self._call(
            "send_message",
            QueueUrl=url,
            MessageBody=_envelope(job_id, kind, payload, priority, not_before=not_before),
            DelaySeconds=min(delay_seconds, MAX_DELAY_SECONDS),
            MessageAttributes=attributes,
        )
        return job_id

    async def receive(self, *, max_jobs: int = 1, visibility_seconds: int | None = None) -> list[Job]:
        """Take up to max_jobs due jobs, draining the high-priority queue before the normal one."""
        visibility = self.visibility_seconds if visibility_seconds is None else visibility_seconds
        visibility = max(0, min(visibility, MAX_VISIBILITY_SECONDS))
        jobs: list[Job] = []
        urls = [url for url in (self.high_priority_queue_url, self.queue_url) if url]
        for url in urls:
            while len(jobs) < max_jobs:
                wanted = min(_RECEIVE_BATCH, max_jobs - len(jobs))
                # Long-poll only the last queue and only when nothing was found: a wait on the normal
                # queue must not hold back high-priority work already in hand.
                wait = self.wait_seconds if url == urls[-1] and not jobs else 0
                response = await self._call(
                    "receive_message",
                    QueueUrl=url,
                    MaxNumberOfMessages=wanted,
                    VisibilityTimeout=visibility,
                    WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=[
                        "ApproximateReceiveCount",
                        "ApproximateFirstReceiveTimestamp",
                    ],
                    MessageAttributeNames=["All"],
                )
                messages = response.get("Messages", [])
                for message in messages:
                    job, not_before = self._decode(
                        url,
                        message["Body"],
                        message["ReceiptHandle"],
                        message["MessageId"],
                        message.get("Attributes", {}),
                        visibility,
                    )
                    if not await self._defer_if_early(job, not_before):
                        jobs.append(job)
                if len(messages) < wanted:
                    break
        return jobs

    def job_from_record(self, record: dict[str, Any]) -> Job:
        """Turn one record of a Lambda SQS event into a Job bound to the queue it came from."""
        job, _ = self._decode_record(record)
        return job

    async def job_from_due_record(self, record: dict[str, Any]) -> Job | None:
        """The record's Job, or None when it is not due yet: then it is hidden until it is (keep it)."""
        job, not_before = self._decode_record(record)
        return None if await self._defer_if_early(job, not_before) else job

    def _decode_record(self, record: dict[str, Any]) -> tuple[Job, float | None]:
        url = self._url_for_arn(str(record.get("eventSourceARN", "")))
        # Lambda received the message with the queue's own visibility timeout, which QUEUE_VISIBILITY_SECONDS
        # mirrors (serverless.yml keeps them equal).
        return self._decode(
            url,
            record["body"],
            record["receiptHandle"],
            record["messageId"],
            record.get("attributes", {}),
            self.visibility_seconds,
        )

    async def _defer_if_early(self, job: Job, not_before: float | None) -> bool:
        """Hide a message received before its not-before time until then (at most 12 h); True if so."""
        if not_before is None:
            return False
        remaining = not_before - time.time()
        if remaining <= _DUE_SLACK_SECONDS:
            return False
        url, handle = _split_receipt(job.receipt)
        hide = min(math.ceil(remaining), MAX_DEFER_SECONDS)
        try:
            await self._call(
                "change_message_visibility", QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=hide
            )
        except Exception:
            # Still not returned: the receive's own visibility hides it, and the receive after that
            # defers it again. Other messages of the batch must not be lost to this one's failure.
            logger.warning(
                "could not defer an early job",
                exc_info=True,
                extra={"job_id": job.id, "kind": job.kind, "not_before": not_before},
            )
        else:
            logger.debug(
                "early job hidden until due",
                extra={"job_id": job.id, "kind": job.kind, "hidden_seconds": hide},
            )
        return True

    def _url_for_arn(self, arn: str) -> str:
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            return self.queue_url
        region, account, name = parts[3], parts[4], parts[5]
        for url in (self.queue_url, self.high_priority_queue_url):
            if url and url.rstrip("/").rsplit("/", 1)[-1] == name:
                return url
        return f"https://sqs.{region}.amazonaws.com/{account}/{name}"

    def _decode(
        self,
        url: str,
        body: str,
        handle: str,
        message_id: str,
        attributes: dict[str, Any],
        visibility: int,
    ) -> tuple[Job, float | None]:
        """The Job of a message and its not-before time (None: due on arrival)."""
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        receipt = f"{url}|{handle}"
        if (
            not isinstance(envelope, dict)
            or not isinstance(envelope.get("kind"), str)
            or not isinstance(envelope.get("payload"), dict)
        ):
            # Not one of ours (or damaged): still a Job, so the worker dead-letters it with the body kept.
            logger.warning("malformed queue message", extra={"message_id": message_id, "queue_url": url})
            job = Job(
                id=message_id,
                kind=MALFORMED_KIND,
                payload={"body": body},
                priority=0,
                attempts=_attempts(attributes, None),
                receipt=receipt,
                visibility_seconds=visibility,
            )
            return job, None
        priority = envelope.get("priority")
        not_before = _not_before(envelope)
        job = Job(
            id=str(envelope.get("id") or message_id),
            kind=envelope["kind"],
            payload=envelope["payload"],
            priority=priority if isinstance(priority, int) else 0,
            attempts=_attempts(attributes, not_before),
            receipt=receipt,
            visibility_seconds=visibility,
        )
        return job, not_before

    async def extend(self, job: Job, *, seconds: int) -> bool:
        """Hide the message for `seconds` from now; False when the receipt is stale (deleted, redelivered)."""
        if seconds < 1:
            raise ValueError("seconds must be at least 1")
        url, handle = _split_receipt(job.receipt)
        from botocore.exceptions import ClientError

        try:
            await self._call(
                "change_message_visibility",
                QueueUrl=url,
                ReceiptHandle=handle,
                VisibilityTimeout=min(seconds, MAX_VISIBILITY_SECONDS),
            )
        except ClientError as failure:
            # InvalidParameterValue also covers "beyond 12 h since the receive": the lease cannot grow.
            if _error_code(failure) not in _STALE_CODES:
                raise
            self._stale("extend", job)
            return False
        return True

    async def ack(self, job: Job) -> None:
        """Delete the message; an invalid (stale) receipt is logged and ignored."""
        url, handle = _split_receipt(job.receipt)
        await self._delete(url, handle, job)

    async def retry(self, job: Job, *, error: str) -> bool:
        """Hide the message for the backoff so SQS redelivers it; at max attempts move it to the DLQ."""
        url, handle = _split_receipt(job.receipt)
        if job.attempts >= self.max_attempts:
            await self._bury(job, url, handle, error)
            return False
        delay = backoff_seconds(job.attempts, base=self.backoff_base_seconds, cap=self.backoff_max_seconds)
        from botocore.exceptions import ClientError

        try:
            await self._call(
                "change_message_visibility",
                QueueUrl=url,
                ReceiptHandle=handle,
                VisibilityTimeout=min(math.ceil(delay), MAX_VISIBILITY_SECONDS),
            )
        except ClientError as failure:
            if _error_code(failure) not in _STALE_CODES:
                raise
            # Already redelivered elsewhere or the lease ran out: SQS shows it again by itself.
            self._stale("retry", job)
        logger.info(
            "job retry scheduled",
            extra={
                "job_id": job.id,
                "kind": job.kind,
                "attempts": job.attempts,
                "delay_seconds": round(delay, 3),
            },
        )
        return True

    async def dead_letter(self, job: Job, *, error: str) -> None:
        """Copy the job to the DLQ with the reason, then delete it from its queue."""
        url, handle = _split_receipt(job.receipt)
        await self._bury(job, url, handle, error)

    async def _bury(self, job: Job, url: str, handle: str, error: str) -> None:
        reason = (error or "unknown error")[:_MAX_ERROR_CHARS]
        if self.dlq_url:
            # Send before delete: a crash in between duplicates the job in the DLQ rather than losing it.
            await self._call(
                "send_message",
                QueueUrl=self.dlq_url,
                MessageBody=_envelope(job.id, job.kind, job.payload, job.priority),
                MessageAttributes={
                    "kind": _string(job.kind),
                    "error": _string(reason),
                    "attempts": {"DataType": "Number", "StringValue": str(job.attempts)},
                    "source_queue": _string(url),
                },
            )
        else:
            # Without a DLQ the log line is the only record left of the job.
            logger.error(
                "job dropped: dead but no SQS_DLQ_URL configured",
                extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts, "payload": job.payload},
            )
        logger.warning(
            "job dead",
            extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts, "error": reason[:500]},
        )
        await self._delete(url, handle, job)

    async def _delete(self, url: str, handle: str, job: Job) -> None:
        from botocore.exceptions import ClientError

        try:
            await self._call("delete_message", QueueUrl=url, ReceiptHandle=handle)
        except ClientError as failure:
            if _error_code(failure) not in _STALE_CODES:
                raise
            self._stale("delete", job)

    def _stale(self, action: str, job: Job) -> None:
        logger.warning(
            "stale receipt: %s ignored",
            action,
            extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts},
        )
