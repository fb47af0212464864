"""Subscriptions: started by a checkout (with a trial or paid at once), cancelled now or at period end."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.payments.providers.base import ProviderRefused
from shared.payments.sandbox.billing_periods import period_end
from shared.payments.sandbox.events import emit
from shared.payments.sandbox.ids import new_id
from shared.payments.sandbox.invoices import new_invoice
from shared.payments.sandbox.prices import plan_line, price_copy
from shared.payments.sandbox.store import Obj, external, insert_object, require_object, save_object
from shared.payments.sandbox.times import now, to_unix

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn

LIVE_STATUSES = ("trialing", "active", "past_due")


async def start_subscription(conn: Conn, session: Obj, at: datetime) -> tuple[Obj, Obj]:
    """The subscription a completed checkout starts, with its first (paid) invoice."""
    price_ref = session["line_items"]["data"][0]["price"]["id"]
    price = await require_object(conn, price_ref, "price")
    trial_days = int(session.get("subscription_data", {}).get("trial_period_days") or 0)
    interval = price["recurring"]["interval"]
    subscription_id = new_id("sub")
    if trial_days > 0:
        trial_end = at + timedelta(days=trial_days)
        start, end, anchor, status = at, trial_end, trial_end, "trialing"
    else:
        start, anchor, status = at, at, "active"
        end = period_end(anchor, start, interval)
    subscription: Obj = {
        "id": subscription_id,
        "object": "subscription",
        "created": to_unix(at),
        "start_date": to_unix(at),
        "customer": session["customer"],
        "status": status,
        "currency": price["currency"],
        "billing_cycle_anchor": to_unix(anchor),
        "current_period_start": to_unix(start),
        "current_period_end": to_unix(end),
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si"),
                    "object": "subscription_item",
                    "price": price_copy(price),
                    "quantity": 1,
                    "current_period_start": to_unix(start),
                    "current_period_end": to_unix(end),
                }
            ],
        },
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "trial_start": to_unix(at) if trial_days > 0 else None,
        "trial_end": to_unix(end) if trial_days > 0 else None,
        "latest_invoice": None,
        "metadata": dict(
            session.get("subscription_data", {}).get("metadata") or session.get("metadata") or {}
        ),
    }
    if trial_days > 0:
        line = {
            "description": f"Trial period for {price['nickname']}",
            "amount": 0,
            "quantity": 1,
            "period": {"start": to_unix(start), "end": to_unix(end)},
            "proration": False,
            "price": price["id"],
        }
    else:
        line = plan_line(price, start, end)
    invoice = await new_invoice(
        conn,
        customer_id=session["customer"],
        subscription=subscription,
        currency=price["currency"],
        lines=[line],
        billing_reason="subscription_create",
        paid=True,
        at=at,
    )
    subscription["latest_invoice"] = invoice["id"]
    await insert_object(conn, subscription_id, "subscription", subscription)
    return subscription, invoice


def set_period(subscription: Obj, start: datetime, end: datetime) -> None:
    """Move the subscription and its item to a new current period."""
    subscription["current_period_start"], subscription["current_period_end"] = to_unix(start), to_unix(end)
    item = subscription["items"]["data"][0]
    item["current_period_start"], item["current_period_end"] = to_unix(start), to_unix(end)


async def live_subscription(conn: Conn, ref: str) -> Obj:
    """The subscription, locked, while it can still change; ProviderRefused once ended."""
    subscription = await require_object(conn, ref, "subscription", lock=True)
    if subscription["status"] not in LIVE_STATUSES:
        raise ProviderRefused(
            f"The subscription is {subscription['status']}; it can no longer change.",
            code="subscription_ended",
        )
    return subscription


async def end_subscription(conn: Conn, subscription: Obj, at: datetime) -> Obj:
    """A cancellation that reached the period end: the subscription is over."""
    subscription.update(
        status="canceled",
        ended_at=subscription["current_period_end"],
        canceled_at=subscription.get("canceled_at") or to_unix(at),
    )
    await save_object(conn, subscription)
    await emit(conn, "customer.subscription.deleted", subscription, at)
    return subscription


async def cancel_subscription_now(conn: Conn, ref: str, *, at: datetime) -> Obj:
    """End a subscription now, as Stripe cancels with prorate and invoice_now false (no credit or invoice)."""
    subscription = await require_object(conn, ref, "subscription", lock=True)
    if subscription["status"] in ("canceled", "incomplete_expired"):
        return subscription
    subscription.update(
        status="canceled",
        ended_at=to_unix(at),
        canceled_at=subscription.get("canceled_at") or to_unix(at),
        cancellation_details={"reason": "cancellation_requested"},
    )
    await save_object(conn, subscription)
    await emit(conn, "customer.subscription.deleted", subscription, at)
    return subscription


async def mark_cancel_at_period_end(conn: Conn, ref: str, *, cancel: bool, at: datetime) -> Obj:
    """Set or clear cancel_at_period_end (customer.subscription.updated when it changes)."""
    subscription = await live_subscription(conn, ref)
    if bool(subscription["cancel_at_period_end"]) == cancel:
        return subscription
    subscription.update(
        cancel_at_period_end=cancel,
        cancel_at=subscription["current_period_end"] if cancel else None,
        canceled_at=to_unix(at) if cancel else None,
    )
    await save_object(conn, subscription)
    await emit(conn, "customer.subscription.updated", subscription, at)
    return subscription


async def set_cancel_at_period_end(subscription_ref: str, *, cancel: bool, at: datetime | None = None) -> Obj:
    """Cancel or resume from the sandbox portal (no idempotency key: a person's click)."""
    async with external() as conn:
        return await mark_cancel_at_period_end(conn, subscription_ref, cancel=cancel, at=at or now())
