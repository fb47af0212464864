"""Queue handler "mail.deliver": send one outbox message (imported by the worker via shared.jobs)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.infra.queue.base import Job
from shared.infra.queue.worker import PermanentJobError, register
from shared.mail import service
from shared.settings import get_settings


def _max_attempts(job: Job) -> int:
    """The delivery's attempt budget: the job's own when the queue reports it, else QUEUE_MAX_ATTEMPTS."""
    # Both queue backends bury a job once attempts reach QUEUE_MAX_ATTEMPTS (the default every
    # enqueue_in_transaction row gets); a Job carrying its own max_attempts takes precedence.
    own = getattr(job, "max_attempts", None)
    return own if isinstance(own, int) and own > 0 else get_settings().queue_max_attempts


@register(service.DELIVER_KIND)
async def deliver(payload: dict[str, Any], job: Job) -> None:
    """Deliver the outbox message named by payload["id"]."""
    try:
        mail_id = UUID(str(payload["id"]))
    except (KeyError, ValueError) as error:
        raise PermanentJobError(f"mail.deliver needs an outbox id, got {payload!r}") from error
    await service.deliver_mail(mail_id=mail_id, attempt=job.attempts, max_attempts=_max_attempts(job))
