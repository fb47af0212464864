"""The job queue chosen by QUEUE_BACKEND: the PostgreSQL table by default, SQS (+ DLQ) in production."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from shared.infra.loop_local import LoopLocal
from shared.infra.queue.base import Job, JobQueue, QueueStats
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.infra.queue.postgres import PostgresQueue
    from shared.infra.queue.sqs import SqsQueue

__all__ = ["Job", "JobQueue", "QueueStats", "backoff_seconds", "close_queue", "get_queue"]

# Jitter only spreads retries apart; SystemRandom keeps it independent of anyone seeding `random`.
_jitter = random.SystemRandom()


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Delay before try n+1: full-jitter exponential backoff, uniform in [0, min(cap, base*2^(n-1))]."""
    exponent = min(max(attempts - 1, 0), 62)  # bounded so 2**n stays a sane float for absurd counts
    return _jitter.uniform(0.0, min(cap, base * 2.0**exponent))


async def _create() -> PostgresQueue | SqsQueue:
    settings = get_settings()
    if settings.queue_backend == "sqs":
        from shared.infra.queue.sqs import SqsQueue

        # Building a boto3 client reads its service model from disk: keep that off the event loop.
        return await asyncio.to_thread(SqsQueue.from_settings, settings)
    from shared.infra.db import get_pool
    from shared.infra.queue.postgres import PostgresQueue

    return PostgresQueue.from_settings(await get_pool(), settings)


_queue: LoopLocal[PostgresQueue | SqsQueue] = LoopLocal(_create)


async def get_queue() -> JobQueue:
    """The queue of the running loop, created on first use from settings."""
    return await _queue.get()


async def close_queue() -> None:
    """Forget this loop's queue and release its client (tests and the CLI); the db pool is not closed."""
    queue = _queue.pop()
    if queue is not None:
        await queue.close()
