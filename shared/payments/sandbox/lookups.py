"""Reads for the sandbox's own pages and guards: objects, a customer's subscriptions, owners."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from shared.payments.sandbox.store import Obj, load_object

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def load(conn: Conn, object_id: str, kind: str) -> Obj | None:
    """A sandbox object by id and kind (None when there is none)."""
    return await load_object(conn, object_id, kind)


async def subscriptions_of(conn: Conn, customer_ref: str) -> list[Obj]:
    """The customer's subscriptions, newest first."""
    from shared.infra.db import fetch_all

    rows = await fetch_all(
        conn,
        """select data from public.sandbox_payment_objects
           where kind = 'subscription' and data->>'customer' = %s order by created_at desc limit 50""",
        (customer_ref,),
    )
    return [dict(row["data"]) for row in rows]


async def customer_of(conn: Conn, object_id: str) -> str | None:
    """The customer an object (customer, subscription, payment intent, charge, invoice) belongs to."""
    from shared.infra.db import fetch_one

    row = await fetch_one(
        conn,
        """select kind, data->>'customer' as customer from public.sandbox_payment_objects
           where id = %s and kind in ('customer', 'subscription', 'payment_intent', 'charge', 'invoice')""",
        (object_id,),
    )
    if row is None:
        return None
    return object_id if row["kind"] == "customer" else row["customer"]


async def owner_of(conn: Conn, object_id: str) -> UUID | None:
    """The account an object belongs to, through payment_customers (None when unknown)."""
    from shared.infra.db import fetch_one

    customer = await customer_of(conn, object_id)
    if customer is None:
        return None
    # The sandbox simulates Stripe's dashboard here: it reads the account mapping directly.
    row = await fetch_one(
        conn,
        "select user_id from public.payment_customers where provider = 'sandbox' and customer_ref = %s",
        (customer,),
    )
    return None if row is None else UUID(str(row["user_id"]))
