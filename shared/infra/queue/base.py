"""The job queue interface: priorities, visibility timeouts, retries with backoff, a dead-letter state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Job:
    """A received job; `receipt` identifies this delivery for ack/retry/dead-letter/extend."""

    id: str
    kind: str
    payload: dict[str, Any]
    priority: int
    attempts: int
    receipt: str
    # How long this delivery was hidden from other receivers (its lease); None when unknown. The worker
    # renews the lease at a fraction of it so a long job is not handed to a second worker meanwhile.
    visibility_seconds: int | None = None


@dataclass(frozen=True)
class QueueStats:
    """Depth of the queue, for health and dashboards."""

    queued: int
    in_flight: int
    dead: int
    extra: dict[str, Any] = field(default_factory=dict)


class JobQueue(Protocol):
    """SQS (+ DLQ) in production, a PostgreSQL table (FOR UPDATE SKIP LOCKED) by default."""

    async def check(self) -> QueueStats:
        """Raise when the queue is unusable; else its depth (health)."""
        ...

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        delay_seconds: int = 0,
        dedup_key: str | None = None,
    ) -> str:
        """Queue a job; return its id (the existing id when dedup_key was queued before)."""
        ...

    async def receive(self, *, max_jobs: int = 1, visibility_seconds: int | None = None) -> list[Job]:
        """Take up to max_jobs, highest priority first, hidden from others for the visibility timeout."""
        ...

    async def extend(self, job: Job, *, seconds: int) -> bool:
        """Keep the job hidden for `seconds` from now; False when this delivery is no longer ours."""
        ...

    async def ack(self, job: Job) -> None:
        """The job succeeded: remove it."""
        ...

    async def retry(self, job: Job, *, error: str) -> bool:
        """A transient failure: redeliver after backoff; dead-letter (return False) past max attempts."""
        ...

    async def dead_letter(self, job: Job, *, error: str) -> None:
        """A permanent failure: move to the dead-letter state with the reason, no retries."""
        ...
