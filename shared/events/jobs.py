"""The delivery job: hand one recorded event to one subscriber (retried by the queue when it fails)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.events.registry import DomainEvent, subscribers
from shared.events.service import DELIVER_KIND
from shared.infra.queue.base import Job
from shared.infra.queue.worker import PermanentJobError, register

logger = logging.getLogger("cinema.events")


@register(DELIVER_KIND)
async def deliver(payload: dict[str, Any], job: Job) -> None:
    """Call the named subscriber with the stored event; its exception makes the queue retry."""
    from shared.infra.db import fetch_one, get_pool

    try:
        event_id = uuid.UUID(str(payload["event_id"]))
        subscriber_id = str(payload["subscriber"])
    except (KeyError, ValueError) as error:
        raise PermanentJobError(f"malformed delivery payload: {payload!r}") from error
    pool = await get_pool()
    async with pool.connection() as conn:
        row = await fetch_one(
            conn, "select id, name, payload, created_at from public.domain_events where id = %s", (event_id,)
        )
    if row is None:
        raise PermanentJobError(f"event {event_id} does not exist")
    handler = subscribers(row["name"]).get(subscriber_id)
    if handler is None:
        # The subscriber was removed since the event was emitted: nothing is waiting for this delivery.
        logger.warning("event delivery dropped: no such subscriber", extra={"subscriber": subscriber_id})
        return
    await handler(
        DomainEvent(
            id=row["id"], name=row["name"], payload=dict(row["payload"]), created_at=row["created_at"]
        )
    )
