"""SQL of the subscriptions domain: payment_customers and subscriptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]

# Statuses a subscription never leaves (Stripe's too): a later, older read must not revive them.
TERMINAL = ("canceled", "incomplete_expired")


async def lock(conn: AsyncConnection[Any], key: str) -> None:
    """Transaction-scoped advisory lock on a name (released at commit or rollback)."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


# --- payment customers ----------------------------------------------------------------------------------


async def customer(conn: AsyncConnection[Any], *, user_id: uuid.UUID, provider: str) -> str | None:
    """The account's customer id at the provider, if created."""
    row = await fetch_one(
        conn,
        "select customer_ref from public.payment_customers where user_id = %s and provider = %s",
        (user_id, provider),
    )
    return None if row is None else str(row["customer_ref"])


async def insert_customer(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, provider: str, customer_ref: str
) -> None:
    """Record the customer unless the account has one there already (a parallel request won)."""
    await conn.execute(
        "insert into public.payment_customers (user_id, provider, customer_ref) values (%s, %s, %s) "
        "on conflict do nothing",
        (user_id, provider, customer_ref),
    )


async def user_for_customer(
    conn: AsyncConnection[Any], *, provider: str, customer_ref: str
) -> uuid.UUID | None:
    """The account a provider's customer belongs to."""
    row = await fetch_one(
        conn,
        "select user_id from public.payment_customers where provider = %s and customer_ref = %s",
        (provider, customer_ref),
    )
    return None if row is None else uuid.UUID(str(row["user_id"]))


async def open_checkout(conn: AsyncConnection[Any], *, user_id: uuid.UUID, provider: str) -> str | None:
    """The subscription checkout the account has open at the provider (None: none recorded)."""
    row = await fetch_one(
        conn,
        "select open_checkout_ref from public.payment_customers where user_id = %s and provider = %s",
        (user_id, provider),
    )
    return None if row is None or row["open_checkout_ref"] is None else str(row["open_checkout_ref"])


async def set_open_checkout(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID, provider: str, checkout_ref: str | None
) -> None:
    """Record the account's newest open subscription checkout (None: it has none)."""
    await conn.execute(
        "update public.payment_customers set open_checkout_ref = %s where user_id = %s and provider = %s",
        (checkout_ref, user_id, provider),
    )


async def clear_open_checkout(conn: AsyncConnection[Any], *, provider: str, checkout_ref: str) -> None:
    """Forget a checkout that completed or expired (whoever's it was: the ref is unique at the provider)."""
    await conn.execute(
        "update public.payment_customers set open_checkout_ref = null "
        "where provider = %s and open_checkout_ref = %s",
        (provider, checkout_ref),
    )


async def customers_of(conn: AsyncConnection[Any], *, user_id: uuid.UUID) -> list[Row]:
    """Every provider customer of the account, newest first."""
    return await fetch_all(
        conn,
        "select provider, customer_ref from public.payment_customers where user_id = %s "
        "order by created_at desc",
        (user_id,),
    )


# --- subscriptions --------------------------------------------------------------------------------------


async def by_ref(conn: AsyncConnection[Any], *, provider: str, ref: str) -> Row | None:
    """The row of a provider subscription."""
    return await fetch_one(
        conn, "select * from public.subscriptions where provider = %s and provider_ref = %s", (provider, ref)
    )


async def by_id(conn: AsyncConnection[Any], subscription_id: uuid.UUID) -> Row | None:
    """A row by our id."""
    return await fetch_one(conn, "select * from public.subscriptions where id = %s", (subscription_id,))


async def upsert(conn: AsyncConnection[Any], *, values: Row) -> Row:
    """Insert the subscription, or overwrite the row with the provider's current state; the row."""
    row = await fetch_one(
        conn,
        """
        insert into public.subscriptions as s (user_id, provider, provider_ref, customer_ref, plan_code,
            price_id, status, billing_interval, currency, amount_minor, current_period_start,
            current_period_end, trial_end, cancel_at_period_end, canceled_at, ended_at, past_due_since,
            grace_ends_at)
        values (%(user_id)s, %(provider)s, %(provider_ref)s, %(customer_ref)s, %(plan_code)s, %(price_id)s,
            %(status)s, %(billing_interval)s, %(currency)s, %(amount_minor)s, %(current_period_start)s,
            %(current_period_end)s, %(trial_end)s, %(cancel_at_period_end)s, %(canceled_at)s,
            %(ended_at)s, %(past_due_since)s, %(grace_ends_at)s)
        on conflict (provider, provider_ref) do update
        set customer_ref = excluded.customer_ref, plan_code = excluded.plan_code,
            price_id = excluded.price_id, status = excluded.status,
            billing_interval = excluded.billing_interval, currency = excluded.currency,
            amount_minor = excluded.amount_minor, current_period_start = excluded.current_period_start,
            current_period_end = excluded.current_period_end, trial_end = excluded.trial_end,
            cancel_at_period_end = excluded.cancel_at_period_end, canceled_at = excluded.canceled_at,
            ended_at = excluded.ended_at, past_due_since = excluded.past_due_since,
            grace_ends_at = excluded.grace_ends_at
        returning *
        """,
        values,
    )
    if row is None:  # an upsert always returns its row
        raise AssertionError("subscription upsert returned nothing")
    return row


async def current_for_user(conn: AsyncConnection[Any], *, user_id: uuid.UUID) -> Row | None:
    """The account's newest subscription that has not ended for good (canceled / expired)."""
    return await fetch_one(
        conn,
        "select * from public.subscriptions where user_id = %s and status <> all(%s) "
        "order by created_at desc limit 1",
        (user_id, list(TERMINAL)),
    )


async def other_live_for_user(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID,
    statuses: tuple[str, ...],
    now: datetime,
    except_ref: str,
) -> Row | None:
    """Another subscription of the account in one of these statuses whose period has not ended."""
    return await fetch_one(
        conn,
        "select * from public.subscriptions where user_id = %s and status = any(%s) "
        "and (current_period_end is null or current_period_end > %s) and provider_ref <> %s "
        "order by created_at limit 1",
        (user_id, list(statuses), now, except_ref),
    )


async def newest_for_user(conn: AsyncConnection[Any], *, user_id: uuid.UUID) -> Row | None:
    """The account's newest subscription in any state."""
    return await fetch_one(
        conn,
        "select * from public.subscriptions where user_id = %s order by created_at desc limit 1",
        (user_id,),
    )


async def trial_used(conn: AsyncConnection[Any], *, user_id: uuid.UUID) -> bool:
    """Whether the account ever had a subscription that started (a trial is for the first one only)."""
    row = await fetch_one(
        conn,
        "select exists (select 1 from public.subscriptions where user_id = %s "
        "and (trial_end is not null or status not in ('incomplete', 'incomplete_expired'))) as used",
        (user_id,),
    )
    return bool(row and row["used"])
