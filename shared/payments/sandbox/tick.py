"""The sandbox's clock tick: renewals, retries, period ends and expiring checkouts that are due."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from shared.payments.sandbox.cards import card_fails
from shared.payments.sandbox.checkouts import expire_session
from shared.payments.sandbox.renewals import renew_cycle
from shared.payments.sandbox.store import require_object
from shared.payments.sandbox.subscriptions import LIVE_STATUSES, end_subscription
from shared.payments.sandbox.times import to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn
    from shared.settings import Settings

logger = logging.getLogger("cinema.payments.sandbox")


async def tick(conn: Conn, *, settings: Settings, at: datetime) -> int:
    """The sandbox's clock: renewals, retries, period ends and stale checkouts due at `at`; how many changed.

    Due subscriptions renew (a failing card leaves them past_due), unpaid ones are retried once the card
    works, those cancelled at period end end, and open checkouts past their expiry expire.
    """
    from shared.infra.db import fetch_all

    del settings  # same signature as the other maintenance steps; nothing is configurable yet
    moment = to_unix(at)
    due = await fetch_all(
        conn,
        """select id, kind from public.sandbox_payment_objects
           where (kind = 'subscription' and data->>'status' in ('trialing', 'active', 'past_due')
                  and ((data->>'current_period_end')::bigint <= %(at)s or data->>'status' = 'past_due'))
              or (kind = 'checkout_session' and data->>'status' = 'open'
                  and (data->>'expires_at')::bigint <= %(at)s)
           order by created_at""",
        {"at": moment},
    )
    changed = 0
    for row in due:
        try:
            async with conn.transaction():  # one savepoint each: a broken object does not stop the rest
                if await _tick_one(conn, row["id"], row["kind"], at):
                    changed += 1
        except Exception:
            logger.exception("sandbox tick failed for %s", row["id"])
    return changed


async def _tick_one(conn: Conn, object_id: str, kind: str, at: datetime) -> bool:
    moment = to_unix(at)
    if kind == "checkout_session":
        session = await require_object(conn, object_id, kind, lock=True)
        if session["status"] != "open" or int(session["expires_at"]) > moment:
            return False
        await expire_session(conn, session, at)
        return True
    subscription = await require_object(conn, object_id, kind, lock=True)
    if subscription["status"] not in LIVE_STATUSES:
        return False
    is_due = int(subscription["current_period_end"]) <= moment
    customer = await require_object(conn, subscription["customer"], "customer")
    fails = card_fails(customer)
    if subscription["cancel_at_period_end"] and is_due:
        await end_subscription(conn, subscription, at)
        return True
    if subscription["status"] == "past_due":
        if fails:  # Stripe's retries would fail too; the grace period in commerce decides what follows
            return False
        await renew_cycle(conn, subscription, outcome="paid", at=at)  # pays the open invoice
        return True
    if not is_due:
        return False
    await renew_cycle(conn, subscription, outcome="failed" if fails else "paid", at=at)
    return True
