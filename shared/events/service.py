"""Emitting a domain event: one row in domain_events plus one queued delivery per subscriber."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from shared.events.registry import subscribers

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("cinema.events")

DELIVER_KIND = "events.deliver"


async def emit(conn: AsyncConnection[Any], name: str, payload: dict[str, Any]) -> uuid.UUID:
    """Record the event and queue its deliveries in the caller's transaction (never commits); its id."""
    from psycopg.types.json import Jsonb

    from shared.infra.queue.postgres import enqueue_in_transaction
    from shared.jobs import load_handlers

    if not name or not isinstance(payload, dict):
        raise ValueError("an event needs a name and a JSON object payload")
    # Subscribers register when their modules are imported; the emitting process (an API function) may
    # not have imported them yet, and a delivery not queued now would never happen.
    load_handlers()
    event_id = uuid.uuid4()
    await conn.execute(
        "insert into public.domain_events (id, name, payload) values (%s, %s, %s)",
        (event_id, name, Jsonb(payload)),
    )
    for subscriber_id in sorted(subscribers(name)):
        await enqueue_in_transaction(
            conn,
            DELIVER_KIND,
            {"event_id": str(event_id), "subscriber": subscriber_id},
            dedup_key=f"event:{event_id}:{subscriber_id}",
        )
    logger.info("event emitted", extra={"event": name, "event_id": str(event_id)})
    return event_id
