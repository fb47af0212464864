"""Job dispatch shared by the local worker loop (`cinema worker`) and the Lambda SQS handler."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shared.infra.queue.base import Job, JobQueue

if TYPE_CHECKING:
    from shared.infra.queue.sqs import SqsQueue

logger = logging.getLogger("cinema.worker")

JobHandler = Callable[[dict[str, Any], Job], Awaitable[None]]
H = TypeVar("H", bound=JobHandler)

# kind -> handler; filled at import time by the modules that define handlers (@register).
HANDLERS: dict[str, JobHandler] = {}


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad input, missing object): dead-letter at once."""


class Outcome(enum.Enum):
    """What became of one delivery."""

    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"


def register(kind: str, *, replace: bool = False) -> Callable[[H], H]:
    """Decorator registering an async handler(payload, job) for a job kind."""

    def decorator(handler: H) -> H:
        existing = HANDLERS.get(kind)
        if existing is not None and existing is not handler and not replace:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        HANDLERS[kind] = handler
        return handler

    return decorator


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _renew_lease(queue: JobQueue, job: Job, lease: int, fields: dict[str, Any]) -> None:
    """Extend the job's lease every third of it until cancelled or the lease turns out to be lost."""
    # A third: one failed renewal still leaves a third of the lease for the next try.
    interval = lease / 3
    while True:
        await asyncio.sleep(interval)
        try:
            renewed = await queue.extend(job, seconds=lease)
        except Exception:  # the queue may be briefly away: the lease still has time, try again
            logger.warning("lease renewal failed, will try again", exc_info=True, extra=fields)
            continue
        if not renewed:
            # Another delivery owns the job now; the handler finishes, but its settlement will be stale.
            logger.error("lease lost while the job was running: it may run twice", extra=fields)
            return


@contextlib.asynccontextmanager
async def _leased(queue: JobQueue, job: Job, fields: dict[str, Any]) -> AsyncIterator[None]:
    """Keep the job hidden from other receivers for as long as the block runs."""
    lease = job.visibility_seconds
    if not lease or lease < 1:
        yield
        return
    renewal = asyncio.create_task(_renew_lease(queue, job, lease, fields))
    try:
        yield
    finally:
        # Stopped before the job is settled, so no renewal races the ack (SQS would call it stale).
        renewal.cancel()
        await asyncio.wait({renewal})  # unlike `await renewal`, never swallows our own cancellation


async def dispatch(queue: JobQueue, job: Job) -> Outcome:
    """Run the job's handler, renewing its lease meanwhile, then ack, retry with backoff or dead-letter."""
    fields = {"job_id": job.id, "kind": job.kind, "attempts": job.attempts}
    handler = HANDLERS.get(job.kind)
    if handler is None:
        reason = f"no handler for kind {job.kind!r}"
        logger.error("job dead: %s", reason, extra=fields)
        await queue.dead_letter(job, error=reason)
        return Outcome.DEAD
    started = time.perf_counter()
    try:
        async with _leased(queue, job, fields):
            await handler(job.payload, job)
    except PermanentJobError as error:
        logger.error("job dead: permanent failure", extra={**fields, "error": _describe(error)})
        await queue.dead_letter(job, error=_describe(error))
        return Outcome.DEAD
    except Exception as error:  # anything else may pass on a later try
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        logger.warning(
            "job failed, will retry",
            exc_info=True,
            extra={**fields, "duration_ms": elapsed, "error": _describe(error)},
        )
        return Outcome.RETRY if await queue.retry(job, error=_describe(error)) else Outcome.DEAD
    await queue.ack(job)
    logger.info("job done", extra={**fields, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
    return Outcome.DONE


async def process(queue: JobQueue, job: Job) -> bool:
    """Dispatch one job; True when it succeeded and was acknowledged."""
    return await dispatch(queue, job) is Outcome.DONE


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_worker(
    *,
    stop: asyncio.Event,
    concurrency: int = 1,
    poll_interval: float = 1.0,
    queue: JobQueue | None = None,
) -> None:
    """Take and process jobs with `concurrency` parallel slots until stop is set, finishing jobs in hand."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if queue is None:
        from shared.infra.queue import get_queue

        queue = await get_queue()
    active = queue

    async def slot(number: int) -> None:
        while not stop.is_set():
            try:
                jobs = await active.receive(max_jobs=1)
            except Exception:  # the database or SQS may be briefly away: wait and ask again
                logger.exception("receiving jobs failed", extra={"slot": number})
                await _pause(stop, poll_interval)
                continue
            if not jobs:
                await _pause(stop, poll_interval)
                continue
            for job in jobs:
                try:
                    await dispatch(active, job)
                except Exception:
                    # Settling failed (ack/retry could not reach the queue): the lease runs out and the
                    # job is delivered again, so it is neither lost nor double-settled here.
                    logger.exception(
                        "settling job failed",
                        extra={"job_id": job.id, "kind": job.kind, "attempts": job.attempts},
                    )

    logger.info("worker started", extra={"concurrency": concurrency, "queue_type": type(queue).__name__})
    await asyncio.gather(*(slot(number) for number in range(concurrency)))
    logger.info("worker stopped")


async def handle_sqs_batch(event: dict[str, Any], *, queue: SqsQueue | None = None) -> dict[str, Any]:
    """Process a Lambda SQS event; report only transiently failed messages as batchItemFailures.

    Succeeded and permanently failed messages are deleted (the latter after a copy to the DLQ), so
    Lambda neither retries them nor blocks the batch; a transient failure keeps its message, whose
    visibility retry() set to the backoff, and so does a message not due yet (hidden until it is).
    """
    if queue is None:
        from shared.infra.queue import get_queue
        from shared.infra.queue.sqs import SqsQueue

        configured = await get_queue()
        if not isinstance(configured, SqsQueue):
            raise TypeError("handle_sqs_batch needs QUEUE_BACKEND=sqs")
        queue = configured
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            job = await queue.job_from_due_record(record)
            # Not due yet (a delay past SQS's 15 minutes): now hidden until it is, so keep the message.
            outcome = Outcome.RETRY if job is None else await dispatch(queue, job)
        except Exception:
            # Our own machinery failed (not the handler): let SQS deliver the message again.
            logger.exception("SQS record failed", extra={"message_id": message_id})
            outcome = Outcome.RETRY
        if outcome is Outcome.RETRY:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
