"""Stripe-shaped events the sandbox records (rows of kind "event") for delivery."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from shared.payments.sandbox.ids import new_event_id
from shared.payments.sandbox.store import Obj, emitted_events, insert_object
from shared.payments.sandbox.times import to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def emit(conn: Conn, event_type: str, obj: Obj, at: datetime) -> str:
    """Record a Stripe-shaped event carrying a snapshot of the object, for deliver_pending."""
    event_id = new_event_id()
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "sandbox",
        "created": to_unix(at),
        "livemode": False,
        "type": event_type,
        "data": {"object": json.loads(json.dumps(obj))},
    }
    await insert_object(conn, event_id, "event", {"event": event, "delivered": False})
    emitted = emitted_events.get()
    if emitted is not None:
        emitted.append(event_id)
    return event_id
