"""Delivery of recorded events to shared.payments.events.process, the code Stripe's webhooks reach."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.payments.providers.base import ProviderEvent
from shared.payments.sandbox.provider import SandboxProvider
from shared.payments.sandbox.store import Obj
from shared.payments.sandbox.times import from_unix, now, to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn
    from shared.settings import Settings

logger = logging.getLogger("cinema.payments.sandbox")

MAX_DELIVERY_ATTEMPTS = 10  # a poisoned event stops being retried; it stays visible in the table


async def deliver_after_commit() -> None:
    """Deliver what the sandbox recorded for a request, in a transaction of its own (or at the next tick)."""
    from shared.infra.db import standalone
    from shared.settings import get_settings

    try:
        async with standalone() as conn:
            await deliver_pending(conn, settings=get_settings())
    except Exception:
        logger.exception("sandbox events not delivered now; the next maintenance tick retries them")


def _provider_event(event: Obj) -> ProviderEvent:
    obj: Obj = event["data"]["object"]
    return ProviderEvent(
        id=event["id"],
        type=event["type"],
        object_id=obj.get("id"),
        object=obj,
        created=from_unix(event["created"]),
    )


async def deliver_pending(conn: Conn, *, settings: Settings) -> int:
    """Hand undelivered events, oldest first, to shared.payments.events.process in the caller's transaction.

    Each event is processed and marked delivered together (a savepoint each): two callers at once never
    deliver one event twice (FOR UPDATE SKIP LOCKED), and a failing event is kept for the next call.
    """
    from psycopg.types.json import Jsonb

    from shared.infra.db import fetch_all
    from shared.payments.events import process

    provider = SandboxProvider(settings)
    delivered = 0
    failed: list[str] = []
    while True:
        rows = await fetch_all(
            conn,
            """select id, data from public.sandbox_payment_objects
               where kind = 'event' and not (data->>'delivered')::boolean
                 and coalesce((data->>'attempts')::int, 0) < %s and id <> all(%s)
               order by created_at, id
               limit 100
               for update skip locked""",
            (MAX_DELIVERY_ATTEMPTS, failed),
        )
        if not rows:
            return delivered
        for row in rows:
            data: Obj = dict(row["data"])
            try:
                async with conn.transaction():
                    outcome = await process(conn, provider=provider, event=_provider_event(data["event"]))
                    data.update(delivered=True, outcome=outcome, delivered_at=to_unix(now()))
                    await conn.execute(
                        "update public.sandbox_payment_objects set data = %s where id = %s",
                        (Jsonb(data), row["id"]),
                    )
            except Exception as error:  # kept for a later call; the others still go out
                logger.exception(
                    "sandbox event %s (%s) could not be delivered", row["id"], data["event"]["type"]
                )
                failed.append(row["id"])
                data.update(attempts=int(data.get("attempts") or 0) + 1, last_error=str(error)[:500])
                await conn.execute(
                    "update public.sandbox_payment_objects set data = %s where id = %s",
                    (Jsonb(data), row["id"]),
                )
                continue
            delivered += 1
